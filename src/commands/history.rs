//! `awsha history`: the failovers and reconciles that changed or failed something, oldest first
//! (docs/contracts.md §13); `--json` prints them as one array.

use crate::base::text::clip;
use crate::core::history::{counts, entries};
use crate::pfsense::run_dir;
use crate::report::{Details, Outcome, Report};
use crate::settings::Settings;

pub fn run(s: &Settings) -> Outcome {
    let entries = entries(s)?;
    let mut report = Report::new("history");
    if entries.is_empty() {
        report.text.push(format!(
            "no run has changed or failed anything yet ({} is empty)",
            run_dir::history_path(&s.run_dir).display()
        ));
    } else {
        report.text.push(format!(
            "{:<24}  {:<9}  {:<16}  {:>7}  {:>6}  {:>8}  {}",
            "STARTED", "COMMAND", "VHID", "CHANGED", "FAILED", "MS", "SPLIT BRAIN"
        ));
    }
    for e in &entries {
        let (changed, failed) = counts(e);
        let mut vhids: Vec<&str> = e["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(|a| a["vhid"].as_str()).collect())
            .unwrap_or_default();
        vhids.dedup();
        let split = e["split_brain"].as_array().map(Vec::len).unwrap_or(0);
        report.text.push(format!(
            "{:<24}  {:<9}  {:<16}  {changed:>7}  {failed:>6}  {:>8}  {}",
            e["started"].as_str().unwrap_or("?"),
            e["command"].as_str().unwrap_or("?"),
            clip(&vhids.join(","), 16),
            e["ms"].as_u64().unwrap_or(0),
            if split > 0 { split.to_string() } else { "-".into() }
        ));
    }
    report.details = Details::History(entries);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::history::record;
    use crate::report::{ActionReport, Status};
    use crate::testing::{T0, settings, temp_dir};

    #[test]
    fn one_line_per_recorded_run_under_a_header() {
        let s = settings(&temp_dir("history-text"), "<pfsense/>");
        assert!(run(&s).unwrap().to_text().contains("no run has changed"));
        let mut r = Report::new("failover");
        r.actions.push(ActionReport::new(
            "wan@1",
            "route",
            "rtb-1",
            "x".into(),
            Status::Changed,
        ));
        record(&s, &r, T0, 812);
        let report = run(&s).unwrap();
        let text = report.to_text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().nth(1).unwrap().contains("wan@1"), "{text}");
        assert!(report.to_json_output().is_array());
    }
}
