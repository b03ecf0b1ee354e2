//! Integration tests: one binary, a module per area.

mod browser;
mod cli;
mod conform;
mod echo;
mod families;
mod fixture;
mod hostile;
mod pinned;
mod probe;
mod registry;
mod report;
mod schema;
mod sessions;
mod stand_in;
mod support;
mod trust;
mod verify;
