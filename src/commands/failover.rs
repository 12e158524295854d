//! `awsha failover <VHID>`: on CARP MASTER, point the VHID's addresses, routes and Elastic IPs at
//! this node, as fast as EC2 allows, then tag what changed.

use std::collections::HashMap;

use tokio::time::Instant;

use crate::aws::ec2::{AwsEc2, Ec2};
use crate::aws::imds::AwsImds;
use crate::base::time::now_millis;
use crate::core::apply::{self, Outcome};
use crate::core::tags::Stamp;
use crate::pfsense::config::{Action, PfConfig, Problem};
use crate::pfsense::ifconfig::{CarpState, Host, HostFacts, Ifconfig};
use crate::report::{ActionReport, Report, Status};
use crate::settings::Settings;
use crate::{aws::throttle, core::node, core::plan, log, pfsense::config, pfsense::run_dir, pfsense::vhid};

pub struct Request<'a> {
    pub vhid: &'a str,
    pub dry_run: bool,
    pub force: bool,
}

pub async fn run(s: &Settings, req: Request<'_>, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let deadline = Instant::now() + s.deadline;
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return Report::fail("failover", format!("{e:#}")),
    };
    let vip = match vhid::resolve(req.vhid, &cfg) {
        Ok(v) => v,
        Err(e) => return Report::fail("failover", format!("{}: {e}", cfg.path.display())),
    };
    let vhid = cfg.vips[vip].canonical();
    let validated = config::validate(&cfg);
    // Only this VHID's rows (and the settings it uses) can stop its failover; other rows' problems
    // are the operator's to fix but must not cost this VHID its traffic.
    let mut blocking: Vec<&Problem> = validated.settings_problems.iter().collect();
    blocking.extend(validated.invalid_for(vip).iter().flat_map(|r| r.problems.iter()));
    if let Some(first) = blocking.first() {
        let more = if blocking.len() > 1 {
            format!(" (and {} more problems)", blocking.len() - 1)
        } else {
            String::new()
        };
        return Report::fail("failover", format!("{}: {first}{more}", cfg.path.display()));
    }
    for p in validated
        .invalid
        .iter()
        .filter(|r| r.vip != Some(vip))
        .flat_map(|r| r.problems.iter())
    {
        log::warn(&format!("{}: {p} (not used by {vhid})", cfg.path.display()));
    }
    let actions: Vec<&Action> = validated.actions_for(vip);
    let mut report = Report::new("failover");
    if actions.is_empty() {
        report
            .text
            .push(format!("failover {vhid}: no awsha rows name this VHID; nothing to do"));
        return report;
    }

    let host = Ifconfig {
        program: s.ifconfig.clone(),
        timeout: std::time::Duration::from_secs(5),
    };
    let device = cfg
        .interface(&cfg.vips[vip].interface)
        .map(|i| i.device.clone())
        .unwrap_or_default();
    let read_state = || -> Result<(HostFacts, CarpState), String> {
        let facts = host.facts().map_err(|e| format!("{e:#}"))?;
        let state = facts.state(&device, cfg.vips[vip].vhid);
        Ok((facts, state))
    };
    let (mut facts, state) = match read_state() {
        Ok(v) => v,
        Err(e) => return Report::fail("failover", e),
    };
    // A stale event (CARP already moved on) must not steal the resources back.
    if state != CarpState::Master && !req.force {
        return skipped(report, &actions, &format!("not MASTER ({state})"));
    }

    // Uncontended (the usual case): no wait, so CARP cannot have moved in between.
    let (lock, waited) = match run_dir::try_lock(&s.run_dir, &vhid) {
        Ok(Some(l)) => (Ok(Some(l)), false),
        Ok(None) => (run_dir::lock_until(&s.run_dir, &vhid, deadline).await, true),
        Err(e) => (Err(e), false),
    };
    let _lock = match lock {
        Ok(Some(l)) => l,
        Ok(None) => {
            for a in &actions {
                let (resource, target) = plan::describe(a, None);
                report.actions.push(
                    ActionReport::new(&vhid, a.kind.name(), &resource, target, Status::Planned)
                        .failed("timed out waiting for the lock"),
                );
            }
            report.vhid_notice(
                "error",
                "lock",
                &vhid,
                None,
                format!("failover {vhid}: timed out waiting for another failover of {vhid}"),
            );
            return report;
        }
        Err(e) => return Report::fail("failover", e),
    };
    if waited && !req.force {
        // CARP may have moved while this process waited for the lock.
        match read_state() {
            Ok((f, CarpState::Master)) => facts = f,
            Ok((_, now)) => {
                return skipped(
                    report,
                    &actions,
                    &format!("not MASTER ({now}) after waiting for the lock"),
                );
            }
            Err(e) => return Report::fail("failover", e),
        }
    }

    let interfaces = interfaces_of(&actions);
    let imds = AwsImds::new(deadline);
    let region = node::configured_region(&cfg, env);
    let me = match node::discover(&imds, &cfg, &facts, &interfaces, false, region).await {
        Ok(n) => n,
        Err(e) => return e.report("failover"),
    };
    report.instance = Some(me.instance.clone());
    for (key, eni) in &me.enis {
        log::debug(&format!(
            "interface {key}: {}",
            eni.as_ref().map(|e| e.id.as_str()).unwrap_or_else(|e| e.as_str())
        ));
    }
    let plan = plan::plan(&actions, &me.eni_ids());

    if req.dry_run {
        report
            .text
            .push(format!("failover {vhid} on {} (dry run: no request sent)", me.instance));
        for (i, (when, calls)) in plan.groups().iter().enumerate() {
            report.text.push(format!("  step {} ({when}):", i + 1));
            report.text.extend(calls.iter().map(|c| format!("    {c}")));
        }
        report.extra.insert("plan".into(), plan.groups_json());
        let outcomes = vec![None; actions.len()];
        fill_actions(
            &mut report,
            &vhid,
            &actions,
            &plan,
            &me.eni_ids(),
            &outcomes,
            Status::Planned,
        );
        return report;
    }

    let ec2 = AwsEc2::connect(&me.region, node::endpoint(&cfg, env).as_deref(), deadline).await;
    let prio = node::priority(&cfg, &facts, vip, &me.instance);
    let stamp_base = Stamp {
        modified: 0,
        advbase: prio.advbase,
        advskew: prio.advskew,
        instance: prio.instance,
        vhid: vhid.clone(),
    };
    report.text.push(format!(
        "failover {vhid} on {} ({state}, advbase {} advskew {})",
        me.instance, stamp_base.advbase, stamp_base.advskew
    ));
    // Recorded before acting, so every tag this run writes is at or after it (§6.1).
    if let Err(e) = run_dir::write_takeover(&s.run_dir, &vhid, now_millis()) {
        log::warn(&e);
        report.vhid_notice("warning", "takeover", &vhid, None, e);
    }
    let started = Instant::now();
    // The moves stop a little before the deadline so that what did move still gets tagged: an
    // untagged change looks to the other node's reconcile like a change by nobody.
    let moves_until = tag_reserve(started, deadline);
    warn_if_over_budget(
        &mut report,
        &vhid,
        &plan,
        moves_until.saturating_duration_since(started),
    );
    let outcomes = apply::execute(&ec2.until(moves_until), &plan, actions.len(), moves_until).await;
    fill_actions(
        &mut report,
        &vhid,
        &actions,
        &plan,
        &me.eni_ids(),
        &outcomes,
        Status::Changed,
    );
    tag_changed(&ec2, &mut report, &plan, &outcomes, stamp_base).await;
    let changed = report.actions.iter().filter(|a| a.status == Status::Changed).count();
    log::info(&format!(
        "failover {vhid}: {changed} of {} actions changed in {} ms",
        report.actions.len(),
        started.elapsed().as_millis()
    ));
    report
}

/// When the moves must stop so CreateTags still fits before `deadline`: a quarter of what is left,
/// at most 2 s (two round trips to a slow endpoint).
pub fn tag_reserve(now: Instant, deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline - (left / 4).min(std::time::Duration::from_secs(2))
}

/// The interface keys the actions need ENIs for, in first-use order.
pub fn interfaces_of(actions: &[&Action]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in actions {
        let i = a.kind.interface().to_string();
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn skipped(mut report: Report, actions: &[&Action], reason: &str) -> Report {
    for a in actions {
        let (resource, target) = plan::describe(a, None);
        report
            .actions
            .push(ActionReport::new(&a.vhid, a.kind.name(), &resource, target, Status::Skipped).with_reason(reason));
    }
    if let Some(a) = actions.first() {
        report
            .text
            .push(format!("failover {}: {reason}; nothing changed", a.vhid));
    }
    report
}

/// One report line per action: `done` for a successful call, `failed` with the error, or
/// `failed` for an action whose interface has no ENI.
pub fn fill_actions(
    report: &mut Report,
    vhid: &str,
    actions: &[&Action],
    plan: &plan::Plan,
    enis: &HashMap<String, Result<String, String>>,
    outcomes: &[Option<Outcome>],
    done: Status,
) {
    for (i, a) in actions.iter().enumerate() {
        let eni = enis
            .get(a.kind.interface())
            .and_then(|e| e.as_ref().ok())
            .map(String::as_str);
        let (resource, target) = plan::describe(a, eni);
        let mut line = ActionReport::new(vhid, a.kind.name(), &resource, target, done);
        if let Some((_, why)) = plan.unresolved.iter().find(|(idx, _)| *idx == i) {
            line = line.failed(why.clone());
        } else if let Some(o) = &outcomes[i] {
            line.ms = o.ms;
            if let Err(e) = &o.result {
                line = line.failed(e.clone());
            }
        }
        if line.status == Status::Failed {
            report.notice_failed(&line);
        }
        report.actions.push(line);
    }
}

/// One CreateTags for every resource an action changed; a failure there is a failed API call
/// (exit 1) but leaves the actions' own statuses as they are.
pub async fn tag_changed<E: Ec2>(
    ec2: &E,
    report: &mut Report,
    plan: &plan::Plan,
    outcomes: &[Option<Outcome>],
    mut stamp: Stamp,
) {
    let ok = |i: usize| outcomes[i].as_ref().is_some_and(|o| o.result.is_ok());
    let mut resources: Vec<String> = Vec::new();
    let mut add = |r: &String| {
        if !resources.contains(r) {
            resources.push(r.clone());
        }
    };
    for s in &plan.assigns {
        if s.actions.iter().any(|i| ok(*i)) {
            add(&s.eni);
        }
    }
    plan.routes.iter().filter(|r| ok(r.action)).for_each(|r| add(&r.table));
    plan.eips
        .iter()
        .filter(|e| ok(e.action))
        .for_each(|e| add(&e.allocation));
    if resources.is_empty() {
        return;
    }
    stamp.modified = now_millis();
    let refused = apply::tag_all(ec2, &resources, &stamp.to_tags()).await;
    if refused.is_empty() {
        return;
    }
    let detail: Vec<String> = refused.iter().map(|(r, e)| format!("{r}: {e}")).collect();
    let msg = format!(
        "{} {}: tagging failed for {} of {} changed resources, which stay untagged (the other member's reconcile cannot tell who moved them): {}",
        report.command,
        stamp.vhid,
        refused.len(),
        resources.len(),
        detail.join("; ")
    );
    log::error(&msg);
    report.vhid_notice("error", "tagging", &stamp.vhid, None, msg);
    report.call_failed = true;
}

/// Says before the moves start when they cannot all fit in `window` at EC2's documented default
/// rates (issue 11: not only by timing out): a warning notice `budget:<vhid>` and a log line.
pub fn warn_if_over_budget(report: &mut Report, vhid: &str, plan: &plan::Plan, window: std::time::Duration) {
    let Some((action, calls, need)) = plan
        .calls_per_action()
        .into_iter()
        .map(|(action, calls)| (action, calls, throttle::estimate(action, calls)))
        .max_by_key(|(_, _, need)| *need)
        .filter(|(_, _, need)| *need > window)
    else {
        return;
    };
    let (burst, refill) = throttle::default_bucket(action);
    let msg = format!(
        "{} {vhid}: {calls} {action} calls need about {} s at EC2's default rate (a burst of {burst}, then {refill} a second, shared with everything else in the account), but this run has {} s before its deadline: what does not fit is left to the next reconcile; raise --deadline (AWSHA_DEADLINE) for this many resources",
        report.command,
        need.as_secs(),
        window.as_secs()
    );
    log::warn(&msg);
    report.vhid_notice("warning", "budget", vhid, None, msg);
}
