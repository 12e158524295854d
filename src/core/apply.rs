//! Executing a plan against EC2: the two-round-trip critical path (docs/contracts.md §8.1),
//! retries for the asynchronous address move, the CreateRoute fallback, and tagging what moved.
//! Every call's failure stays with its own action; the others go on.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::join_all;

use crate::aws::ec2::{ApiError, Ec2};
use crate::aws::throttle;
use crate::base::tags::Stamp;
use crate::core::plan::{EipStep, Ipv6Step, Plan, RouteStep};
use crate::log::Level;
use crate::report::Report;

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<(), String>,
    pub ms: u64,
}

type Done = Vec<(usize, Outcome)>;

/// Runs every call of the plan; returns one outcome per planned action, by action index.
/// `subnets`: this node's subnets, where the holder of an IPv6 address is looked for (empty: by the
/// address alone).
pub async fn execute<'a, E: Ec2>(
    ec2: &'a E,
    plan: &'a Plan,
    n_actions: usize,
    deadline: Instant,
    subnets: &'a [String],
) -> Vec<Option<Outcome>> {
    let mut branches: Vec<Pin<Box<dyn Future<Output = Done> + 'a>>> = Vec::new();
    for (i, step) in plan.assigns.iter().enumerate() {
        let dependents: Vec<&EipStep> = plan.eips.iter().filter(|e| e.after == Some(i)).collect();
        branches.push(Box::pin(async move {
            let started = Instant::now();
            let result = ec2
                .assign_private_ips(&step.eni, &step.ips)
                .await
                .map_err(|e| e.to_string());
            let assigned = result.is_ok();
            let ms = elapsed_ms(started);
            let mut done: Done = step
                .actions
                .iter()
                .map(|a| {
                    (
                        *a,
                        Outcome {
                            result: result.clone(),
                            ms,
                        },
                    )
                })
                .collect();
            // Associate even if the assignment failed: the address may already be here, and a
            // failed action must not stop the others.
            let eips = join_all(dependents.into_iter().map(|e| associate(ec2, e, assigned, deadline))).await;
            done.extend(eips);
            done
        }));
    }
    for step in &plan.ipv6 {
        branches.push(Box::pin(async move {
            let started = Instant::now();
            let result = move_ipv6(ec2, step, subnets).await;
            let ms = elapsed_ms(started);
            step.actions
                .iter()
                .map(|a| {
                    (
                        *a,
                        Outcome {
                            result: result.clone(),
                            ms,
                        },
                    )
                })
                .collect()
        }));
    }
    for step in &plan.routes {
        branches.push(Box::pin(async move { vec![route(ec2, step).await] }));
    }
    for step in plan.eips.iter().filter(|e| e.after.is_none()) {
        branches.push(Box::pin(
            async move { vec![associate(ec2, step, false, deadline).await] },
        ));
    }
    let mut out: Vec<Option<Outcome>> = vec![None; n_actions];
    for (i, outcome) in join_all(branches).await.into_iter().flatten() {
        out[i] = Some(outcome);
    }
    out
}

/// CreateTags takes up to 1000 resources a call.
const TAG_BATCH: usize = 1000;
/// A refused group is sent again as at most this many smaller groups, at once.
const TAG_SPLIT: usize = 16;

/// Tags every resource. CreateTags fails whole when one resource refuses (`TagLimitExceeded` at
/// 50 tags, a policy narrowed to some resources), and an untagged change looks to the other node
/// like a change by nobody: so a refused call is split and sent again for smaller groups at once,
/// down to one resource a call, and only the resources that refuse stay untagged. Returns them,
/// each with EC2's answer. A call that failed for EC2's or the network's sake (throttled, 5xx, out
/// of time, after its retries) is not split: smaller calls would meet the same.
pub async fn tag_all<E: Ec2>(ec2: &E, resources: &[String], tags: &[(&'static str, String)]) -> Refused {
    join_all(resources.chunks(TAG_BATCH).map(|group| tag_group(ec2, group, tags)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Resources left untagged, each with EC2's answer.
type Refused = Vec<(String, ApiError)>;

fn tag_group<'a, E: Ec2>(
    ec2: &'a E,
    group: &'a [String],
    tags: &'a [(&'static str, String)],
) -> Pin<Box<dyn Future<Output = Refused> + 'a>> {
    Box::pin(async move {
        match ec2.create_tags(group, tags).await {
            Ok(()) => Vec::new(),
            Err(e) if group.len() == 1 || e.is_transient() => group.iter().map(|r| (r.clone(), e.clone())).collect(),
            Err(_) => {
                let size = group.len().div_ceil(TAG_SPLIT);
                join_all(group.chunks(size).map(|g| tag_group(ec2, g, tags)))
                    .await
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }
    })
}

fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

/// Moves IPv6 addresses to the step's ENI. EC2 has no reassignment for IPv6: it refuses an
/// address another ENI holds, which must be unassigned there first. So the assignment is tried
/// while DescribeNetworkInterfaces looks for the holders: an address nobody holds arrives in one
/// round trip, a held one in three (refused → unassigned at the holder → assigned), never four
/// (docs/performance.md). An address already on this ENI is never unassigned.
async fn move_ipv6<E: Ec2>(ec2: &E, step: &Ipv6Step, subnets: &[String]) -> Result<(), String> {
    let wanted: Vec<IpAddr> = step.addrs.iter().map(|a| IpAddr::V6(*a)).collect();
    let (assigned, holders) = tokio::join!(
        ec2.assign_ipv6(&step.eni, &step.addrs),
        ec2.describe_interfaces_with_ips(&wanted, subnets)
    );
    let refusal = match assigned {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let holders = holders.map_err(|e| {
        if e.is_unauthorized() {
            format!("{refusal}; finding the ENI that holds it needs ec2:DescribeNetworkInterfaces: {e}")
        } else {
            format!("{refusal}; looking for the ENI that holds it failed: {e}")
        }
    })?;
    let held_by = |eni: &str| -> Vec<Ipv6Addr> {
        holders
            .iter()
            .filter(|h| h.id == eni)
            .flat_map(|h| h.addresses.iter())
            .filter_map(|a| match a {
                IpAddr::V6(v6) if step.addrs.contains(v6) => Some(*v6),
                _ => None,
            })
            .collect()
    };
    let here = held_by(&step.eni);
    let elsewhere: Vec<(String, Vec<Ipv6Addr>)> = holders
        .iter()
        .filter(|h| h.id != step.eni)
        .map(|h| (h.id.clone(), held_by(&h.id)))
        .filter(|(_, addrs)| !addrs.is_empty())
        .collect();
    let missing: Vec<Ipv6Addr> = step.addrs.iter().filter(|a| !here.contains(a)).copied().collect();
    if elsewhere.is_empty() {
        // Nobody else holds them: they are here already (a repeated failover), or EC2 refused for
        // another reason, which is the answer to report.
        return if missing.is_empty() {
            Ok(())
        } else {
            Err(refusal.to_string())
        };
    }
    let unassigned = join_all(elsewhere.iter().map(|(eni, addrs)| ec2.unassign_ipv6(eni, addrs))).await;
    for ((eni, _), result) in elsewhere.iter().zip(unassigned) {
        result.map_err(|e| format!("{refusal}; unassigning it from {eni}, which holds it, failed: {e}"))?;
    }
    ec2.assign_ipv6(&step.eni, &missing)
        .await
        .map_err(|e| format!("{e} (after unassigning it from {})", elsewhere[0].0))
}

async fn route<E: Ec2>(ec2: &E, step: &RouteStep) -> (usize, Outcome) {
    let started = Instant::now();
    let result = match ec2.replace_route(&step.table, &step.dest, &step.eni).await {
        Err(e) if e.is_missing_route() => match ec2.create_route(&step.table, &step.dest, &step.eni).await {
            // Created meanwhile (by the peer, or by an attempt whose answer was lost): replace it.
            Err(c) if c.code == "RouteAlreadyExists" => ec2.replace_route(&step.table, &step.dest, &step.eni).await,
            other => other,
        }
        .map_err(|c| {
            if c.is_unauthorized() {
                format!(
                    "{} is not in {}; creating it needs the ec2:CreateRoute permission: {c}",
                    step.dest, step.table
                )
            } else {
                format!("{} is not in {} and CreateRoute failed: {c}", step.dest, step.table)
            }
        }),
        other => other.map_err(|e| e.to_string()),
    };
    (
        step.action,
        Outcome {
            result,
            ms: elapsed_ms(started),
        },
    )
}

/// AssociateAddress, retried while EC2 still says the private IP is "not mapped to the
/// interface": the assignment that preceded it is asynchronous (docs/references.md §1.1).
async fn associate<E: Ec2>(ec2: &E, step: &EipStep, just_assigned: bool, deadline: Instant) -> (usize, Outcome) {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut tries = 0;
    let result = loop {
        tries += 1;
        match ec2.associate_address(&step.allocation, &step.eni, step.ip).await {
            Err(e) if e.is_not_mapped() && just_assigned && tries < 12 => {
                if Instant::now() + pause >= deadline {
                    break Err(e);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => break other,
        }
    };
    let result = result.map_err(|e: ApiError| {
        if e.is_not_mapped() {
            format!(
                "{e} (the address did not reach {} in time; the next reconcile retries)",
                step.eni
            )
        } else {
            e.to_string()
        }
    });
    (
        step.action,
        Outcome {
            result,
            ms: elapsed_ms(started),
        },
    )
}

/// When the moves must stop so CreateTags still fits before `deadline`: a quarter of what is left,
/// at most 2 s (two round trips to a slow endpoint).
pub fn tag_reserve(now: Instant, deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline - (left / 4).min(Duration::from_secs(2))
}

/// Tags every resource an action changed with `stamp` (its `modified` is the caller's clock,
/// read after the moves); a refusal there is a failed API call (exit 1) but leaves the actions'
/// own statuses as they are.
pub async fn tag_changed<E: Ec2>(
    ec2: &E,
    report: &mut Report,
    plan: &Plan,
    outcomes: &[Option<Outcome>],
    stamp: &Stamp,
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
    for s in &plan.ipv6 {
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
    let refused = tag_all(ec2, &resources, &stamp.to_tags()).await;
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
    report.vhid_notice(Level::Error, "tagging", &stamp.vhid, None, msg);
    report.call_failed = true;
}

/// Says before the moves start when they cannot all fit in `window` at EC2's documented default
/// rates (issue 11: not only by timing out): a warning notice `budget:<vhid>` and a log line.
pub fn warn_if_over_budget(report: &mut Report, vhid: &str, plan: &Plan, window: Duration) {
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
    report.vhid_notice(Level::Warning, "budget", vhid, None, msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::net::Cidr;
    use crate::testing::{FakeEc2, FakeEni};

    const WAN: &str = "eni-0aaaaaaaaaaaaaaa1";
    const LAN: &str = "eni-0bbbbbbbbbbbbbbb2";
    const PEER_WAN: &str = "eni-0ccccccccccccccc3";
    const TABLE: &str = "rtb-05ed6e7c46531c6c3";

    /// wan@1 of the sample config (an address, a route, an Elastic IP on that address), planned
    /// for this node; the world has the address on the peer and the route at the peer.
    fn sample() -> (FakeEc2, Plan, usize) {
        let cfg = crate::pfsense::model::tests::sample();
        let v = crate::pfsense::validate::validate(&cfg);
        let wan: Vec<&crate::pfsense::validate::Action> = v.actions.iter().filter(|a| a.vhid == "wan@1").collect();
        let enis = std::collections::HashMap::from([
            ("wan".to_string(), Ok(WAN.to_string())),
            ("lan".to_string(), Ok(LAN.to_string())),
        ]);
        let ec2 = FakeEc2::default();
        {
            let mut w = ec2.world.borrow_mut();
            let subnet = Cidr::parse("10.0.1.0/24").unwrap();
            let eni = |mac: &str, ips: &[&str]| FakeEni {
                mac: mac.into(),
                instance: "i-a".into(),
                subnet_id: "subnet-1".into(),
                subnet,
                subnet6: None,
                ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            };
            w.enis.insert(WAN.into(), eni("0a:00:00:00:00:01", &["10.0.1.11"]));
            w.enis.insert(LAN.into(), eni("0a:00:00:00:00:02", &["10.0.2.11"]));
            w.enis
                .insert(PEER_WAN.into(), eni("0a:00:00:00:00:03", &["10.0.1.12", "10.0.1.10"]));
            w.tables.insert(
                TABLE.into(),
                [(
                    crate::base::net::Destination::parse("0.0.0.0/0").unwrap(),
                    "eni-peer".to_string(),
                )]
                .into(),
            );
        }
        (ec2, crate::core::plan::plan(&wan, &enis), wan.len())
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    fn ok(out: &[Option<Outcome>]) -> Vec<bool> {
        out.iter().map(|o| o.as_ref().unwrap().result.is_ok()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn critical_path_is_two_round_trips() {
        let (mut ec2, plan, n) = sample();
        ec2.delay = Duration::from_millis(100);
        let started = Instant::now();
        let out = execute(&ec2, &plan, n, deadline(), &[]).await;
        assert_eq!(ok(&out), [true, true, true]);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "assign ∥ route, then associate"
        );
        let names = ec2.names();
        assert_eq!(
            names.last().unwrap(),
            "associate",
            "the EIP waits for the assignment: {names:?}"
        );
        let w = ec2.world.borrow();
        assert!(w.enis[WAN].ips.contains(&"10.0.1.10".parse().unwrap()));
        assert!(!w.enis[PEER_WAN].ips.contains(&"10.0.1.10".parse().unwrap()));
        assert_eq!(w.tables[TABLE].values().next().unwrap(), LAN);
    }

    #[tokio::test(start_paused = true)]
    async fn missing_route_is_created_and_failures_stay_local() {
        let (ec2, plan, n) = sample();
        ec2.world.borrow_mut().tables.get_mut(TABLE).unwrap().clear();
        ec2.fail_next("assign", ApiError::new("InvalidNetworkInterfaceID.NotFound", "gone"));
        let out = execute(&ec2, &plan, n, deadline(), &[]).await;
        assert!(ec2.names().contains(&"create".to_string()));
        // The address was not moved, so its association is refused too — but it was tried.
        assert_eq!(
            ok(&out),
            [false, true, false],
            "ip failed; route created; EIP still attempted"
        );
        assert!(ec2.names().contains(&"associate".to_string()));
    }

    /// The sample plan executed where the route is missing from its table and CreateRoute
    /// answers `create_error`.
    async fn missing_route_then(create_error: ApiError) -> (FakeEc2, Vec<Option<Outcome>>) {
        let (ec2, plan, n) = sample();
        ec2.world.borrow_mut().tables.get_mut(TABLE).unwrap().clear();
        ec2.fail_next("create", create_error);
        let out = execute(&ec2, &plan, n, deadline(), &[]).await;
        (ec2, out)
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_created_meanwhile_is_replaced() {
        let (ec2, out) = missing_route_then(ApiError::new("RouteAlreadyExists", "exists")).await;
        // The peer's route appeared between ReplaceRoute and CreateRoute.
        assert!(
            !ok(&out)[1],
            "the world still lacks the route: the second replace fails"
        );
        let routes: Vec<String> = ec2
            .names()
            .into_iter()
            .filter(|c| c == "replace" || c == "create")
            .collect();
        assert_eq!(routes, ["replace", "create", "replace"]);
    }

    #[tokio::test(start_paused = true)]
    async fn association_retries_while_the_address_is_not_mapped() {
        let (ec2, plan, n) = sample();
        for _ in 0..2 {
            ec2.fail_next(
                "associate",
                ApiError::new("InvalidParameterValue", "10.0.1.10 is not mapped to the interface"),
            );
        }
        let out = execute(&ec2, &plan, n, deadline(), &[]).await;
        assert!(out[2].as_ref().unwrap().result.is_ok());
        assert_eq!(ec2.names().iter().filter(|c| *c == "associate").count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_batch_is_split_until_only_the_refusing_resource_is_left() {
        let ec2 = FakeEc2::default();
        ec2.world.borrow_mut().refuse_tags.push("rtb-7".into());
        let resources: Vec<String> = (0..40).map(|i| format!("rtb-{i}")).collect();
        let failed = tag_all(&ec2, &resources, &[("awsha:vhid", "wan@1".into())]).await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "rtb-7");
        assert_eq!(failed[0].1.code, "TagLimitExceeded");
        let w = ec2.world.borrow();
        assert!(
            resources
                .iter()
                .filter(|r| *r != "rtb-7")
                .all(|r| w.tags.contains_key(r))
        );
        // 1 batch + 14 groups of 3 (13 full, one of 1) + the refusing group's 3 alone.
        assert!(ec2.names().len() <= 1 + TAG_SPLIT + 3, "{:?}", ec2.names().len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_batch_is_not_split() {
        let ec2 = FakeEc2::default();
        ec2.fail_next(
            "tags",
            ApiError::new("RequestLimitExceeded", "slow down (after 8 attempts)"),
        );
        let resources: Vec<String> = (0..40).map(|i| format!("rtb-{i}")).collect();
        let failed = tag_all(&ec2, &resources, &[]).await;
        assert_eq!(failed.len(), 40);
        assert_eq!(ec2.names(), ["tags"]);
    }

    #[tokio::test(start_paused = true)]
    async fn create_route_without_permission_says_which() {
        let (_, out) = missing_route_then(ApiError::new("UnauthorizedOperation", "no")).await;
        let err = out[1].as_ref().unwrap().result.clone().unwrap_err();
        assert!(err.contains("needs the ec2:CreateRoute permission"), "{err}");
    }
}
