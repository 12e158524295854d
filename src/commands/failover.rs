//! `awsha failover <VHID>`: on CARP MASTER, point the VHID's addresses, routes and Elastic IPs at
//! this node, as fast as EC2 allows, then tag what changed.

use std::collections::HashMap;

use anyhow::anyhow;
use tokio::time::Instant;

use crate::aws::ec2::Ec2;
use crate::base::tags::Stamp;
use crate::core::apply::{self, Outcome};
use crate::core::node;
use crate::core::plan::{self, Plan};
use crate::edges::Edges;
use crate::log::{self, Level};
use crate::pfsense::ifconfig::{CarpState, HostFacts};
use crate::pfsense::model::{PfConfig, Problem};
use crate::pfsense::validate::{Action, ActionKind, validate};
use crate::pfsense::{run_dir, vhid};
use crate::report::{ActionReport, Details, Outcome as RunOutcome, Report, Status, Timeline};
use crate::settings::Settings;

pub struct Request<'a> {
    pub vhid: &'a str,
    pub dry_run: bool,
    pub force: bool,
}

pub async fn run<E: Edges>(edges: &E, s: &Settings, req: Request<'_>) -> RunOutcome {
    let deadline = Instant::now() + s.deadline;
    let timeline = Timeline::default();
    let cfg = PfConfig::load(&s.config_path)?;
    timeline.mark("config read");
    let vip = vhid::resolve(req.vhid, &cfg).map_err(|e| anyhow!("{}: {e}", cfg.path.display()))?;
    let vhid = cfg.vips[vip].canonical();
    let validated = validate(&cfg);
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
        return Err(anyhow!("{}: {first}{more}", cfg.path.display()).into());
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
    report.timeline = Some(timeline.clone());
    if actions.is_empty() {
        report
            .text
            .push(format!("failover {vhid}: no awsha rows name this VHID; nothing to do"));
        return Ok(report);
    }

    let (mut facts, state) = carp_state(edges, &cfg, vip).await?;
    // A stale event (CARP already moved on) must not steal the resources back.
    if state != CarpState::Master && !req.force {
        return Ok(skipped(report, &actions, &format!("not MASTER ({state})")));
    }
    timeline.mark(if state == CarpState::Master {
        "MASTER confirmed"
    } else {
        "not MASTER (--force)"
    });

    // Uncontended (the usual case): no wait, so CARP cannot have moved in between.
    let (lock, waited) = match run_dir::try_lock(&s.run_dir, &vhid)? {
        Some(l) => (Some(l), false),
        None => (run_dir::lock_until(&s.run_dir, &vhid, deadline).await?, true),
    };
    let Some(_lock) = lock else {
        for a in &actions {
            let (resource, target) = plan::describe(a, None);
            report.actions.push(
                ActionReport::new(&vhid, a.kind.name(), &resource, target, Status::Planned)
                    .failed("timed out waiting for the lock"),
            );
        }
        report.vhid_notice(
            Level::Error,
            "lock",
            &vhid,
            None,
            format!("failover {vhid}: timed out waiting for another failover of {vhid}"),
        );
        return Ok(report);
    };
    if waited && !req.force {
        // CARP may have moved while this process waited for the lock.
        match carp_state(edges, &cfg, vip).await? {
            (f, CarpState::Master) => facts = f,
            (_, now) => {
                return Ok(skipped(
                    report,
                    &actions,
                    &format!("not MASTER ({now}) after waiting for the lock"),
                ));
            }
        }
    }

    timeline.mark("lock held");
    let interfaces = node::interfaces_of(&actions);
    let imds = edges.imds(deadline);
    // IPv6 moves look for the holder in this node's subnets: only then are they read.
    let full = actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Ip { addr, .. } if addr.is_ipv6()));
    let me = node::discover(&imds, &cfg, &facts, &interfaces, full, node::region(s, &cfg)).await?;
    timeline.mark("IMDS done");
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
        let groups = plan.groups();
        for (i, g) in groups.iter().enumerate() {
            report.text.push(format!("  step {} ({}):", i + 1, g.when));
            report.text.extend(g.calls.iter().map(|c| format!("    {c}")));
        }
        report.details = Details::Plan(groups);
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
        return Ok(report);
    }

    let ec2 = node::open_ec2(edges, s, &cfg, &me, deadline, &timeline).await;
    let prio = node::priority(&cfg, &facts, vip, &me.instance);
    let mut stamp = Stamp {
        modified: 0,
        advbase: prio.advbase,
        advskew: prio.advskew,
        instance: prio.instance,
        vhid: vhid.clone(),
    };
    report.text.push(format!(
        "failover {vhid} on {} ({state}, advbase {} advskew {})",
        me.instance, stamp.advbase, stamp.advskew
    ));
    // Recorded before acting, so every tag this run writes is at or after it (docs/contracts.md §9.2).
    if let Err(e) = run_dir::write_takeover(&s.run_dir, &vhid, edges.now_millis()) {
        report.vhid_notice(Level::Warning, "takeover", &vhid, None, format!("{e:#}"));
    }
    let started = Instant::now();
    // The moves stop a little before the deadline so that what did move still gets tagged: an
    // untagged change looks to the other node's reconcile like a change by nobody.
    let moves_until = apply::tag_reserve(started, deadline);
    apply::warn_if_over_budget(
        &mut report,
        &vhid,
        &plan,
        moves_until.saturating_duration_since(started),
    );
    let subnets = me.subnet_ids();
    let outcomes = apply::execute(&ec2.until(moves_until), &plan, actions.len(), moves_until, &subnets).await;
    fill_actions(
        &mut report,
        &vhid,
        &actions,
        &plan,
        &me.eni_ids(),
        &outcomes,
        Status::Changed,
    );
    stamp.modified = edges.now_millis();
    apply::tag_changed(&ec2, &mut report, &plan, &outcomes, &stamp).await;
    let changed = report.actions.iter().filter(|a| a.status == Status::Changed).count();
    log::info(&format!(
        "failover {vhid}: {changed} of {} actions changed in {} ms",
        report.actions.len(),
        started.elapsed().as_millis()
    ));
    Ok(report)
}

/// ifconfig's view now, and the VIP's CARP state in it.
async fn carp_state<E: Edges>(edges: &E, cfg: &PfConfig, vip: usize) -> anyhow::Result<(HostFacts, CarpState)> {
    let v = &cfg.vips[vip];
    let device = cfg.interface(&v.interface).map(|i| i.device.as_str()).unwrap_or("");
    let facts = edges.host_facts().await?;
    let state = facts.state(device, v.vhid);
    Ok((facts, state))
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
fn fill_actions(
    report: &mut Report,
    vhid: &str,
    actions: &[&Action],
    plan: &Plan,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::time::format_rfc3339_millis;
    use crate::pfsense::model::tests::SAMPLE;
    use crate::testing::*;

    fn request_for(vhid: &'static str, dry_run: bool) -> Request<'static> {
        Request {
            vhid,
            dry_run,
            force: false,
        }
    }

    fn request(dry_run: bool) -> Request<'static> {
        request_for("1@ena0", dry_run)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_event_changes_nothing() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Backup, 0), T0);
        let s = settings(&temp_dir("failover-stale"), SAMPLE);
        let r = run(&edges, &s, request(false)).await.unwrap();
        assert!(r.actions.iter().all(|a| a.status == Status::Skipped), "{:?}", r.actions);
        assert_eq!(r.exit_code(), 0);
        assert!(ec2.names().is_empty(), "not even IMDS-derived calls: {:?}", ec2.names());
        assert!(!run_dir::takeover_path(&s.run_dir, "wan@1").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn master_moves_everything_then_tags_it_with_its_priority() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-master"), SAMPLE);
        let r = run(&edges, &s, request(false)).await.unwrap();
        assert_eq!(r.exit_code(), 0, "{}", r.to_text());
        assert_eq!(r.instance.as_deref(), Some(A));
        assert!(r.actions.iter().all(|a| a.status == Status::Changed));
        assert_eq!(
            wan1_where(&ec2),
            (vec![A_WAN.to_string()], A_LAN.to_string(), Some(A_WAN.to_string()))
        );
        // Tags come last, once, on the three resources, with the running priority.
        assert_eq!(ec2.names().last().unwrap(), "tags");
        let w = ec2.world.borrow();
        for resource in [A_WAN, TABLE, ALLOCATION] {
            assert_eq!(w.tags[resource], stamp_tags(A, 0, "wan@1", T0), "{resource}");
        }
        assert_eq!(run_dir::read_takeover(&s.run_dir, "wan@1"), Some(T0));
        assert_eq!(format_rfc3339_millis(T0), "2026-11-26T10:00:00.000Z");
        // The timeline: the steps in order, then every request sent and answered.
        let events: Vec<String> = r
            .timeline
            .as_ref()
            .unwrap()
            .events()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(
            events[..4],
            ["config read", "MASTER confirmed", "lock held", "IMDS done"]
        );
        assert_eq!(events.iter().filter(|e| e.ends_with(" sent")).count(), 4, "{events:?}");
        assert_eq!(events.last().unwrap(), "tags answered");
    }

    #[tokio::test(start_paused = true)]
    async fn dry_run_sends_nothing_and_shows_the_calls() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-dry"), SAMPLE);
        let r = run(&edges, &s, request(true)).await.unwrap();
        assert!(ec2.names().is_empty());
        assert!(r.actions.iter().all(|a| a.status == Status::Planned));
        let Details::Plan(groups) = &r.details else {
            panic!("no plan: {:?}", r.details)
        };
        assert!(groups[0].calls[0].starts_with("AssignPrivateIpAddresses NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1"));
        assert!(!run_dir::takeover_path(&s.run_dir, "wan@1").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn after_waiting_for_the_lock_carp_is_read_again() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        // Another failover holds wan@1; meanwhile CARP moves on to BACKUP.
        edges.then(a_host(CarpState::Backup, 0));
        let s = settings(&temp_dir("failover-lock"), SAMPLE);
        let held = run_dir::try_lock(&s.run_dir, "wan@1").unwrap().unwrap();
        let release = async {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            drop(held);
        };
        let (r, ()) = tokio::join!(run(&edges, &s, request(false)), release);
        let r = r.unwrap();
        assert!(r.actions.iter().all(|a| a.status == Status::Skipped));
        assert!(
            r.actions[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("after waiting for the lock"),
            "{:?}",
            r.actions[0]
        );
        assert!(ec2.names().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_held_past_the_deadline_fails_every_action() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-lock-timeout"), SAMPLE);
        let _held = run_dir::try_lock(&s.run_dir, "wan@1").unwrap().unwrap();
        let r = run(&edges, &s, request(false)).await.unwrap();
        assert_eq!(r.exit_code(), 1);
        assert!(
            r.actions
                .iter()
                .all(|a| a.error.as_deref() == Some("timed out waiting for the lock"))
        );
        assert_eq!(r.notices[0].key, "lock:wan@1");
        assert!(ec2.names().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn only_this_vhids_invalid_rows_stop_it() {
        let broken = SAMPLE.replace("<ipaddr>10.0.2.10</ipaddr>", "<ipaddr>10.0.2.300</ipaddr>");
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-invalid"), &broken);
        // lan@2's own row is broken: exit 2, nothing sent.
        let lan = run(&edges, &s, request_for("lan@2", false)).await;
        let err = format!("{:#}", lan.unwrap_err().error);
        assert!(err.contains("awshaips row 2 ipaddr"), "{err}");
        assert!(ec2.names().is_empty());
        // wan@1 does not use that row: it fails over.
        let wan = run(&edges, &s, request(false)).await.unwrap();
        assert_eq!(wan.exit_code(), 0, "{}", wan.to_text());
    }

    fn wan3(dry_run: bool) -> Request<'static> {
        request_for("wan@3", dry_run)
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_address_the_peer_holds_is_unassigned_there_then_assigned_here() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host_dual(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-ipv6"), &dual_stack_config());
        let r = run(&edges, &s, wan3(false)).await.unwrap();
        assert_eq!(r.exit_code(), 0, "{}", r.to_text());
        assert_eq!(r.actions[0].target, WAN_VIP6, "RFC 5952 form");
        assert_eq!(holders(&ec2, WAN_VIP6), [A_WAN]);
        let w = ec2.world.borrow();
        assert_eq!(
            w.tables[TABLE][&crate::base::net::Destination::parse("::/0").unwrap()],
            A_LAN
        );
        assert_eq!(w.tags[A_WAN], stamp_tags(A, 0, "wan@3", T0));
        drop(w);
        // Tried at once with the search for its holder; refused; unassigned there; assigned here.
        let moves: Vec<String> = ec2
            .names()
            .into_iter()
            .filter(|n| n.contains('6') || n == "describe_interfaces")
            .collect();
        assert_eq!(moves, ["assign6", "describe_interfaces", "unassign6", "assign6"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_address_nobody_holds_takes_one_call_and_one_already_here_is_never_unassigned() {
        let ec2 = pair_world();
        let vip6: std::net::IpAddr = WAN_VIP6.parse().unwrap();
        ec2.world
            .borrow_mut()
            .enis
            .get_mut(B_WAN)
            .unwrap()
            .ips
            .retain(|i| *i != vip6);
        let edges = FakeEdges::new(&ec2, A, a_host_dual(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-ipv6-free"), &dual_stack_config());
        run(&edges, &s, wan3(false)).await.unwrap();
        assert_eq!(holders(&ec2, WAN_VIP6), [A_WAN]);
        assert_eq!(ec2.names().iter().filter(|n| *n == "assign6").count(), 1);
        // Again: EC2 accepts it (the address is here); nothing is ever unassigned from this node.
        let again = run(&edges, &s, wan3(false)).await.unwrap();
        assert_eq!(again.exit_code(), 0);
        assert!(!ec2.names().contains(&"unassign6".to_string()), "{:?}", ec2.names());
        assert_eq!(holders(&ec2, WAN_VIP6), [A_WAN]);
    }

    #[tokio::test(start_paused = true)]
    async fn dry_run_names_the_ipv6_calls() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host_dual(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("failover-ipv6-dry"), &dual_stack_config());
        let r = run(&edges, &s, wan3(true)).await.unwrap();
        let Details::Plan(groups) = &r.details else {
            panic!("no plan")
        };
        let calls = groups[0].calls.join("\n");
        assert!(
            calls.contains(
                "AssignIpv6Addresses NetworkInterfaceId=eni-0aaaaaaaaaaaaaaa1 Ipv6Addresses=[2600:1f18:abcd:ef00::10]"
            ),
            "{calls}"
        );
        assert!(calls.contains("DestinationIpv6CidrBlock=::/0"), "{calls}");
        assert!(ec2.names().is_empty());
    }
}
