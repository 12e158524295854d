//! `awsha status`: per VHID, the CARP state and, for every action, where AWS points now, whether
//! that matches this node's state, and who changed it last. Reads only.

use serde_json::json;
use tokio::time::Instant;

use crate::aws::ec2::AwsEc2;
use crate::aws::imds::AwsImds;
use crate::base::time::format_rfc3339_millis;
use crate::commands::reconcile::{compare, named_vhids, observe, pair_resources};
use crate::pfsense::config::{self, Action, PfConfig};
use crate::pfsense::ifconfig::{CarpState, Host, Ifconfig};
use crate::report::{ActionReport, Report, Status};
use crate::settings::Settings;
use crate::{commands::failover, core::node, core::plan};

pub async fn run(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let deadline = Instant::now() + s.deadline;
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return Report::fail("status", format!("{e:#}")),
    };
    let v = config::validate(&cfg);
    let facts = match (Ifconfig {
        program: s.ifconfig.clone(),
        timeout: std::time::Duration::from_secs(5),
    })
    .facts()
    {
        Ok(f) => f,
        Err(e) => return Report::fail("status", format!("{e:#}")),
    };
    let mut report = Report::new("status");
    let named = named_vhids(&cfg, &v, &facts);
    report.vhids = Some(named.iter().map(|(_, n, st)| (n.clone(), st.to_string())).collect());
    for p in v.problems() {
        report.notice("error", "config", format!("{}: {p}", cfg.path.display()));
    }
    let actions: Vec<&Action> = v.actions.iter().collect();
    if actions.is_empty() {
        report.text.push("no valid awsha rows".into());
        return report;
    }
    let imds = AwsImds::new(deadline);
    let me = match node::discover(
        &imds,
        &cfg,
        &facts,
        &failover::interfaces_of(&actions),
        true,
        node::configured_region(&cfg, env),
    )
    .await
    {
        Ok(n) => n,
        Err(e) => return e.report("status"),
    };
    report.instance = Some(me.instance.clone());
    let ec2 = AwsEc2::connect(&me.region, node::endpoint(&cfg, env).as_deref(), deadline).await;
    let obs = observe(&ec2, &actions, &pair_resources(&v.actions), &me.enis, &me.instance).await;
    report.text.push(format!(
        "awsha status on {} (reconcile {}; in sync = points here exactly when this node is MASTER)",
        me.instance,
        if cfg.settings.enable { "on" } else { "off" }
    ));
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
        line.extra.insert("state".into(), json!(state.to_string()));
        match eni {
            Err(why) => line = line.failed(why),
            Ok(eni) => {
                let cmp = compare(a, &eni, &obs, &me.instance);
                line.extra.insert("desired".into(), json!(desired));
                line.extra.insert("actual".into(), json!(cmp.actual));
                if let Some(w) = &cmp.writer {
                    line.extra.insert(
                        "last_writer".into(),
                        json!({"instance": w.instance, "advbase": w.advbase, "advskew": w.advskew,
                               "at": format_rfc3339_millis(w.modified), "vhid": w.vhid}),
                    );
                }
                match cmp.in_sync {
                    Err(e) => line = line.failed(e),
                    Ok(here) => {
                        let in_sync = here == (state == CarpState::Master);
                        line.extra.insert("points_here".into(), json!(here));
                        line.extra.insert("in_sync".into(), json!(in_sync));
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
    report
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
        let get = |k: &str| a.extra.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let writer = match get("last_writer") {
            serde_json::Value::Object(w) => format!(
                "{} advskew {} at {}",
                w["instance"].as_str().unwrap_or(""),
                w["advskew"],
                w["at"].as_str().unwrap_or("")
            ),
            _ => "-".into(),
        };
        let in_sync = match get("in_sync") {
            serde_json::Value::Bool(true) => "yes",
            serde_json::Value::Bool(false) => "NO",
            _ => "?",
        };
        rows.push([
            a.vhid.clone(),
            get("state").as_str().unwrap_or("").to_string(),
            a.kind.to_string(),
            a.resource.clone(),
            get("actual")
                .as_str()
                .unwrap_or(if a.status == Status::Failed {
                    "(error below)"
                } else {
                    ""
                })
                .to_string(),
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
