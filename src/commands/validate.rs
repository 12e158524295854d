//! `awsha validate`: every problem in config.xml's awsha settings, no network.

use serde_json::json;

use crate::pfsense::config::{self, PfConfig};
use crate::report::Report;
use crate::settings::Settings;

pub fn run(s: &Settings) -> Report {
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return Report::fail("validate", format!("{e:#}")),
    };
    let v = config::validate(&cfg);
    let problems: Vec<String> = v
        .problems()
        .iter()
        .map(|p| format!("{}: {p}", cfg.path.display()))
        .collect();
    let mut report = if problems.is_empty() {
        let mut r = Report::new("validate");
        let vhids: std::collections::BTreeSet<&str> = v.actions.iter().map(|a| a.vhid.as_str()).collect();
        r.text.push(format!(
            "{}: ok ({} rows for {} VHIDs; reconcile {})",
            cfg.path.display(),
            v.actions.len(),
            vhids.len(),
            if cfg.settings.enable { "on" } else { "off" }
        ));
        r
    } else {
        let n = problems.len();
        let mut r = Report::fail(
            "validate",
            format!("{n} problem{} in {}", if n == 1 { "" } else { "s" }, cfg.path.display()),
        );
        // Every problem, one per line, on stderr too: the error line alone would hide them.
        for p in &problems {
            eprintln!("{p}");
        }
        r.extra.insert("problems".into(), json!(problems));
        r
    };
    report.extra.entry("problems").or_insert_with(|| json!([]));
    report
}
