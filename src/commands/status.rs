//! `awsha status`: per VHID, the CARP state and, for every action, where AWS points now, whether
//! that matches this node's state, and who changed it last. Reads only.

use tokio::time::Instant;

use crate::core::history;
use crate::core::observe::{compare, look, named_vhids, vhid_states};
use crate::core::plan;
use crate::edges::Edges;
use crate::log::Level;
use crate::pfsense::ifconfig::CarpState;
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::{Action, validate};
use crate::report::{ActionReport, Observed, Outcome, Report, Status};
use crate::settings::Settings;

pub async fn run<E: Edges>(edges: &E, s: &Settings) -> Outcome {
    let deadline = Instant::now() + s.deadline;
    let cfg = PfConfig::load(&s.config_path)?;
    let v = validate(&cfg);
    let facts = edges.host_facts().await?;
    let mut report = Report::new("status");
    let named = named_vhids(&cfg, &v, &facts);
    // The history tells when each VHID last failed over; a history that cannot be read costs
    // only that column.
    let history = history::entries(s).unwrap_or_else(|e| {
        report.notice(Level::Warning, "history", format!("{e:#}"));
        Vec::new()
    });
    report.vhids = Some(vhid_states(&named, |vhid| history::last_failover(&history, vhid)));
    for p in v.problems() {
        // One key per field, so the package tells the problems apart (docs/contracts.md §4.5).
        let key = format!("config:{}", p.place());
        report.notice(Level::Error, key, format!("{}: {p}", cfg.path.display()));
    }
    let actions: Vec<&Action> = v.actions.iter().collect();
    if actions.is_empty() {
        report.text.push("no valid awsha rows".into());
        return Ok(report);
    }
    // The instance is the report's even when looking fails after IMDS named it.
    let (me, _, obs) = look(edges, s, &cfg, &facts, &actions, &v.actions, deadline).await?;
    report.instance = Some(me.instance.clone());
    report.text.push(format!(
        "awsha status on {} (reconcile {}; in sync = points here exactly when this node is MASTER)",
        me.instance,
        if cfg.settings.enable { "on" } else { "off" }
    ));
    for v in report.vhids.iter().flatten() {
        let last = match &v.last_failover {
            Some(f) => format!(
                "last failover {} took {} ms: {} ({} changed, {} failed)",
                f.started,
                f.ms,
                if f.ok { "ok" } else { "FAILED" },
                f.changed,
                f.failed
            ),
            None => "no failover recorded on this node".into(),
        };
        report.text.push(format!("  {:<12} {:<7} {last}", v.vhid, v.state));
    }
    for a in &actions {
        let state = named
            .iter()
            .find(|(i, _, _)| *i == a.vip)
            .map(|(_, _, st)| *st)
            .unwrap_or(CarpState::Absent);
        let eni = me
            .enis
            .get(a.kind.interface())
            .cloned()
            .unwrap_or_else(|| Err("not looked up".into()));
        let (resource, desired) = plan::describe(a, eni.as_ref().ok().map(|e| e.id.as_str()));
        let mut line = ActionReport::new(&a.vhid, a.kind.name(), &resource, desired.clone(), Status::Unchanged);
        let mut observed = Observed {
            state: Some(state.to_string()),
            ..Observed::default()
        };
        match eni {
            Err(why) => line = line.failed(why),
            Ok(eni) => {
                let cmp = compare(a, &eni, &obs, &me.instance);
                observed.desired = Some(desired);
                observed.actual = Some(cmp.actual.clone());
                observed.last_writer = cmp.writer.clone();
                match cmp.in_sync {
                    Err(e) => line = line.failed(e),
                    Ok(here) => {
                        let in_sync = here == (state == CarpState::Master);
                        observed.points_here = Some(here);
                        observed.in_sync = Some(in_sync);
                        if !in_sync {
                            line.status = Status::Skipped;
                            line.reason = Some(if here {
                                format!("points here although this node is {state}")
                            } else {
                                format!("points at {} although this node is MASTER", cmp.actual)
                            });
                        }
                    }
                }
            }
        }
        line.observed = Some(observed);
        report.actions.push(line);
    }
    report.text.push(String::new());
    report.text.extend(table(&report.actions));
    for a in report.actions.iter().filter(|a| a.status == Status::Failed) {
        report.text.push(format!(
            "error: {} {} {}: {}",
            a.vhid,
            a.kind,
            a.resource,
            a.error.as_deref().unwrap_or("")
        ));
    }
    report.actions_in_text = true;
    Ok(report)
}

/// The human table: one row per action, columns as wide as their widest cell.
fn table(actions: &[ActionReport]) -> Vec<String> {
    let mut rows: Vec<[String; 7]> = vec![
        [
            "VHID",
            "STATE",
            "KIND",
            "RESOURCE",
            "NOW POINTS AT",
            "IN SYNC",
            "LAST WRITER",
        ]
        .map(String::from),
    ];
    for a in actions {
        let obs = a.observed.clone().unwrap_or_default();
        let writer = match &obs.last_writer {
            Some(w) => format!(
                "{} advskew {} at {}",
                w.instance,
                w.advskew,
                crate::base::time::format_rfc3339_millis(w.modified)
            ),
            None => "-".into(),
        };
        let in_sync = match obs.in_sync {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "?",
        };
        rows.push([
            a.vhid.clone(),
            obs.state.clone().unwrap_or_default(),
            a.kind.to_string(),
            // Two routes of one table differ only by their destination: name it.
            match a.target.split_once(" -> ") {
                Some((dest, _)) if a.kind == "route" => format!("{} {dest}", a.resource),
                _ => a.resource.clone(),
            },
            match &obs.actual {
                Some(actual) => actual.clone(),
                None if a.status == Status::Failed => "(error below)".to_string(),
                None => String::new(),
            },
            in_sync.to_string(),
            writer,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}
