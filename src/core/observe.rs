//! What AWS says now about a set of actions — route tables, tags, Elastic IPs and the holders of
//! drifted addresses, read once with a fixed handful of Describe calls whatever the number of
//! rows — and one action compared with it. Shared by reconcile and status.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::aws::ec2::{Address, Ec2, NetworkInterface, RouteTable, TagMap};
use tokio::time::Instant;

use crate::aws::imds::Eni;
use crate::base::tags::Stamp;
use crate::core::node::{self, Node};
use crate::edges::Edges;
use crate::pfsense::ifconfig::{CarpState, HostFacts};
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::{Action, ActionKind, Validated};
use crate::report::{Failure, LastFailover, Timeline, VhidState};
use crate::settings::Settings;

/// The AWS side of every action, read once.
pub struct Observation {
    /// Err: DescribeRouteTables failed.
    pub tables: Result<HashMap<String, RouteTable>, String>,
    pub tags: Result<TagMap, String>,
    /// Ok(None): DescribeAddresses is not permitted; judged by tags alone.
    pub addresses: Result<Option<HashMap<String, Address>>, String>,
    /// Who holds each drifted address (with that ENI's tags).
    pub holders: Result<HashMap<IpAddr, NetworkInterface>, String>,
    /// DescribeNetworkInterfaces was not permitted: holders were inferred from awsha tags.
    pub holders_by_tags: bool,
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
    // The instances of this pair (docs/contracts.md §9.4): this node and every instance named by the awsha
    // tags of the route tables and Elastic IPs this node's config.xml lists. Another pfSense pair
    // in the account uses the same VHID names, so only these may be a last writer found by the
    // account-wide tag search.
    let mut members: BTreeSet<String> = BTreeSet::from([me.to_string()]);
    if let Ok(t) = &tags {
        members.extend(
            pair.iter()
                .filter_map(|r| t.get(r)?.get(crate::base::tags::INSTANCE).cloned()),
        );
    }

    // Only a drifted address needs its holder found: one more call, and only then.
    let drifted: Vec<(IpAddr, &str)> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Ip { interface, addr } => match enis.get(interface) {
                Some(Ok(eni)) if !eni.holds(*addr) => Some((*addr, a.vhid.as_str())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut holders_by_tags = false;
    let holders = if drifted.is_empty() {
        Ok(HashMap::new())
    } else {
        let ips: Vec<IpAddr> = drifted.iter().map(|(ip, _)| *ip).collect();
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
                    for ip in &ni.addresses {
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
    }
}

/// Without DescribeNetworkInterfaces (docs/contracts.md §9.1): the holder of a drifted address is
/// taken to be the newest awsha-tagged ENI of another member of this pair with the same
/// `awsha:vhid`. ENIs of instances outside the pair are ignored (docs/contracts.md §9.4): the holder is then
/// unknown, and the drift is repaired without a split-brain entry.
async fn holders_from_tags<E: Ec2>(
    ec2: &E,
    drifted: &[(IpAddr, &str)],
    members: &BTreeSet<String>,
    me: &str,
) -> Result<HashMap<IpAddr, NetworkInterface>, String> {
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
                    addresses: vec![*ip],
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
            if eni.holds(*addr) {
                return Compared {
                    in_sync: Ok(true),
                    actual: eni.id.clone(),
                    writer: tags_of(&eni.id).ok().flatten(),
                };
            }
            match &obs.holders {
                Err(e) => unobserved(e),
                Ok(h) => match h.get(addr) {
                    // IMDS's addresses can lag behind EC2 after an assignment: EC2 says it is here.
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
        ActionKind::Route { table, dest, .. } => match &obs.tables {
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
                    match rt.routes.get(dest) {
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

/// What reconcile and status start from: this node, fully discovered (its ENIs' subnets and
/// addresses), EC2 for its region, and what AWS says of `actions` (`all`: the config's valid rows,
/// whose tables and allocations name the pair's members).
pub async fn look<E: Edges>(
    edges: &E,
    s: &Settings,
    cfg: &PfConfig,
    facts: &HostFacts,
    actions: &[&Action],
    all: &[Action],
    deadline: Instant,
) -> Result<(Node, E::Ec2, Observation), Failure> {
    let imds = edges.imds(deadline);
    let interfaces = node::interfaces_of(actions);
    let me = node::discover(&imds, cfg, facts, &interfaces, true, node::region(s, cfg)).await?;
    let ec2 = node::open_ec2(edges, s, cfg, &me, deadline, &Timeline::default()).await;
    let obs = observe(&ec2, actions, &pair_resources(all), &me.enis, &me.instance).await;
    Ok((me, ec2, obs))
}

/// The report's `vhids`: every named VIP with its state, and its last failover as `last` says.
pub fn vhid_states(
    named: &[(usize, String, CarpState)],
    last: impl Fn(&str) -> Option<LastFailover>,
) -> Vec<VhidState> {
    named
        .iter()
        .map(|(_, vhid, st)| VhidState {
            vhid: vhid.clone(),
            state: st.to_string(),
            last_failover: last(vhid),
        })
        .collect()
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
