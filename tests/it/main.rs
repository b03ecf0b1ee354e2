//! Integration tests: one binary, a module per area.

mod browser;
mod cli;
mod conform;
mod diff;
mod dsse;
mod echo;
mod families;
mod fixture;
mod har;
mod hostile;
mod ingress;
mod pinned;
mod probe;
mod provenance;
mod registry;
mod report;
mod schema;
mod sessions;
mod settings;
mod stand_in;
mod support;
mod trust;
mod verify;
mod wrangler;
