//! `awsha reconcile`: every 60 s, check that the resources of each VHID this node is MASTER of
//! still point here, and repair drift by the rules of design.md §6.1 — reclaim from a
//! lower-priority member, never fight a higher-priority one, leave fresh changes alone.
//!
//! Observation is a fixed handful of calls whatever the number of rows: DescribeRouteTables,
//! DescribeTags and DescribeAddresses at once, IMDS for this node's addresses, and
//! DescribeNetworkInterfaces only when an address has drifted.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde_json::json;
use tokio::time::Instant;

use crate::aws::ec2::{Address, AwsEc2, Ec2, NetworkInterface, RouteTable, TagMap};
use crate::aws::imds::{AwsImds, Eni};
use crate::base::time::{Millis, format_rfc3339_millis, now_millis};
use crate::core::tags::{Priority, Stamp};
use crate::pfsense::config::{Action, ActionKind, PfConfig, Validated};
use crate::pfsense::ifconfig::{CarpState, Host, HostFacts, Ifconfig};
use crate::report::{ActionReport, Report, SplitBrain, Status};
use crate::settings::Settings;
use crate::{commands::failover, core::apply, core::node, core::plan, log, pfsense::config, pfsense::run_dir};

/// What §6.1 decides for one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    InSync,
    /// Changed less than the grace time ago: the other member may be mid-failover, and EC2 is
    /// eventually consistent. Look again next run.
    Recent,
    /// Drift by nobody, by this node, or older than this node's takeover: just fix it.
    Repair,
    /// Split brain with a lower-priority member: take it back.
    Reclaim,
    /// Split brain with a higher-priority member: leave it.
    Defer,
}

/// The rules of design.md §6.1 for one resource. `writer`: the resource's last awsha writer;
/// `takeover`: when this node took the VHID over (T).
pub fn judge(
    drifted: bool,
    writer: Option<&Stamp>,
    me: &Priority,
    takeover: Option<Millis>,
    now: Millis,
    grace_ms: Millis,
) -> Verdict {
    if !drifted {
        return Verdict::InSync;
    }
    let Some(w) = writer else { return Verdict::Repair };
    if now - w.modified < grace_ms {
        return Verdict::Recent;
    }
    if w.instance == me.instance {
        return Verdict::Repair;
    }
    if let Some(t) = takeover
        && w.modified < t
    {
        return Verdict::Repair;
    }
    if me.is_preferred_over(&w.priority()) {
        Verdict::Reclaim
    } else {
        Verdict::Defer
    }
}

/// The AWS side of every action, read once.
pub struct Observation {
    /// Err: DescribeRouteTables failed.
    pub tables: Result<HashMap<String, RouteTable>, String>,
    pub tags: Result<TagMap, String>,
    /// Ok(None): DescribeAddresses is not permitted; judged by tags alone.
    pub addresses: Result<Option<HashMap<String, Address>>, String>,
    /// Who holds each drifted address (with that ENI's tags).
    pub holders: Result<HashMap<Ipv4Addr, NetworkInterface>, String>,
    /// DescribeNetworkInterfaces was not permitted: holders were inferred from awsha tags.
    pub holders_by_tags: bool,
    /// The instances of this pair (design.md §10.1): this node and every instance named by the
    /// awsha tags of the route tables and Elastic IPs this node's config.xml lists. Another pfSense
    /// pair in the account uses the same VHID names, so only these may be a last writer found by
    /// the account-wide tag search.
    pub members: BTreeSet<String>,
}

/// Every route table and Elastic IP allocation of `actions` (the whole config's valid rows): their
/// tags name the members of this pair.
pub fn pair_resources(actions: &[Action]) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for a in actions {
        match &a.kind {
            ActionKind::Route { table, .. } => out.insert(table.clone()),
            ActionKind::Eip { allocation, .. } => out.insert(allocation.clone()),
            ActionKind::Ip { .. } => false,
        };
    }
    out.into_iter().collect()
}

/// One action compared with AWS.
#[derive(Clone, Debug)]
pub struct Compared {
    /// Ok(true) in sync; Err: could not be observed.
    pub in_sync: Result<bool, String>,
    /// What AWS points at now, as text.
    pub actual: String,
    /// The resource whose tags name the last writer, and those tags.
    pub writer: Option<Stamp>,
}

/// `me`: this node's instance id (to tell its own tags from the other member's); `pair`: the
/// resources whose tags name this pair's members (`pair_resources`), read in the same DescribeTags.
pub async fn observe<E: Ec2>(
    ec2: &E,
    actions: &[&Action],
    pair: &[String],
    enis: &HashMap<String, Result<Eni, String>>,
    me: &str,
) -> Observation {
    let mut tables: BTreeSet<String> = BTreeSet::new();
    let mut allocations: BTreeSet<String> = BTreeSet::new();
    let mut tagged: BTreeSet<String> = pair.iter().cloned().collect();
    for a in actions {
        match &a.kind {
            ActionKind::Route { table, .. } => {
                tables.insert(table.clone());
                tagged.insert(table.clone());
            }
            ActionKind::Eip { allocation, .. } => {
                allocations.insert(allocation.clone());
                tagged.insert(allocation.clone());
            }
            ActionKind::Ip { interface, .. } => {
                if let Some(Ok(eni)) = enis.get(interface) {
                    tagged.insert(eni.id.clone());
                }
            }
        }
    }
    let vec = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    let (tables_v, allocations_v, tagged_v) = (vec(&tables), vec(&allocations), vec(&tagged));
    let tables_call = async {
        if tables_v.is_empty() {
            return Ok(HashMap::new());
        }
        ec2.describe_route_tables(&tables_v)
            .await
            .map(|ts| ts.into_iter().map(|t| (t.id.clone(), t)).collect())
            .map_err(|e| format!("DescribeRouteTables: {e}"))
    };
    let tags_call = async {
        if tagged_v.is_empty() {
            return Ok(TagMap::new());
        }
        ec2.describe_tags(&tagged_v)
            .await
            .map_err(|e| format!("DescribeTags: {e}"))
    };
    let addresses_call = async {
        if allocations_v.is_empty() {
            return Ok(Some(HashMap::new()));
        }
        match ec2.describe_addresses(&allocations_v).await {
            Ok(list) => Ok(Some(list.into_iter().map(|a| (a.allocation.clone(), a)).collect())),
            Err(e) if e.is_unauthorized() => Ok(None),
            Err(e) => Err(format!("DescribeAddresses: {e}")),
        }
    };
    let (tables, tags, addresses) = tokio::join!(tables_call, tags_call, addresses_call);
    let mut members: BTreeSet<String> = BTreeSet::from([me.to_string()]);
    if let Ok(t) = &tags {
        members.extend(
            pair.iter()
                .filter_map(|r| t.get(r)?.get(crate::core::tags::INSTANCE).cloned()),
        );
    }

    // Only a drifted address needs its holder found: one more call, and only then.
    let drifted: Vec<(Ipv4Addr, &str)> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Ip { interface, addr } => match enis.get(interface) {
                Some(Ok(eni)) if !eni.local_ipv4s.contains(addr) => Some((*addr, a.vhid.as_str())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut holders_by_tags = false;
    let holders = if drifted.is_empty() {
        Ok(HashMap::new())
    } else {
        let ips: Vec<Ipv4Addr> = drifted.iter().map(|(ip, _)| *ip).collect();
        let mut subnets: Vec<String> = enis
            .values()
            .filter_map(|e| e.as_ref().ok()?.subnet_id.clone())
            .collect();
        subnets.sort();
        subnets.dedup();
        match ec2.describe_interfaces_with_ips(&ips, &subnets).await {
            Ok(nis) => {
                let mut map = HashMap::new();
                for ni in nis {
                    for ip in &ni.private_ips {
                        if ips.contains(ip) {
                            map.insert(*ip, ni.clone());
                        }
                    }
                }
                Ok(map)
            }
            Err(e) if e.is_unauthorized() => {
                holders_by_tags = true;
                match &tags {
                    Ok(_) => holders_from_tags(ec2, &drifted, &members, me).await,
                    // Without the pair's tags nobody can be told apart from another pair.
                    Err(e) => Err(format!("the holder cannot be found: {e}")),
                }
            }
            Err(e) => Err(format!("DescribeNetworkInterfaces: {e}")),
        }
    };
    Observation {
        tables,
        tags,
        addresses,
        holders,
        holders_by_tags,
        members,
    }
}

/// Without DescribeNetworkInterfaces (design.md §6.1 step 1): the holder of a drifted address is
/// taken to be the newest awsha-tagged ENI of another member of this pair with the same
/// `awsha:vhid`. ENIs of instances outside the pair are ignored (§10.1): the holder is then
/// unknown, and the drift is repaired without a split-brain entry.
async fn holders_from_tags<E: Ec2>(
    ec2: &E,
    drifted: &[(Ipv4Addr, &str)],
    members: &BTreeSet<String>,
    me: &str,
) -> Result<HashMap<Ipv4Addr, NetworkInterface>, String> {
    let mut vhids: Vec<String> = drifted.iter().map(|(_, v)| v.to_string()).collect();
    vhids.sort();
    vhids.dedup();
    let tagged = ec2
        .describe_tagged_enis(&vhids)
        .await
        .map_err(|e| format!("DescribeTags (awsha-tagged ENIs): {e}"))?;
    let mut out = HashMap::new();
    for (ip, vhid) in drifted {
        let newest = tagged
            .iter()
            .filter_map(|(eni, tags)| Some((eni, tags, Stamp::from_tags(tags)?)))
            .filter(|(_, _, st)| st.vhid == *vhid && st.instance != me && members.contains(&st.instance))
            .max_by_key(|(_, _, st)| st.modified);
        if let Some((eni, tags, st)) = newest {
            out.insert(
                *ip,
                NetworkInterface {
                    id: eni.clone(),
                    instance: Some(st.instance),
                    private_ips: vec![*ip],
                    tags: tags.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// Compares one action with what was observed. `eni`: this node's ENI for the action; `me`: this
/// node's instance id.
pub fn compare(a: &Action, eni: &Eni, obs: &Observation, me: &str) -> Compared {
    let tags_of = |resource: &str| -> Result<Option<Stamp>, String> {
        obs.tags
            .as_ref()
            .map(|t| t.get(resource).and_then(Stamp::from_tags))
            .map_err(Clone::clone)
    };
    let unobserved = |e: &String| Compared {
        in_sync: Err(e.clone()),
        actual: "unknown".into(),
        writer: None,
    };
    match &a.kind {
        ActionKind::Ip { addr, .. } => {
            if eni.local_ipv4s.contains(addr) {
                return Compared {
                    in_sync: Ok(true),
                    actual: eni.id.clone(),
                    writer: tags_of(&eni.id).ok().flatten(),
                };
            }
            match &obs.holders {
                Err(e) => unobserved(e),
                Ok(h) => match h.get(addr) {
                    // IMDS's local-ipv4s can lag behind EC2 after an assignment: EC2 says it is here.
                    Some(ni) if ni.id == eni.id => Compared {
                        in_sync: Ok(true),
                        actual: eni.id.clone(),
                        writer: Stamp::from_tags(&ni.tags),
                    },
                    Some(ni) => Compared {
                        in_sync: Ok(false),
                        actual: match &ni.instance {
                            Some(i) => format!("{} ({i})", ni.id),
                            None => ni.id.clone(),
                        },
                        writer: Stamp::from_tags(&ni.tags),
                    },
                    None => Compared {
                        in_sync: Ok(false),
                        actual: "unassigned".into(),
                        writer: None,
                    },
                },
            }
        }
        ActionKind::Route { table, cidr, .. } => match &obs.tables {
            Err(e) => unobserved(e),
            Ok(t) => match t.get(table) {
                None => unobserved(&format!(
                    "InvalidRouteTableID.NotFound: route table {table} does not exist"
                )),
                Some(rt) => {
                    let writer = match tags_of(table) {
                        Ok(w) => w,
                        Err(e) => return unobserved(&e),
                    };
                    match rt.routes.get(cidr) {
                        Some(Some(target)) => Compared {
                            in_sync: Ok(*target == eni.id),
                            actual: target.clone(),
                            writer,
                        },
                        Some(None) => Compared {
                            in_sync: Ok(false),
                            actual: "a non-ENI target".into(),
                            writer,
                        },
                        None => Compared {
                            in_sync: Ok(false),
                            actual: "no such route".into(),
                            writer,
                        },
                    }
                }
            },
        },
        ActionKind::Eip {
            allocation, private_ip, ..
        } => {
            let writer = match tags_of(allocation) {
                Ok(w) => w,
                Err(e) => return unobserved(&e),
            };
            match &obs.addresses {
                Err(e) => unobserved(e),
                // Without DescribeAddresses, the tags are all there is: in sync when this node
                // wrote them last.
                Ok(None) => {
                    let mine = writer.as_ref().is_some_and(|w| w.instance == me);
                    Compared {
                        in_sync: Ok(mine),
                        actual: "unknown (DescribeAddresses not permitted)".into(),
                        writer,
                    }
                }
                Ok(Some(addrs)) => match addrs.get(allocation) {
                    None => unobserved(&format!(
                        "InvalidAllocationID.NotFound: allocation {allocation} does not exist"
                    )),
                    Some(addr) => {
                        let here = addr.eni.as_deref() == Some(eni.id.as_str()) && addr.private_ip == Some(*private_ip);
                        let actual = match (&addr.eni, &addr.private_ip) {
                            (Some(e), Some(ip)) => format!("{e} {ip}"),
                            (Some(e), None) => e.clone(),
                            _ => "not associated".into(),
                        };
                        Compared {
                            in_sync: Ok(here),
                            actual,
                            writer,
                        }
                    }
                },
            }
        }
    }
}

/// Every CARP VIP that an awsha row names (valid or not), with its CARP state.
pub fn named_vhids(cfg: &PfConfig, v: &Validated, facts: &HostFacts) -> Vec<(usize, String, CarpState)> {
    let vips: BTreeSet<usize> = v
        .actions
        .iter()
        .map(|a| a.vip)
        .chain(v.invalid.iter().filter_map(|r| r.vip))
        .collect();
    vips.into_iter()
        .map(|i| {
            let vip = &cfg.vips[i];
            let device = cfg.interface(&vip.interface).map(|f| f.device.as_str()).unwrap_or("");
            (i, vip.canonical(), facts.state(device, vip.vhid))
        })
        .collect()
}

/// T of §6.1: the takeover marker, else the newest change this node tagged for the VHID.
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
        report.actions.push(
            ActionReport::new(
                &row.vhid,
                row.kind,
                &format!("{} row {}", row.tab.element(), row.row),
                String::new(),
                Status::Failed,
            )
            .failed(msg.clone()),
        );
        let text = format!("{} {}: invalid row: {msg}", report.command, row.vhid);
        let resource = format!("{} row {}", row.tab.element(), row.row);
        report.vhid_notice("error", "invalid", &row.vhid, Some(&resource), text);
    }
}

pub async fn run(s: &Settings, dry_run: bool, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let deadline = Instant::now() + s.deadline;
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return Report::fail("reconcile", format!("{e:#}")),
    };
    let mut report = Report::new("reconcile");
    if !cfg.settings.enable {
        report
            .text
            .push("reconcile is switched off (awsha settings: enable is not ticked); nothing checked".into());
        report.notice(
            "info",
            "disabled",
            "reconcile is switched off in the awsha settings; nothing checked",
        );
        return report;
    }
    let v = config::validate(&cfg);
    if let Some(p) = v.settings_problems.first() {
        return Report::fail("reconcile", format!("{}: {p}", cfg.path.display()));
    }
    let host = Ifconfig {
        program: s.ifconfig.clone(),
        timeout: std::time::Duration::from_secs(5),
    };
    let facts = match host.facts() {
        Ok(f) => f,
        Err(e) => return Report::fail("reconcile", format!("{e:#}")),
    };
    let named = named_vhids(&cfg, &v, &facts);
    report.vhids = Some(named.iter().map(|(_, n, st)| (n.clone(), st.to_string())).collect());
    invalid_rows(&mut report, &v, &cfg);
    // design.md §4: reconcile acts only on VHIDs whose rows are all valid, as failover does; the
    // valid rows of a VHID with an invalid one wait for the fix.
    let (masters, blocked): (Vec<usize>, Vec<usize>) = named
        .iter()
        .filter(|(_, _, st)| *st == CarpState::Master)
        .map(|(i, _, _)| *i)
        .partition(|vip| v.invalid_for(*vip).is_empty());
    for a in v.actions.iter().filter(|a| blocked.contains(&a.vip)) {
        let (resource, target) = plan::describe(a, None);
        report.actions.push(
            ActionReport::new(&a.vhid, a.kind.name(), &resource, target, Status::Skipped).with_reason(format!(
                "{} has invalid rows; fix them first (failover refuses it too)",
                a.vhid
            )),
        );
    }
    let actions: Vec<&Action> = v.actions.iter().filter(|a| masters.contains(&a.vip)).collect();
    if actions.is_empty() {
        report
            .text
            .push("this node is MASTER of no VHID with valid awsha rows; nothing to check".into());
        return report;
    }

    let imds = AwsImds::new(deadline);
    let interfaces = failover::interfaces_of(&actions);
    let me = match node::discover(
        &imds,
        &cfg,
        &facts,
        &interfaces,
        true,
        node::configured_region(&cfg, env),
    )
    .await
    {
        Ok(n) => n,
        Err(e) => return e.report("reconcile"),
    };
    report.instance = Some(me.instance.clone());
    let ec2 = AwsEc2::connect(&me.region, node::endpoint(&cfg, env).as_deref(), deadline).await;
    let obs = observe(&ec2, &actions, &pair_resources(&v.actions), &me.enis, &me.instance).await;
    if obs.holders_by_tags {
        report.notice(
            "info",
            "permission:DescribeNetworkInterfaces",
            "DescribeNetworkInterfaces is not permitted: the holder of a drifted address is taken from awsha tags (grant ec2:DescribeNetworkInterfaces to see it)",
        );
    }
    if let Ok(None) = obs.addresses {
        report.notice(
            "info",
            "permission:DescribeAddresses",
            "DescribeAddresses is not permitted: Elastic IPs are judged by their awsha tags alone (grant ec2:DescribeAddresses to see where they really point)",
        );
    }
    let run = Run {
        s,
        cfg: &cfg,
        facts: &facts,
        host: &host,
        me: &me,
        ec2: &ec2,
        obs: &obs,
        dry_run,
        deadline,
    };
    // VHIDs at once: one hung call must not starve another VHID's repairs of the deadline.
    let parts = crate::util::join_all(masters.iter().map(|vip| run.vhid(*vip, &actions)).collect()).await;
    for part in parts {
        report.actions.extend(part.actions);
        report.split_brain.extend(part.split_brain);
        report.notices.extend(part.notices);
        report.call_failed |= part.call_failed;
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
    report
}

/// Everything one reconcile run shares across its VHIDs.
struct Run<'a> {
    s: &'a Settings,
    cfg: &'a PfConfig,
    facts: &'a HostFacts,
    host: &'a Ifconfig,
    me: &'a node::Node,
    ec2: &'a AwsEc2,
    obs: &'a Observation,
    dry_run: bool,
    deadline: Instant,
}

/// A drifted action that §6.1 says to move back here.
struct Repair {
    line: usize,
    verdict: Verdict,
    writer: Option<Stamp>,
}

impl Run<'_> {
    /// Judges and repairs one VHID this node is MASTER of; returns its part of the report.
    async fn vhid(&self, vip: usize, actions: &[&Action]) -> Report {
        let mut part = Report::new("reconcile");
        let report = &mut part;
        let vhid = self.cfg.vips[vip].canonical();
        let mine: Vec<&Action> = actions.iter().copied().filter(|a| a.vip == vip).collect();
        let prio = node::priority(self.cfg, self.facts, vip, &self.me.instance);
        let takeover = takeover_time(self.s, &vhid, &self.me.instance, self.obs);
        let now = now_millis();
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
            line.extra.insert("actual".into(), json!(cmp.actual));
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
            match self.may_repair(&vhid, vip) {
                Ok(_lock) => self.repair(report, &vhid, &prio, &mine, &repairs, &mut lines).await,
                Err(reason) => {
                    for r in &repairs {
                        lines[r.line].status = Status::Skipped;
                        lines[r.line].reason = Some(reason.clone());
                    }
                }
            }
        }

        // Split brains are reported once the outcome is known (design.md §10.1): reclaimed,
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
    fn may_repair(&self, vhid: &str, vip: usize) -> Result<run_dir::VhidLock, String> {
        let held = run_dir::try_lock(&self.s.run_dir, vhid)?.ok_or("a failover of this VHID is running")?;
        let v = &self.cfg.vips[vip];
        let device = self
            .cfg
            .interface(&v.interface)
            .map(|f| f.device.as_str())
            .unwrap_or("");
        let facts = self
            .host
            .facts()
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
        let moves_until = failover::tag_reserve(now, self.deadline);
        failover::warn_if_over_budget(report, vhid, &p, moves_until.saturating_duration_since(now));
        let outcomes = apply::execute(&self.ec2.until(moves_until), &p, subset.len(), moves_until).await;
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
                    let was = line.extra.get("actual").and_then(|v| v.as_str()).unwrap_or("?");
                    let msg = format!(
                        "reconcile {vhid}: {} {} pointed at {was}{by}; moved back here",
                        line.kind, line.resource
                    );
                    log::warn(&msg);
                    let detail = format!("{}:{}", line.kind, line.resource);
                    report.vhid_notice("warning", "repaired", &vhid, Some(&detail), msg);
                }
                Ok(()) => {}
            }
        }
        let stamp = Stamp {
            modified: 0,
            advbase: prio.advbase,
            advskew: prio.advskew,
            instance: self.me.instance.clone(),
            vhid: vhid.to_string(),
        };
        failover::tag_changed(self.ec2, report, &p, &outcomes, stamp).await;
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
    log::error(&msg);
    report.vhid_notice("error", "split_brain", vhid, Some(resource), msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_795_687_200_000;
    const GRACE: Millis = 15_000;

    fn me() -> Priority {
        Priority {
            advbase: 1,
            advskew: 0,
            instance: "i-a".into(),
        }
    }
    fn w(instance: &str, advskew: u32, modified: Millis) -> Stamp {
        Stamp {
            modified,
            advbase: 1,
            advskew,
            instance: instance.into(),
            vhid: "wan@1".into(),
        }
    }

    #[test]
    fn in_sync_is_in_sync_whoever_wrote_it() {
        assert_eq!(
            judge(false, Some(&w("i-b", 100, NOW)), &me(), None, NOW, GRACE),
            Verdict::InSync
        );
    }

    #[test]
    fn drift_by_nobody_or_by_me_is_repaired() {
        assert_eq!(judge(true, None, &me(), None, NOW, GRACE), Verdict::Repair);
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 60_000)), &me(), None, NOW, GRACE),
            Verdict::Repair
        );
    }

    #[test]
    fn fresh_changes_wait_for_the_next_run() {
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 14_999)), &me(), None, NOW, GRACE),
            Verdict::Recent
        );
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 15_000)), &me(), None, NOW, GRACE),
            Verdict::Reclaim
        );
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW)), &me(), None, NOW, 0),
            Verdict::Reclaim
        );
    }

    #[test]
    fn a_change_older_than_my_takeover_is_an_incomplete_takeover() {
        // Even from a higher-priority member: it acted before this node took over (it has since
        // died, or this node's failover did not finish).
        let higher = w("i-0", 0, NOW - 120_000);
        let prio_low = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        assert_eq!(
            judge(true, Some(&higher), &prio_low, Some(NOW - 60_000), NOW, GRACE),
            Verdict::Repair
        );
    }

    #[test]
    fn split_brain_reclaims_from_lower_and_defers_to_higher() {
        let t = Some(NOW - 60_000);
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 30_000)), &me(), t, NOW, GRACE),
            Verdict::Reclaim
        );
        let low = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 30_000)), &low, t, NOW, GRACE),
            Verdict::Defer
        );
        // Unknown T counts as split brain too.
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 30_000)), &low, None, NOW, GRACE),
            Verdict::Defer
        );
        // A change exactly at T is after it.
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 60_000)), &low, t, NOW, GRACE),
            Verdict::Defer
        );
    }

    #[test]
    fn alternating_judgements_converge_without_ping_pong() {
        // A (advskew 0) and B (advskew 100) both claim MASTER: A took over, then B did and wrote.
        let a = me();
        let b = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        let (t_a, t_b) = (NOW - 100_000, NOW - 90_000);
        // Round 1, A: resource written by B after A's takeover → split brain, B is lower → reclaim.
        let by_b = w("i-b", 100, t_b);
        assert_eq!(judge(true, Some(&by_b), &a, Some(t_a), NOW, GRACE), Verdict::Reclaim);
        // Round 1, B: now written by A after B's takeover → A is higher → defer.
        let by_a = w("i-a", 0, NOW);
        assert_eq!(
            judge(true, Some(&by_a), &b, Some(t_b), NOW + 20_000, GRACE),
            Verdict::Defer
        );
        // Every later round: A sees it in sync; B keeps deferring.
        assert_eq!(
            judge(false, Some(&by_a), &a, Some(t_a), NOW + 40_000, GRACE),
            Verdict::InSync
        );
        assert_eq!(
            judge(true, Some(&by_a), &b, Some(t_b), NOW + 60_000, GRACE),
            Verdict::Defer
        );
    }
}
