//! Executing a plan against EC2: the two-round-trip critical path of design.md §6, retries for
//! the asynchronous address move, and the CreateRoute fallback. Every call's failure stays with
//! its own action; the others go on.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::ec2::{ApiError, Ec2};
use crate::core::plan::{EipStep, Plan, RouteStep};
use crate::util::join_all;

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<(), String>,
    pub ms: u64,
}

type Done = Vec<(usize, Outcome)>;

/// Runs every call of the plan; returns one outcome per planned action, by action index.
pub async fn execute<E: Ec2>(ec2: &E, plan: &Plan, n_actions: usize, deadline: Instant) -> Vec<Option<Outcome>> {
    let mut branches: Vec<Pin<Box<dyn Future<Output = Done> + '_>>> = Vec::new();
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
            let eips = join_all(
                dependents
                    .into_iter()
                    .map(|e| associate(ec2, e, assigned, deadline))
                    .collect(),
            )
            .await;
            done.extend(eips);
            done
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
pub async fn tag_all<E: Ec2>(
    ec2: &E,
    resources: &[String],
    tags: &[(&'static str, String)],
) -> Vec<(String, ApiError)> {
    join_all(
        resources
            .chunks(TAG_BATCH)
            .map(|group| tag_group(ec2, group, tags))
            .collect(),
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

fn tag_group<'a, E: Ec2>(
    ec2: &'a E,
    group: &'a [String],
    tags: &'a [(&'static str, String)],
) -> Pin<Box<dyn Future<Output = Vec<(String, ApiError)>> + 'a>> {
    Box::pin(async move {
        match ec2.create_tags(group, tags).await {
            Ok(()) => Vec::new(),
            Err(e) if group.len() == 1 || e.is_transient() => group.iter().map(|r| (r.clone(), e.clone())).collect(),
            Err(_) => {
                let size = group.len().div_ceil(TAG_SPLIT);
                join_all(group.chunks(size).map(|g| tag_group(ec2, g, tags)).collect())
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

async fn route<E: Ec2>(ec2: &E, step: &RouteStep) -> (usize, Outcome) {
    let started = Instant::now();
    let result = match ec2.replace_route(&step.table, step.cidr, &step.eni).await {
        Err(e) if e.is_missing_route() => match ec2.create_route(&step.table, step.cidr, &step.eni).await {
            // Created meanwhile (by the peer, or by an attempt whose answer was lost): replace it.
            Err(c) if c.code == "RouteAlreadyExists" => ec2.replace_route(&step.table, step.cidr, &step.eni).await,
            other => other,
        }
        .map_err(|c| {
            if c.is_unauthorized() {
                format!(
                    "{} is not in {}; creating it needs the ec2:CreateRoute permission: {c}",
                    step.cidr, step.table
                )
            } else {
                format!("{} is not in {} and CreateRoute failed: {c}", step.cidr, step.table)
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
/// interface": the assignment that preceded it is asynchronous (ec2.md §2.1).
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::ec2::{Address, ApiResult, NetworkInterface, RouteTable, TagMap};
    use crate::base::net::Cidr;
    use std::cell::RefCell;
    use std::net::Ipv4Addr;

    /// Records every call; answers from a script of failures by call name.
    #[derive(Default)]
    pub struct FakeEc2 {
        pub calls: RefCell<Vec<String>>,
        pub fail: RefCell<Vec<(&'static str, ApiError)>>,
        pub delay_ms: u64,
        /// CreateTags fails whole (TagLimitExceeded) when it names one of these.
        pub refuse_tags: RefCell<Vec<String>>,
        /// Resources an accepted CreateTags named.
        pub tagged: RefCell<Vec<String>>,
    }

    impl FakeEc2 {
        async fn call(&self, name: &'static str, detail: String) -> ApiResult<()> {
            self.calls.borrow_mut().push(format!("{name} {detail}"));
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
            let mut fail = self.fail.borrow_mut();
            match fail.iter().position(|(n, _)| *n == name) {
                Some(i) => Err(fail.remove(i).1),
                None => Ok(()),
            }
        }
        pub fn names(&self) -> Vec<String> {
            self.calls
                .borrow()
                .iter()
                .map(|c| c.split(' ').next().unwrap().to_string())
                .collect()
        }
    }

    impl Ec2 for FakeEc2 {
        async fn assign_private_ips(&self, eni: &str, ips: &[Ipv4Addr]) -> ApiResult<()> {
            self.call("assign", format!("{eni} {ips:?}")).await
        }
        async fn replace_route(&self, table: &str, cidr: Cidr, eni: &str) -> ApiResult<()> {
            self.call("replace", format!("{table} {cidr} {eni}")).await
        }
        async fn create_route(&self, table: &str, cidr: Cidr, eni: &str) -> ApiResult<()> {
            self.call("create", format!("{table} {cidr} {eni}")).await
        }
        async fn associate_address(&self, allocation: &str, eni: &str, ip: Ipv4Addr) -> ApiResult<()> {
            self.call("associate", format!("{allocation} {eni} {ip}")).await
        }
        async fn create_tags(&self, resources: &[String], _tags: &[(&'static str, String)]) -> ApiResult<()> {
            self.call("tags", resources.join(",")).await?;
            if let Some(r) = resources.iter().find(|r| self.refuse_tags.borrow().contains(r)) {
                return Err(ApiError::new("TagLimitExceeded", format!("too many tags on {r}")));
            }
            self.tagged.borrow_mut().extend(resources.iter().cloned());
            Ok(())
        }
        async fn describe_route_tables(&self, _: &[String]) -> ApiResult<Vec<RouteTable>> {
            Ok(vec![])
        }
        async fn describe_tags(&self, _: &[String]) -> ApiResult<TagMap> {
            Ok(TagMap::new())
        }
        async fn describe_addresses(&self, _: &[String]) -> ApiResult<Vec<Address>> {
            Ok(vec![])
        }
        async fn describe_interfaces_with_ips(&self, _: &[Ipv4Addr], _: &[String]) -> ApiResult<Vec<NetworkInterface>> {
            Ok(vec![])
        }
        async fn describe_tagged_enis(&self, _: &[String]) -> ApiResult<TagMap> {
            Ok(TagMap::new())
        }
    }

    fn sample_plan() -> (Plan, usize) {
        let cfg = crate::pfsense::config::tests::sample();
        let v = crate::pfsense::config::validate(&cfg);
        let wan: Vec<&crate::pfsense::config::Action> = v.actions.iter().filter(|a| a.vhid == "wan@1").collect();
        let enis = std::collections::HashMap::from([
            ("wan".to_string(), Ok("eni-0aaaaaaaaaaaaaaa1".to_string())),
            ("lan".to_string(), Ok("eni-0bbbbbbbbbbbbbbb2".to_string())),
        ]);
        (crate::core::plan::plan(&wan, &enis), wan.len())
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn critical_path_is_two_round_trips() {
        let (plan, n) = sample_plan();
        let ec2 = FakeEc2 {
            delay_ms: 100,
            ..FakeEc2::default()
        };
        let started = std::time::Instant::now();
        let out = run(execute(&ec2, &plan, n, Instant::now() + Duration::from_secs(5)));
        let took = started.elapsed();
        assert!(out.iter().all(|o| o.as_ref().unwrap().result.is_ok()));
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(290),
            "{took:?}"
        );
        let names = ec2.names();
        assert_eq!(
            names.last().unwrap(),
            "associate",
            "the EIP waits for the assignment: {names:?}"
        );
    }

    #[test]
    fn missing_route_is_created_and_failures_stay_local() {
        let (plan, n) = sample_plan();
        let ec2 = FakeEc2::default();
        ec2.fail.borrow_mut().push((
            "replace",
            ApiError::new(
                "InvalidParameterValue",
                "There is no route defined for '0.0.0.0/0' in the route table. Use CreateRoute instead.",
            ),
        ));
        ec2.fail
            .borrow_mut()
            .push(("assign", ApiError::new("InvalidNetworkInterfaceID.NotFound", "gone")));
        let out = run(execute(&ec2, &plan, n, Instant::now() + Duration::from_secs(5)));
        assert!(ec2.names().contains(&"create".to_string()));
        let by_row: Vec<bool> = out.iter().map(|o| o.as_ref().unwrap().result.is_ok()).collect();
        assert_eq!(
            by_row,
            [false, true, true],
            "ip failed; route created; EIP still attempted"
        );
    }

    /// The sample plan executed where the route is missing from its table and CreateRoute
    /// answers `create_error`.
    fn missing_route_then(create_error: ApiError) -> (FakeEc2, Vec<Option<Outcome>>) {
        let (plan, n) = sample_plan();
        let ec2 = FakeEc2::default();
        let missing = ApiError::new("InvalidParameterValue", "Use CreateRoute instead.");
        ec2.fail
            .borrow_mut()
            .extend([("replace", missing), ("create", create_error)]);
        let out = run(execute(&ec2, &plan, n, Instant::now() + Duration::from_secs(5)));
        (ec2, out)
    }

    #[test]
    fn a_route_created_meanwhile_is_replaced() {
        let (ec2, out) = missing_route_then(ApiError::new("RouteAlreadyExists", "exists"));
        assert!(out[1].as_ref().unwrap().result.is_ok());
        let routes: Vec<String> = ec2
            .names()
            .into_iter()
            .filter(|c| c != "assign" && c != "associate")
            .collect();
        assert_eq!(routes, ["replace", "create", "replace"]);
    }

    #[test]
    fn association_retries_while_the_address_is_not_mapped() {
        let (plan, n) = sample_plan();
        let ec2 = FakeEc2::default();
        for _ in 0..2 {
            ec2.fail.borrow_mut().push((
                "associate",
                ApiError::new("InvalidParameterValue", "10.0.1.10 is not mapped to the interface"),
            ));
        }
        let out = run(execute(&ec2, &plan, n, Instant::now() + Duration::from_secs(5)));
        assert!(out[2].as_ref().unwrap().result.is_ok());
        assert_eq!(ec2.names().iter().filter(|c| *c == "associate").count(), 3);
    }

    #[test]
    fn a_refused_batch_is_split_until_only_the_refusing_resource_is_left() {
        let ec2 = FakeEc2::default();
        ec2.refuse_tags.borrow_mut().push("rtb-7".into());
        let resources: Vec<String> = (0..40).map(|i| format!("rtb-{i}")).collect();
        let failed = run(tag_all(&ec2, &resources, &[]));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "rtb-7");
        assert_eq!(failed[0].1.code, "TagLimitExceeded");
        // Every other resource was tagged by some accepted call.
        let tagged = ec2.tagged.borrow();
        assert!(resources.iter().filter(|r| *r != "rtb-7").all(|r| tagged.contains(r)));
        // 1 batch + 14 groups of 3 (13 full, one of 1) + the refusing group's 3 alone.
        assert!(ec2.names().len() <= 1 + TAG_SPLIT + 3, "{:?}", ec2.names().len());
    }

    #[test]
    fn create_route_without_permission_says_which() {
        let (_, out) = missing_route_then(ApiError::new("UnauthorizedOperation", "no"));
        let err = out[1].as_ref().unwrap().result.clone().unwrap_err();
        assert!(err.contains("needs the ec2:CreateRoute permission"), "{err}");
    }
}
