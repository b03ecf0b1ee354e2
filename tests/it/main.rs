//! Integration tests: one binary, a module per area.

mod cli;
mod conform;
mod fixture;
mod schema;
mod support;
mod verify;
