//! The history of runs (docs/contracts.md §13): which failovers and reconciles are recorded, how, and
//! what status reads back from it. The file itself is `pfsense::run_dir`'s.

use serde_json::{Value, json};

use crate::base::time::{Millis, format_rfc3339_millis};
use crate::log;
use crate::pfsense::run_dir;
use crate::report::{LastFailover, Report, Status};
use crate::settings::Settings;
/// Whether a run belongs in the history: it sent a mutating request, had a failed action or call,
/// or found a split brain. Runs that changed nothing, exit-2 runs and dry runs do not.
pub fn worth_recording(report: &Report, dry_run: bool) -> bool {
    !dry_run
        && report.error.is_none()
        && (report.call_failed
            || !report.split_brain.is_empty()
            || report
                .actions
                .iter()
                .any(|a| matches!(a.status, Status::Changed | Status::Failed)))
}

/// Appends the report, with when it started and how long it took, to the history. A history
/// that cannot be written is logged, never a reason to fail the run that acted.
pub fn record(s: &Settings, report: &Report, started: Millis, ms: u64) {
    let mut entry = report.to_json();
    entry["started"] = json!(format_rfc3339_millis(started));
    entry["ms"] = json!(ms);
    if let Err(e) = run_dir::append_history(&s.run_dir, &entry.to_string()) {
        log::warn(&format!("{e:#}"));
    }
}

/// The recorded runs, oldest first; a line that is not a JSON object is skipped with a warning.
pub fn entries(s: &Settings) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (n, line) in run_dir::read_history(&s.run_dir)?.iter().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => out.push(v),
            _ => log::warn(&format!(
                "{} line {}: not a recorded run, skipped",
                run_dir::history_path(&s.run_dir).display(),
                n + 1
            )),
        }
    }
    Ok(out)
}

/// The newest failover of `vhid` in `entries`.
pub fn last_failover(entries: &[Value], vhid: &str) -> Option<LastFailover> {
    let entry = entries.iter().rev().find(|e| {
        e["command"] == "failover"
            && e["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["vhid"] == vhid))
    })?;
    let (changed, failed) = counts(entry);
    Some(LastFailover {
        started: entry["started"].as_str().unwrap_or("").to_string(),
        ms: entry["ms"].as_u64().unwrap_or(0),
        ok: entry["ok"].as_bool().unwrap_or(false),
        changed,
        failed,
    })
}

pub fn counts(entry: &Value) -> (usize, usize) {
    let actions = entry["actions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let count = |status: &str| actions.iter().filter(|a| a["status"] == status).count();
    (count("changed"), count("failed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ActionReport;
    use crate::testing::{T0, settings, temp_dir};

    fn failover(vhid: &str, status: Status) -> Report {
        let mut r = Report::new("failover");
        r.actions
            .push(ActionReport::new(vhid, "route", "rtb-1", "x".into(), status));
        r
    }

    #[test]
    fn only_runs_that_changed_or_failed_something_are_kept() {
        assert!(worth_recording(&failover("wan@1", Status::Changed), false));
        assert!(worth_recording(&failover("wan@1", Status::Failed), false));
        assert!(!worth_recording(&failover("wan@1", Status::Unchanged), false));
        assert!(!worth_recording(&failover("wan@1", Status::Changed), true));
        assert!(!worth_recording(&Report::fail("failover", "bad config"), false));
    }

    #[test]
    fn status_finds_each_vhids_newest_failover() {
        let s = settings(&temp_dir("history-last"), "<pfsense/>");
        record(&s, &failover("wan@1", Status::Failed), T0, 900);
        record(&s, &failover("lan@2", Status::Changed), T0 + 1000, 300);
        record(&s, &failover("wan@1", Status::Changed), T0 + 2000, 812);
        let e = entries(&s).unwrap();
        assert_eq!(e.len(), 3);
        let wan = last_failover(&e, "wan@1").unwrap();
        assert_eq!(
            (wan.started.as_str(), wan.ms, wan.ok, wan.changed, wan.failed),
            ("2026-11-26T10:00:02.000Z", 812, true, 1, 0)
        );
        assert!(last_failover(&e, "opt1@3").is_none());
    }
}
