//! `awsha doctor`: prove this node can fail over before it has to. Every check is a line (ok,
//! warn or fail) with a fix hint; IAM is checked with EC2's DryRun wherever the action has one.
//! Doctor never changes AWS: the only real call it may make is an AssignPrivateIpAddresses of
//! addresses this MASTER already holds, which is a no-op.
//!
//! The checks come in the order a node depends on them: config.xml and the box (`local`), then
//! IMDS and the region (here), then EC2 (`aws`). A failed step leaves the later ones out.

mod aws;
mod local;

use std::collections::HashMap;

use tokio::time::Instant;

use crate::aws::imds::{self, Eni};
use crate::core::node;
use crate::edges::Edges;
use crate::pfsense::ifconfig::HostFacts;
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::{Action, Validated, validate};
use crate::report::{Check, CheckStatus, Details, Outcome, Report};
use crate::settings::Settings;

pub(crate) fn check(
    name: impl Into<String>,
    status: CheckStatus,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        hint: hint.into(),
    }
}

pub async fn run<E: Edges>(edges: &E, s: &Settings) -> Outcome {
    let deadline = Instant::now() + s.deadline;
    let mut checks: Vec<Check> = Vec::new();
    let mut report = Report::new("doctor");

    // The box: config.xml, ifconfig, the run directory, the reconcile job.
    let (cfg, validated) = config_check(s, &mut checks);
    let facts = ifconfig_check(edges, s, &mut checks).await;
    checks.push(local::run_dir_check(s));
    if let Some(cfg) = &cfg {
        checks.push(local::reconcile_job_check(s, cfg));
    }

    // IMDS: token, instance, region.
    let imds = edges.imds(deadline);
    let instance = match imds::instance_id(&imds).await {
        Ok(id) => {
            checks.push(check(
                "imds",
                CheckStatus::Ok,
                format!("IMDSv2 token accepted; instance {id}"),
                "",
            ));
            Some(id)
        }
        Err(e) => {
            checks.push(check(
                "imds",
                CheckStatus::Fail,
                format!("{e:#}"),
                "enable the instance metadata service with IMDSv2 (HttpTokens=required is fine, hop limit ≥ 1) and make sure nothing on the firewall blocks 169.254.169.254",
            ));
            None
        }
    };
    report.instance = instance.clone();
    let configured = match &cfg {
        Some(c) => node::region(s, c),
        None => s.region.clone(),
    };
    let region = region_check(&imds, configured, instance.is_some(), &mut checks).await;

    // This node's ENIs for every interface the rows use.
    let actions: Vec<&Action> = validated
        .as_ref()
        .map(|v| v.actions.iter().collect())
        .unwrap_or_default();
    let mut enis: HashMap<String, Result<Eni, String>> = HashMap::new();
    if let (Some(cfg), Some(facts), Some(_)) = (&cfg, &facts, &instance) {
        let interfaces = node::interfaces_of(&actions);
        if let Ok(n) = node::discover(&imds, cfg, facts, &interfaces, true, region.clone()).await {
            enis = n.enis;
        }
        checks.extend(interface_checks(&interfaces, &enis));
        checks.extend(local::address_checks(&actions, &enis));
        checks.extend(local::carp_checks(cfg, &actions, &enis));
    }

    // EC2: endpoint, credentials, permissions, route tables.
    if let Some(region) = &region {
        let endpoint = cfg
            .as_ref()
            .and_then(|c| node::endpoint(s, c))
            .or_else(|| s.endpoint.clone());
        let ec2_facts = aws::Facts {
            actions: &actions,
            enis: &enis,
            host: facts.as_ref(),
            cfg: cfg.as_ref(),
        };
        checks.extend(aws::checks(edges, region, endpoint, deadline, &ec2_facts).await);
    }

    Ok(finish(report, checks))
}

fn config_check(s: &Settings, checks: &mut Vec<Check>) -> (Option<PfConfig>, Option<Validated>) {
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(
                "config",
                CheckStatus::Fail,
                format!("{e:#}"),
                "fix config.xml (see awsha validate)",
            ));
            return (None, None);
        }
    };
    let v = validate(&cfg);
    let problems = v.problems();
    if problems.is_empty() {
        checks.push(check(
            "config",
            CheckStatus::Ok,
            format!("{}: {} valid rows", cfg.path.display(), v.actions.len()),
            "",
        ));
    } else {
        let detail = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
        checks.push(check(
            "config",
            CheckStatus::Fail,
            format!("{}: {detail}", cfg.path.display()),
            "fix the rows named (awsha validate lists every problem)",
        ));
    }
    (Some(cfg), Some(v))
}

async fn ifconfig_check<E: Edges>(edges: &E, s: &Settings, checks: &mut Vec<Check>) -> Option<HostFacts> {
    match edges.host_facts().await {
        Ok(f) => {
            checks.push(check(
                "ifconfig",
                CheckStatus::Ok,
                format!("{} lists {} interfaces", s.ifconfig, f.devices.len()),
                "",
            ));
            Some(f)
        }
        Err(e) => {
            checks.push(check(
                "ifconfig",
                CheckStatus::Fail,
                format!("{e:#}"),
                "awsha reads CARP states and MACs from ifconfig -a (AWSHA_IFCONFIG)",
            ));
            None
        }
    }
}

async fn region_check<I: imds::Imds>(
    imds: &I,
    configured: Option<String>,
    imds_answers: bool,
    checks: &mut Vec<Check>,
) -> Option<String> {
    if let Some(r) = configured {
        checks.push(check("region", CheckStatus::Ok, format!("{r} (configured)"), ""));
        return Some(r);
    }
    if !imds_answers {
        checks.push(check(
            "region",
            CheckStatus::Fail,
            "unknown: no region is configured and IMDS gave none",
            "set the region in the awsha settings, or fix IMDS",
        ));
        return None;
    }
    match imds::region(imds).await {
        Ok(r) => {
            checks.push(check("region", CheckStatus::Ok, format!("{r} (from IMDS)"), ""));
            Some(r)
        }
        Err(e) => {
            checks.push(check(
                "region",
                CheckStatus::Fail,
                format!("{e:#}"),
                "set the region in the awsha settings",
            ));
            None
        }
    }
}

fn interface_checks(interfaces: &[String], enis: &HashMap<String, Result<Eni, String>>) -> Vec<Check> {
    let mut out = Vec::new();
    for key in interfaces {
        match enis.get(key) {
            Some(Ok(eni)) => out.push(check(
                format!("interface {key}"),
                CheckStatus::Ok,
                format!(
                    "{} is {} in {}",
                    key,
                    eni.id,
                    eni.subnet_cidr
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "an unknown subnet".into())
                ),
                "",
            )),
            Some(Err(e)) => out.push(check(
                format!("interface {key}"),
                CheckStatus::Fail,
                e.clone(),
                "rows may only name interfaces backed by an ENI of this instance (awsha interfaces lists them)",
            )),
            None => {}
        }
    }
    out
}

/// The checks as text lines (status, name, detail, hint) and as the report's `checks`; any
/// failed check makes the exit code 1.
fn finish(mut report: Report, checks: Vec<Check>) -> Report {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &checks {
        let mut line = format!("{:<4}  {:<width$}  {}", c.status.as_str(), c.name, c.detail);
        if !c.hint.is_empty() && c.status != CheckStatus::Ok {
            line.push_str(&format!("\n      {:<width$}  hint: {}", "", c.hint));
        }
        report.text.push(line);
    }
    let fails = checks.iter().filter(|c| c.status == CheckStatus::Fail).count();
    let warns = checks.iter().filter(|c| c.status == CheckStatus::Warn).count();
    report
        .text
        .push(format!("{} checks: {fails} failed, {warns} warnings", checks.len()));
    report.call_failed = fails > 0;
    report.details = Details::Checks(checks);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_make_exit_1_and_warnings_do_not() {
        let r = finish(
            Report::new("doctor"),
            vec![
                check("a", CheckStatus::Ok, "x", ""),
                check("b", CheckStatus::Warn, "y", "h"),
            ],
        );
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.to_json()["checks"][1]["status"], "warn");
        let r = finish(Report::new("doctor"), vec![check("a", CheckStatus::Fail, "x", "fix")]);
        assert_eq!(r.exit_code(), 1);
        assert!(r.to_text().contains("hint: fix"));
    }
}
