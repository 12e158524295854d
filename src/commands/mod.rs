//! One file per command: gather the facts through the edges, decide with the core, act, report.
//! Commands never call each other; what two of them share lives in `core`.

pub mod doctor;
pub mod failover;
pub mod interfaces;
pub mod reconcile;
pub mod status;
pub mod validate;

use crate::cli::Command;
use crate::edges::Edges;
use crate::report::Report;
use crate::settings::Settings;

/// Runs one command; a run that could not act becomes its exit-2 report.
pub async fn run<E: Edges>(edges: &E, s: &Settings, command: &Command) -> Report {
    let outcome = match command {
        Command::Failover { vhid, dry_run, force } => {
            let req = failover::Request {
                vhid,
                dry_run: *dry_run,
                force: *force,
            };
            failover::run(edges, s, req).await
        }
        Command::Reconcile { dry_run } => reconcile::run(edges, s, *dry_run).await,
        Command::Status => status::run(edges, s).await,
        Command::Doctor => doctor::run(edges, s).await,
        Command::Interfaces => interfaces::interfaces(edges, s).await,
        Command::MapIp {
            interface,
            from_subnet,
            ip,
        } => interfaces::map_ip(edges, s, interface, from_subnet, ip).await,
        Command::Validate => validate::run(s),
    };
    outcome.unwrap_or_else(|failure| Report::from_failure(command.name(), failure))
}
