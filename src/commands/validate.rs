//! `awsha validate`: every problem in config.xml's awsha settings, no network.

use std::collections::BTreeSet;

use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::validate;
use crate::report::{Details, Outcome, Report};
use crate::settings::Settings;

pub fn run(s: &Settings) -> Outcome {
    let cfg = PfConfig::load(&s.config_path)?;
    let v = validate(&cfg);
    let problems: Vec<String> = v
        .problems()
        .iter()
        .map(|p| format!("{}: {p}", cfg.path.display()))
        .collect();
    if problems.is_empty() {
        let mut r = Report::new("validate");
        let vhids: BTreeSet<&str> = v.actions.iter().map(|a| a.vhid.as_str()).collect();
        r.text.push(format!(
            "{}: ok ({} rows for {} VHIDs; reconcile {})",
            cfg.path.display(),
            v.actions.len(),
            vhids.len(),
            if cfg.settings.enable { "on" } else { "off" }
        ));
        r.details = Details::Problems(Vec::new());
        return Ok(r);
    }
    let n = problems.len();
    let mut r = Report::fail(
        "validate",
        format!("{n} problem{} in {}", if n == 1 { "" } else { "s" }, cfg.path.display()),
    );
    // Every problem, one per line, on stderr too: the error line alone would hide them.
    for p in &problems {
        eprintln!("{p}");
    }
    r.details = Details::Problems(problems);
    Ok(r)
}
