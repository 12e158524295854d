//! One file per command: gather the facts through the edges, decide with the core, act, report.
//! Commands never call each other; what two of them share lives in `core`.

pub mod doctor;
pub mod failover;
pub mod history;
pub mod interfaces;
pub mod reconcile;
pub mod status;
pub mod validate;

use tokio::time::Instant;

use crate::cli::Command;
use crate::core;
use crate::edges::Edges;
use crate::report::Report;
use crate::settings::Settings;

/// Runs one command; a run that could not act becomes its exit-2 report. A failover or reconcile
/// that changed or failed something is recorded in the history.
pub async fn run<E: Edges>(edges: &E, s: &Settings, command: &Command) -> Report {
    let started = edges.now_millis();
    let clock = Instant::now();
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
        Command::History => history::run(s),
    };
    let report = outcome.unwrap_or_else(|failure| Report::from_failure(command.name(), failure));
    let dry_run = match command {
        Command::Failover { dry_run, .. } | Command::Reconcile { dry_run } => *dry_run,
        _ => return report,
    };
    if core::history::worth_recording(&report, dry_run) {
        core::history::record(s, &report, started, clock.elapsed().as_millis() as u64);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfsense::ifconfig::CarpState;
    use crate::pfsense::model::tests::SAMPLE;
    use crate::pfsense::run_dir;
    use crate::testing::*;

    fn failover(dry_run: bool) -> Command {
        Command::Failover {
            vhid: "wan@1".into(),
            dry_run,
            force: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failover_that_acted_is_remembered_and_a_dry_run_is_not() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("commands-history"), SAMPLE);
        run(&edges, &s, &failover(true)).await;
        assert!(run_dir::read_history(&s.run_dir).unwrap().is_empty());
        let report = run(&edges, &s, &failover(false)).await;
        assert_eq!(report.exit_code(), 0);
        let lines = run_dir::read_history(&s.run_dir).unwrap();
        assert_eq!(lines.len(), 1);
        let entry: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(entry["command"], "failover");
        assert_eq!(entry["started"], "2026-11-26T10:00:00.000Z");
        assert!(entry["ms"].is_u64());
        assert!(entry["timeline"].as_array().is_some_and(|t| !t.is_empty()));
        // A failover never reads before it writes: the second one sends its calls again, and is
        // remembered too.
        run(&edges, &s, &failover(false)).await;
        assert_eq!(run_dir::read_history(&s.run_dir).unwrap().len(), 2);
    }
}
