//! `awsha reconcile`: every 60 s, check that the resources of each VHID this node is MASTER of
//! still point here, and repair drift by the rules of docs/contracts.md §9 — reclaim from a
//! lower-priority member, never fight a higher-priority one, leave fresh changes alone.
//!
//! Observation (`core::observe`) is a fixed handful of calls whatever the number of rows; the
//! verdict per action is `core::judge`'s; this file orders them and repairs under the VHID lock.

use anyhow::anyhow;
use futures_util::future::join_all;
use tokio::time::Instant;

use crate::aws::ec2::Ec2;
use crate::base::tags::{Priority, Stamp};
use crate::base::time::{Millis, format_rfc3339_millis};
use crate::core::judge::{Verdict, judge};
use crate::core::node::{self, Node};
use crate::core::observe::{Observation, compare, look, named_vhids, vhid_states};
use crate::core::{apply, plan};
use crate::edges::Edges;
use crate::log::Level;
use crate::pfsense::ifconfig::{CarpState, HostFacts};
use crate::pfsense::model::PfConfig;
use crate::pfsense::run_dir;
use crate::pfsense::validate::{Action, Validated, validate};
use crate::report::{ActionReport, Observed, Outcome, Report, SplitBrain, Status};
use crate::settings::Settings;

/// T of the reconcile rules: the takeover marker, else the newest change this node tagged for
/// the VHID.
fn takeover_time(s: &Settings, vhid: &str, me: &str, obs: &Observation) -> Option<Millis> {
    run_dir::read_takeover(&s.run_dir, vhid).or_else(|| {
        let tags = obs.tags.as_ref().ok()?;
        tags.values()
            .filter_map(Stamp::from_tags)
            .filter(|st| st.instance == me && st.vhid == vhid)
            .map(|st| st.modified)
            .max()
    })
}

fn invalid_rows(report: &mut Report, v: &Validated, cfg: &PfConfig) {
    for row in &v.invalid {
        let detail = row
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let msg = format!("{}: {detail}", cfg.path.display());
        let resource = row.tab.row_name(row.row);
        report
            .actions
            .push(ActionReport::new(&row.vhid, row.kind, &resource, String::new(), Status::Failed).failed(msg.clone()));
        let text = format!("{} {}: invalid row: {msg}", report.command, row.vhid);
        report.vhid_notice(Level::Error, "invalid", &row.vhid, Some(&resource), text);
    }
}

pub async fn run<E: Edges>(edges: &E, s: &Settings, dry_run: bool) -> Outcome {
    let deadline = Instant::now() + s.deadline;
    let cfg = PfConfig::load(&s.config_path)?;
    let mut report = Report::new("reconcile");
    if !cfg.settings.enable {
        report
            .text
            .push("reconcile is switched off (awsha settings: enable is not ticked); nothing checked".into());
        report.notice(
            Level::Info,
            "disabled",
            "reconcile is switched off in the awsha settings; nothing checked",
        );
        return Ok(report);
    }
    let v = validate(&cfg);
    if let Some(p) = v.settings_problems.first() {
        return Err(anyhow!("{}: {p}", cfg.path.display()).into());
    }
    let facts = edges.host_facts().await?;
    let named = named_vhids(&cfg, &v, &facts);
    report.vhids = Some(vhid_states(&named, |_| None));
    invalid_rows(&mut report, &v, &cfg);
    // docs/contracts.md §6.3: reconcile acts only on VHIDs whose rows are all valid, as failover does; the
    // valid rows of a VHID with an invalid one wait for the fix.
    let (masters, blocked): (Vec<usize>, Vec<usize>) = named
        .iter()
        .filter(|(_, _, st)| *st == CarpState::Master)
        .map(|(i, _, _)| *i)
        .partition(|vip| v.invalid_for(*vip).is_empty());
    for a in v.actions.iter().filter(|a| blocked.contains(&a.vip)) {
        let (resource, target) = plan::describe(a, None);
        // docs/contracts.md §6.3: the reason names the invalid row.
        let rows: Vec<String> = v.invalid_for(a.vip).iter().map(|r| r.tab.row_name(r.row)).collect();
        report.actions.push(
            ActionReport::new(&a.vhid, a.kind.name(), &resource, target, Status::Skipped).with_reason(format!(
                "{} of {} is invalid; fix it first (failover refuses {} too)",
                rows.join(", "),
                a.vhid,
                a.vhid
            )),
        );
    }
    let actions: Vec<&Action> = v.actions.iter().filter(|a| masters.contains(&a.vip)).collect();
    if actions.is_empty() {
        report
            .text
            .push("this node is MASTER of no VHID with valid awsha rows; nothing to check".into());
        return Ok(report);
    }

    // The instance is the report's even when looking fails after IMDS named it.
    let (me, ec2, obs) = look(edges, s, &cfg, &facts, &actions, &v.actions, deadline).await?;
    report.instance = Some(me.instance.clone());
    if obs.holders_by_tags {
        report.notice(
            Level::Info,
            "permission:DescribeNetworkInterfaces",
            "DescribeNetworkInterfaces is not permitted: the holder of a drifted address is taken from awsha tags (grant ec2:DescribeNetworkInterfaces to see it)",
        );
    }
    if let Ok(None) = obs.addresses {
        report.notice(
            Level::Info,
            "permission:DescribeAddresses",
            "DescribeAddresses is not permitted: Elastic IPs are judged by their awsha tags alone (grant ec2:DescribeAddresses to see where they really point)",
        );
    }
    let run = Run {
        s,
        edges,
        cfg: &cfg,
        facts: &facts,
        me: &me,
        ec2: &ec2,
        obs: &obs,
        dry_run,
        deadline,
    };
    // VHIDs at once: one hung call must not starve another VHID's repairs of the deadline.
    for part in join_all(masters.iter().map(|vip| run.vhid(*vip, &actions))).await {
        report.absorb(part);
    }
    let changed = report.actions.iter().filter(|a| a.status == Status::Changed).count();
    report.text.insert(
        0,
        format!(
            "reconcile on {}: {} actions checked, {changed} repaired{}",
            me.instance,
            actions.len(),
            if dry_run { " (dry run: nothing changed)" } else { "" }
        ),
    );
    Ok(report)
}

/// Everything one reconcile run shares across its VHIDs.
struct Run<'a, E: Edges> {
    s: &'a Settings,
    edges: &'a E,
    cfg: &'a PfConfig,
    facts: &'a HostFacts,
    me: &'a Node,
    ec2: &'a E::Ec2,
    obs: &'a Observation,
    dry_run: bool,
    deadline: Instant,
}

/// A drifted action that docs/contracts.md §9.3 says to move back here.
struct Repair {
    line: usize,
    verdict: Verdict,
    writer: Option<Stamp>,
}

impl<E: Edges> Run<'_, E> {
    /// Judges and repairs one VHID this node is MASTER of; returns its part of the report.
    async fn vhid(&self, vip: usize, actions: &[&Action]) -> Report {
        let mut part = Report::new("reconcile");
        let report = &mut part;
        let vhid = self.cfg.vips[vip].canonical();
        let mine: Vec<&Action> = actions.iter().copied().filter(|a| a.vip == vip).collect();
        let prio = node::priority(self.cfg, self.facts, vip, &self.me.instance);
        let takeover = takeover_time(self.s, &vhid, &self.me.instance, self.obs);
        let now = self.edges.now_millis();
        let grace = self.s.grace.as_millis() as Millis;
        let mut lines: Vec<ActionReport> = Vec::new();
        let mut repairs: Vec<Repair> = Vec::new();
        let mut deferred: Vec<(usize, Stamp)> = Vec::new();
        for a in &mine {
            let eni = self
                .me
                .enis
                .get(a.kind.interface())
                .cloned()
                .unwrap_or_else(|| Err("not looked up".into()));
            let (resource, target) = plan::describe(a, eni.as_ref().ok().map(|e| e.id.as_str()));
            let mut line = ActionReport::new(&vhid, a.kind.name(), &resource, target, Status::Unchanged);
            let eni = match eni {
                Ok(e) => e,
                Err(why) => {
                    lines.push(line.failed(why));
                    continue;
                }
            };
            let mut cmp = compare(a, &eni, self.obs, &self.me.instance);
            line.observed = Some(Observed {
                actual: Some(cmp.actual.clone()),
                ..Observed::default()
            });
            // A tag written for another VHID (a route table or ENI both VHIDs use) says nothing of
            // who moved *this* VHID's resource: no other VHID may claim it (validation), so the
            // drift is nobody's — repair, never a split brain with the other VHID's priority.
            cmp.writer = cmp.writer.filter(|w| w.vhid == vhid);
            match cmp.in_sync {
                Err(e) => line = line.failed(e),
                Ok(in_sync) => match judge(!in_sync, cmp.writer.as_ref(), &prio, takeover, now, grace) {
                    Verdict::InSync => {}
                    Verdict::Recent => {
                        line.status = Status::Skipped;
                        line.reason = Some(format!("recent change (less than {} s old)", self.s.grace.as_secs()));
                    }
                    Verdict::Defer => {
                        line.status = Status::Deferred;
                        deferred.extend(cmp.writer.clone().map(|w| (lines.len(), w)));
                    }
                    verdict => {
                        line.status = if self.dry_run { Status::Planned } else { Status::Changed };
                        repairs.push(Repair {
                            line: lines.len(),
                            verdict,
                            writer: cmp.writer.clone(),
                        });
                    }
                },
            }
            lines.push(line);
        }

        if !repairs.is_empty() && !self.dry_run {
            match self.may_repair(&vhid, vip).await {
                Ok(_lock) => self.repair(report, &vhid, &prio, &mine, &repairs, &mut lines).await,
                Err(reason) => {
                    for r in &repairs {
                        lines[r.line].status = Status::Skipped;
                        lines[r.line].reason = Some(reason.clone());
                    }
                }
            }
        }

        // Split brains are reported once the outcome is known (docs/contracts.md §9.5): reclaimed,
        // planned (dry run) or failed. A reclaim skipped before it was tried (a failover holds the
        // VHID, or this node is no longer MASTER) is that run's to settle.
        for r in &repairs {
            let Some(w) = r.writer.as_ref().filter(|_| r.verdict == Verdict::Reclaim) else {
                continue;
            };
            let resolution = match lines[r.line].status {
                Status::Changed => Resolution::Reclaimed,
                Status::Planned => Resolution::Planned,
                Status::Failed => Resolution::Failed,
                _ => continue,
            };
            split_brain(report, &vhid, &lines[r.line].resource, w, &prio, resolution);
        }
        for (i, w) in &deferred {
            split_brain(report, &vhid, &lines[*i].resource, w, &prio, Resolution::Deferred);
        }
        for line in lines.iter().filter(|l| l.status == Status::Failed) {
            report.notice_failed(line);
        }
        report.actions.extend(lines);
        part
    }

    /// Repairs only under the VHID's lock (a running failover owns it) and only while still
    /// MASTER (re-read now, not at the start of the run).
    async fn may_repair(&self, vhid: &str, vip: usize) -> Result<run_dir::VhidLock, String> {
        let held = run_dir::try_lock(&self.s.run_dir, vhid)
            .map_err(|e| format!("{e:#}"))?
            .ok_or("a failover of this VHID is running")?;
        let v = &self.cfg.vips[vip];
        let device = self
            .cfg
            .interface(&v.interface)
            .map(|f| f.device.as_str())
            .unwrap_or("");
        let facts = self
            .edges
            .host_facts()
            .await
            .map_err(|e| format!("cannot re-read CARP state: {e:#}"))?;
        match facts.state(device, v.vhid) {
            CarpState::Master => Ok(held),
            now => Err(format!("no longer MASTER ({now})")),
        }
    }

    async fn repair(
        &self,
        report: &mut Report,
        vhid: &str,
        prio: &Priority,
        mine: &[&Action],
        repairs: &[Repair],
        lines: &mut [ActionReport],
    ) {
        let subset: Vec<&Action> = repairs.iter().map(|r| mine[r.line]).collect();
        let p = plan::plan(&subset, &self.me.eni_ids());
        let now = Instant::now();
        let moves_until = apply::tag_reserve(now, self.deadline);
        apply::warn_if_over_budget(report, vhid, &p, moves_until.saturating_duration_since(now));
        let subnets = self.me.subnet_ids();
        let outcomes = apply::execute(&self.ec2.until(moves_until), &p, subset.len(), moves_until, &subnets).await;
        for (k, r) in repairs.iter().enumerate() {
            let line = &mut lines[r.line];
            let result = match &outcomes[k] {
                Some(o) => {
                    line.ms = o.ms;
                    o.result.clone()
                }
                None => Err(p
                    .unresolved
                    .iter()
                    .find(|(u, _)| *u == k)
                    .map(|(_, w)| w.clone())
                    .unwrap_or_default()),
            };
            match result {
                Err(e) => *line = line.clone().failed(e),
                Ok(()) if r.verdict == Verdict::Repair => {
                    let by = r
                        .writer
                        .as_ref()
                        .map(|w| {
                            format!(
                                " (last changed by {} at {})",
                                w.instance,
                                format_rfc3339_millis(w.modified)
                            )
                        })
                        .unwrap_or_default();
                    let was = line.actual().unwrap_or("?");
                    let msg = format!(
                        "reconcile {vhid}: {} {} pointed at {was}{by}; moved back here",
                        line.kind, line.resource
                    );
                    let detail = format!("{}:{}", line.kind, line.resource);
                    report.vhid_notice(Level::Warning, "repaired", vhid, Some(&detail), msg);
                }
                Ok(()) => {}
            }
        }
        let stamp = Stamp {
            modified: self.edges.now_millis(),
            advbase: prio.advbase,
            advskew: prio.advskew,
            instance: self.me.instance.clone(),
            vhid: vhid.to_string(),
        };
        apply::tag_changed(self.ec2, report, &p, &outcomes, &stamp).await;
    }
}

/// How a split brain was settled (`resolution` in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    Reclaimed,
    Planned,
    Failed,
    Deferred,
}

impl Resolution {
    fn as_str(self) -> &'static str {
        match self {
            Resolution::Reclaimed => "reclaimed",
            Resolution::Planned => "planned",
            Resolution::Failed => "failed",
            Resolution::Deferred => "deferred",
        }
    }
}

fn split_brain(report: &mut Report, vhid: &str, resource: &str, w: &Stamp, me: &Priority, resolution: Resolution) {
    let at = format_rfc3339_millis(w.modified);
    report.split_brain.push(SplitBrain {
        vhid: vhid.to_string(),
        resource: resource.to_string(),
        by_instance: w.instance.clone(),
        advbase: w.advbase,
        advskew: w.advskew,
        at: at.clone(),
        resolution: resolution.as_str(),
    });
    let msg = if resolution != Resolution::Deferred {
        format!(
            "split brain on {vhid}: {} (advbase {} advskew {}) took {resource} at {at} while this node (advbase {} advskew {}) is MASTER; it has lower priority, so {}",
            w.instance,
            w.advbase,
            w.advskew,
            me.advbase,
            me.advskew,
            match resolution {
                Resolution::Planned => "it would be reclaimed (dry run)",
                Resolution::Failed => "this node tried to reclaim it and failed (see the action's error)",
                _ => "this node reclaimed it",
            }
        )
    } else {
        format!(
            "split brain on {vhid}: {} (advbase {} advskew {}) holds {resource} since {at} and has higher priority than this node (advbase {} advskew {}); leaving it. Both nodes claim MASTER: check that CARP (IP protocol 112) passes between them",
            w.instance, w.advbase, w.advskew, me.advbase, me.advskew
        )
    };
    report.vhid_notice(Level::Error, "split_brain", vhid, Some(resource), msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfsense::model::tests::SAMPLE;
    use crate::testing::*;

    /// Node A, MASTER with `advskew`, after its failover at T0 (everything of both VHIDs at A,
    /// tagged by A, takeover marks at T0), judged a minute later.
    async fn after_failover(name: &str, advskew: u32) -> (FakeEc2, FakeEdges, Settings) {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host(CarpState::Master, advskew), T0);
        let s = settings(&temp_dir(name), SAMPLE);
        for vhid in ["1@ena0", "2@ena1"] {
            let req = crate::commands::failover::Request {
                vhid,
                dry_run: false,
                force: false,
            };
            let r = crate::commands::failover::run(&edges, &s, req).await.unwrap();
            assert_eq!(r.exit_code(), 0, "{}", r.to_text());
        }
        ec2.world.borrow_mut().calls.clear();
        edges.now.set(T0 + 60_000);
        (ec2, edges, s)
    }

    /// B takes wan@1's route back at `at`, tagging it with its `advskew`.
    fn b_takes_the_route(ec2: &FakeEc2, advskew: u32, at: Millis) {
        let mut w = ec2.world.borrow_mut();
        *w.tables.get_mut(TABLE).unwrap().values_mut().next().unwrap() = B_LAN.to_string();
        w.tags.insert(TABLE.into(), stamp_tags(B, advskew, "wan@1", at));
    }

    fn route_line(r: &Report) -> &ActionReport {
        r.actions.iter().find(|a| a.kind == "route").expect("a route action")
    }

    #[tokio::test(start_paused = true)]
    async fn in_sync_means_reads_only() {
        let (ec2, edges, s) = after_failover("reconcile-sync", 0).await;
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(r.exit_code(), 0, "{}", r.to_text());
        assert!(
            r.actions.iter().all(|a| a.status == Status::Unchanged),
            "{:?}",
            r.actions
        );
        assert_eq!(ec2.mutations(), 0, "{:?}", ec2.names());
        assert!(r.split_brain.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_priority_member_that_took_over_after_us_is_reclaimed() {
        let (ec2, edges, s) = after_failover("reconcile-reclaim", 0).await;
        b_takes_the_route(&ec2, 100, T0 + 1000);
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Changed);
        assert_eq!(r.split_brain.len(), 1);
        assert_eq!(r.split_brain[0].resolution, "reclaimed");
        assert_eq!(r.split_brain[0].by_instance, B);
        assert_eq!(wan1_where(&ec2).1, A_LAN);
        assert_eq!(ec2.world.borrow().tags[TABLE], stamp_tags(A, 0, "wan@1", T0 + 60_000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_higher_priority_member_is_never_fought() {
        let (ec2, edges, s) = after_failover("reconcile-defer", 100).await;
        b_takes_the_route(&ec2, 0, T0 + 1000);
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Deferred);
        assert_eq!(r.split_brain[0].resolution, "deferred");
        assert_eq!(ec2.mutations(), 0);
        assert_eq!(wan1_where(&ec2).1, B_LAN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_within_the_grace_time_waits() {
        let (ec2, edges, mut s) = after_failover("reconcile-recent", 0).await;
        s.grace = std::time::Duration::from_secs(15);
        b_takes_the_route(&ec2, 100, T0 + 55_000);
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Skipped);
        assert!(route_line(&r).reason.as_deref().unwrap().starts_with("recent change"));
        assert_eq!(ec2.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dry_run_plans_the_reclaim_and_sends_nothing() {
        let (ec2, edges, s) = after_failover("reconcile-dry", 0).await;
        b_takes_the_route(&ec2, 100, T0 + 1000);
        let r = run(&edges, &s, true).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Planned);
        assert_eq!(r.split_brain[0].resolution, "planned");
        assert_eq!(ec2.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_reclaim_is_still_a_split_brain() {
        let (ec2, edges, s) = after_failover("reconcile-failed", 0).await;
        b_takes_the_route(&ec2, 100, T0 + 1000);
        ec2.fail_next("replace", crate::aws::ec2::ApiError::new("InternalError", "try later"));
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Failed);
        assert_eq!(r.split_brain[0].resolution, "failed");
        assert!(r.notices.iter().any(|n| n.key == format!("failed:wan@1:route:{TABLE}")));
        assert_eq!(r.exit_code(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_longer_master_at_the_re_read_means_hands_off() {
        let (ec2, edges, s) = after_failover("reconcile-reread", 0).await;
        b_takes_the_route(&ec2, 100, T0 + 1000);
        // ifconfig: MASTER when the run starts, BACKUP when it is about to repair.
        edges.then(a_host(CarpState::Backup, 0));
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(route_line(&r).status, Status::Skipped);
        assert_eq!(route_line(&r).reason.as_deref(), Some("no longer MASTER (BACKUP)"));
        assert_eq!(ec2.mutations(), 0);
        assert!(
            r.split_brain.is_empty(),
            "not tried: the failover of the new MASTER settles it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn another_pairs_eni_never_counts_as_the_holder() {
        let (ec2, edges, s) = after_failover("reconcile-other-pair", 100).await;
        {
            let mut w = ec2.world.borrow_mut();
            // Without DescribeNetworkInterfaces, the holder is searched by tags. Another pair in
            // the account tagged its own ENI for `wan@1`, with a higher priority and later.
            w.denied.push("describe_interfaces");
            w.tags.insert(
                "eni-0eeeeeeeeeeeeeee1".into(),
                stamp_tags("i-0eeeeeeeeeeeeeee1", 0, "wan@1", T0 + 5000),
            );
            // wan@1's address left this node (moved by hand: no tags).
            let ip: std::net::Ipv4Addr = WAN_VIP.parse().unwrap();
            w.enis.get_mut(A_WAN).unwrap().ips.retain(|i| *i != ip);
        }
        let r = run(&edges, &s, false).await.unwrap();
        let ip = r.actions.iter().find(|a| a.kind == "ip" && a.vhid == "wan@1").unwrap();
        assert_eq!(ip.status, Status::Changed, "{}", r.to_text());
        assert!(r.split_brain.is_empty(), "{:?}", r.split_brain);
        assert!(wan1_where(&ec2).0.contains(&A_WAN.to_string()));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_in_sync_reads_only_and_a_lower_priority_taker_is_reclaimed() {
        let ec2 = pair_world();
        let edges = FakeEdges::new(&ec2, A, a_host_dual(CarpState::Master, 0), T0);
        let s = settings(&temp_dir("reconcile-ipv6"), &dual_stack_config());
        for vhid in ["wan@1", "lan@2", "wan@3"] {
            let req = crate::commands::failover::Request {
                vhid,
                dry_run: false,
                force: false,
            };
            crate::commands::failover::run(&edges, &s, req).await.unwrap();
        }
        ec2.world.borrow_mut().calls.clear();
        edges.now.set(T0 + 60_000);
        let r = run(&edges, &s, false).await.unwrap();
        assert_eq!(ec2.mutations(), 0, "{:?} {}", ec2.names(), r.to_text());
        // B moves the IPv6 VIP back to itself, with lower priority, after A's takeover.
        {
            let mut w = ec2.world.borrow_mut();
            let vip6: std::net::IpAddr = WAN_VIP6.parse().unwrap();
            w.enis.get_mut(A_WAN).unwrap().ips.retain(|i| *i != vip6);
            w.enis.get_mut(B_WAN).unwrap().ips.push(vip6);
            w.tags.insert(B_WAN.into(), stamp_tags(B, 100, "wan@3", T0 + 1000));
        }
        let r = run(&edges, &s, false).await.unwrap();
        let ip = r.actions.iter().find(|a| a.vhid == "wan@3" && a.kind == "ip").unwrap();
        assert_eq!(ip.status, Status::Changed, "{}", r.to_text());
        assert_eq!(r.split_brain.len(), 1);
        assert_eq!(r.split_brain[0].resolution, "reclaimed");
        assert_eq!(holders(&ec2, WAN_VIP6), [A_WAN]);
    }
}
