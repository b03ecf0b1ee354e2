//! Integration tests: one binary, a module per area.

mod attest_verify;
mod browser;
mod cli;
mod conform;
mod dsse;
mod echo;
mod families;
mod fixture;
mod hostile;
mod ingress;
mod init;
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
mod watch;
mod wrangler;
