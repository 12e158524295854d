//! doctor's EC2 checks: credentials, the network path to the endpoint, one signed round trip,
//! every permission awsha uses (by DryRun where the action has one), and the route tables.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::check;
use crate::aws::ec2::{ApiError, DryRun, Ec2};
use crate::aws::imds::Eni;
use crate::base::net::Destination;
use crate::base::time::{format_rfc3339_millis, to_millis};
use crate::edges::Edges;
use crate::pfsense::ifconfig::{CarpState, HostFacts};
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::{Action, ActionKind};
use crate::report::{Check, CheckStatus, Timeline};

/// What the EC2 checks need to know of this node.
pub(super) struct Facts<'a> {
    pub actions: &'a [&'a Action],
    pub enis: &'a HashMap<String, Result<Eni, String>>,
    pub host: Option<&'a HostFacts>,
    pub cfg: Option<&'a PfConfig>,
}

/// Tries per call: an unreachable endpoint must be reported in seconds, not a minute.
const DOCTOR_ATTEMPTS: u32 = 2;

pub(super) async fn checks<E: Edges>(
    edges: &E,
    region: &str,
    endpoint: Option<String>,
    deadline: Instant,
    facts: &Facts<'_>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let shown = endpoint
        .clone()
        .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
    let ec2 = edges
        .ec2(
            region,
            endpoint.as_deref(),
            deadline,
            DOCTOR_ATTEMPTS,
            &Timeline::default(),
        )
        .await;
    let credentials = credentials_check(edges, &ec2).await;
    let credentials_ok = credentials.status != CheckStatus::Fail;
    checks.push(credentials);
    let hint = "allow HTTPS from the firewall to the EC2 endpoint (or set a PrivateLink endpoint in the awsha settings), and check DNS";
    let reachable = match edges.reach(&shown).await {
        Ok(detail) => {
            checks.push(check("endpoint", CheckStatus::Ok, detail, ""));
            true
        }
        Err(detail) => {
            checks.push(check("endpoint", CheckStatus::Fail, detail, hint));
            false
        }
    };
    if !reachable {
        checks.push(check(
            "iam",
            CheckStatus::Warn,
            "not checked: the EC2 endpoint is unreachable",
            "fix the endpoint first",
        ));
        return checks;
    }
    if !credentials_ok {
        checks.push(check(
            "iam",
            CheckStatus::Warn,
            "not checked: no credentials to sign requests with",
            "fix the credentials first",
        ));
        return checks;
    }
    // One signed round trip, bounded: an endpoint that accepts connections but never answers
    // must not cost the operator the SDK's full retry budget.
    let started = Instant::now();
    let probe = tokio::time::timeout(Duration::from_secs(5), ec2.dry_run(&DryRun::DescribeRegions)).await;
    let rtt = started.elapsed().as_millis();
    match probe {
        Err(_) => checks.push(check(
            "api",
            CheckStatus::Fail,
            format!("{shown} accepted a connection but no EC2 answer came within 5 s"),
            "check proxies or TLS interception between the firewall and the endpoint",
        )),
        Ok(Err(e)) if matches!(e.code.as_str(), "ConnectionError" | "Timeout" | "MalformedResponse" | "RequestError") => {
            checks.push(check(
                "api",
                CheckStatus::Fail,
                format!("{shown}: {e}"),
                "the endpoint is reachable but did not answer as EC2: check the URL (PrivateLink endpoint setting) and TLS",
            ))
        }
        Ok(_) => {
            checks.push(check(
                "api",
                CheckStatus::Ok,
                format!("EC2 answered a signed request in {rtt} ms"),
                "",
            ));
            let (table_checks, missing) = route_table_checks(&ec2, facts.actions).await;
            checks.extend(permission_checks(&ec2, facts.actions, facts.enis, facts.host, facts.cfg, &missing).await);
            checks.extend(table_checks);
        }
    }
    checks
}

async fn credentials_check<E: Edges>(edges: &E, ec2: &E::Ec2) -> Check {
    match ec2.credentials().await {
        Ok((temporary, expiry)) => {
            let when = expiry.map(|t| {
                let at = to_millis(t);
                let left = (at - edges.now_millis()).max(0) / 1000;
                format!(
                    "; they expire at {} (in {}h{:02}m; the SDK renews them)",
                    format_rfc3339_millis(at),
                    left / 3600,
                    left % 3600 / 60
                )
            });
            let kind = if temporary {
                "temporary credentials"
            } else {
                "long-term keys (prefer an instance profile)"
            };
            check(
                "credentials",
                if temporary { CheckStatus::Ok } else { CheckStatus::Warn },
                format!("{kind} obtained{}", when.unwrap_or_default()),
                if temporary {
                    ""
                } else {
                    "attach an IAM instance profile instead of static keys"
                },
            )
        }
        Err(e) => check(
            "credentials",
            CheckStatus::Fail,
            format!("{e:#}"),
            "attach an IAM instance profile with the policy in docs/install.md",
        ),
    }
}

async fn permission_checks<C: Ec2>(
    ec2: &C,
    actions: &[&Action],
    enis: &HashMap<String, Result<Eni, String>>,
    facts: Option<&HostFacts>,
    cfg: Option<&PfConfig>,
    missing_tables: &[String],
) -> Vec<Check> {
    let eni_id = |a: &Action| {
        enis.get(a.kind.interface())
            .and_then(|e| e.as_ref().ok())
            .map(|e| e.id.clone())
    };
    // An IPv6 address held by the other node can only be moved once its holder is known.
    let ipv6_rows = actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Ip { addr, .. } if addr.is_ipv6()));
    // (check, required?) — optional permissions only warn when denied.
    let mut probes: Vec<(String, DryRun, bool)> = vec![
        ("ec2:DescribeRouteTables".into(), DryRun::DescribeRouteTables, true),
        ("ec2:DescribeTags".into(), DryRun::DescribeTags, true),
        ("ec2:DescribeAddresses".into(), DryRun::DescribeAddresses, false),
        (
            if ipv6_rows {
                "ec2:DescribeNetworkInterfaces (needed by the IPv6 rows)".into()
            } else {
                "ec2:DescribeNetworkInterfaces".into()
            },
            DryRun::DescribeNetworkInterfaces,
            ipv6_rows,
        ),
    ];
    let mut routes: Vec<(String, String, Destination, String)> = Vec::new();
    let mut eips: Vec<(String, String, String, Ipv4Addr)> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for a in actions {
        let Some(eni) = eni_id(a) else { continue };
        let label = a.tab.row_name(a.row);
        match &a.kind {
            // Its own `routetable` check already fails; a probe would only repeat NotFound.
            ActionKind::Route { table, .. } if missing_tables.contains(table) => {}
            ActionKind::Route { table, dest, .. } => {
                routes.push((label, table.clone(), dest.clone(), eni));
                resources.push(table.clone());
            }
            ActionKind::Eip {
                allocation, private_ip, ..
            } => {
                eips.push((label, allocation.clone(), eni, *private_ip));
                resources.push(allocation.clone());
            }
            ActionKind::Ip { .. } => resources.push(eni),
        }
    }
    resources.sort();
    resources.dedup();
    for (label, table, dest, eni) in &routes {
        probes.push((
            format!("ec2:ReplaceRoute ({label})"),
            DryRun::ReplaceRoute { table, dest, eni },
            true,
        ));
    }
    if let Some((label, table, dest, eni)) = routes.first() {
        probes.push((
            format!("ec2:CreateRoute ({label}, optional)"),
            DryRun::CreateRoute { table, dest, eni },
            false,
        ));
    }
    for (label, allocation, eni, ip) in &eips {
        probes.push((
            format!("ec2:AssociateAddress ({label})"),
            DryRun::AssociateAddress {
                allocation,
                eni,
                ip: *ip,
            },
            true,
        ));
    }
    if !resources.is_empty() {
        probes.push((
            "ec2:CreateTags".into(),
            DryRun::CreateTags { resources: &resources },
            true,
        ));
    }
    let answers = join_all(probes.iter().map(|(_, p, _)| ec2.dry_run(p))).await;
    let mut out = Vec::new();
    for ((name, probe, required), answer) in probes.iter().zip(answers) {
        let action = probe.action();
        out.push(match answer {
            Ok(()) => check(format!("iam {name}"), CheckStatus::Ok, "allowed (DryRun)", ""),
            Err(e) if e.is_unauthorized() => check(
                format!("iam {name}"),
                if *required { CheckStatus::Fail } else { CheckStatus::Warn },
                format!("denied: {e}"),
                if *required {
                    format!("add {action} to the instance profile's policy (docs/install.md)")
                } else {
                    format!(
                        "optional: {action} lets awsha {}",
                        match action {
                            "ec2:CreateRoute" => "create a route missing from its table",
                            "ec2:DescribeAddresses" => "see where Elastic IPs really point during reconcile",
                            _ => "find which node holds a drifted address. Without it, reconcile looks for the holder by awsha tags on ENIs, and counts only instances named by the tags of this pair's route tables and Elastic IPs (another pfSense pair in the account uses the same VHID names): an address moved without awsha tags, or by a peer that never tagged a route table or Elastic IP of this config, is moved back without a split-brain check",
                        }
                    )
                },
            ),
            // A DryRun runs EC2's checks of the request too: a refusal for the resource's state
            // says nothing about the permission either way.
            Err(e) if refused_for_state(&e) => check(
                format!("iam {name}"),
                CheckStatus::Warn,
                format!("permission not determined: EC2 refused the DryRun for the resource's state, not for permission: {e}"),
                format!("confirm the policy grants {action} (docs/install.md); on the standby node, an Elastic IP probe refuses a private IP this node does not hold yet"),
            ),
            Err(e) => check(
                format!("iam {name}"),
                CheckStatus::Fail,
                e.to_string(),
                "the DryRun was refused for another reason than permissions: fix what it names",
            ),
        });
    }
    out.push(assign_check(ec2, actions, enis, facts, cfg).await);
    if ipv6_rows {
        out.push(check(
            "iam ec2:AssignIpv6Addresses, ec2:UnassignIpv6Addresses",
            CheckStatus::Warn,
            "not checked: these actions have no DryRun, and the only real test would move an address",
            "confirm the instance profile's policy grants both (docs/install.md, IPv6 rows)",
        ));
    }
    out
}

/// A DryRun answer about the resource's state rather than the caller's permission: the route to
/// create exists already, the route to replace is missing, the private IP is not on the ENI yet
/// (the standby's Elastic IP probe), or the address is associated elsewhere.
fn refused_for_state(e: &ApiError) -> bool {
    e.code == "RouteAlreadyExists"
        || e.code == "Resource.AlreadyAssociated"
        || e.is_not_mapped()
        || e.is_missing_route()
}

/// AssignPrivateIpAddresses has no DryRun. On the MASTER, re-assigning addresses the ENI already
/// holds is a real but harmless call; anywhere else the only proof would move traffic.
async fn assign_check<C: Ec2>(
    ec2: &C,
    actions: &[&Action],
    enis: &HashMap<String, Result<Eni, String>>,
    facts: Option<&HostFacts>,
    cfg: Option<&PfConfig>,
) -> Check {
    let name = "iam ec2:AssignPrivateIpAddresses";
    let ips: Vec<&Action> = actions
        .iter()
        .copied()
        .filter(|a| matches!(a.kind, ActionKind::Ip { addr, .. } if addr.is_ipv4()))
        .collect();
    if ips.is_empty() {
        return check(name, CheckStatus::Ok, "not needed (no IPv4 IP rows)", "");
    }
    let held = ips.iter().find_map(|a| {
        let ActionKind::Ip {
            interface,
            addr: IpAddr::V4(addr),
        } = &a.kind
        else {
            return None;
        };
        let eni = enis.get(interface)?.as_ref().ok()?;
        let (cfg, facts) = (cfg?, facts?);
        let vip = &cfg.vips[a.vip];
        let device = &cfg.interface(&vip.interface)?.device;
        (facts.state(device, vip.vhid) == CarpState::Master && eni.local_ipv4s.contains(addr))
            .then(|| (eni.id.clone(), *addr))
    });
    match held {
        Some((eni, addr)) => match ec2.assign_private_ips(&eni, &[addr]).await {
            Ok(()) => check(
                name,
                CheckStatus::Ok,
                format!("allowed (a no-op assignment of {addr}, already on {eni}: this action has no DryRun)"),
                "",
            ),
            Err(e) if e.is_unauthorized() => check(
                name,
                CheckStatus::Fail,
                format!("denied: {e}"),
                "add ec2:AssignPrivateIpAddresses to the instance profile's policy (docs/install.md)",
            ),
            Err(e) => check(name, CheckStatus::Fail, e.to_string(), "fix what EC2 names"),
        },
        None => check(
            name,
            CheckStatus::Warn,
            "not checked: this action has no DryRun, and this node holds none of the addresses, so the only test would move traffic",
            "run awsha doctor on the MASTER, or confirm the policy grants ec2:AssignPrivateIpAddresses",
        ),
    }
}

/// Every configured route table exists and has the route's destination.
/// Also returns the tables that do not exist, so the permission probes leave them out (a DryRun
/// naming a missing table answers NotFound, not whether the action is allowed).
async fn route_table_checks<C: Ec2>(ec2: &C, actions: &[&Action]) -> (Vec<Check>, Vec<String>) {
    let wanted: Vec<(String, String, Destination)> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Route { table, dest, .. } => Some((a.tab.row_name(a.row), table.clone(), dest.clone())),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut ids: Vec<String> = wanted.iter().map(|(_, t, _)| t.clone()).collect();
    ids.sort();
    ids.dedup();
    let tables = match ec2.describe_route_tables(&ids).await {
        Ok(t) => t,
        Err(e) => {
            let hint = if e.is_unauthorized() {
                "grant ec2:DescribeRouteTables"
            } else {
                "fix what EC2 names"
            };
            return (
                vec![check(
                    "route tables",
                    CheckStatus::Fail,
                    format!("DescribeRouteTables: {e}"),
                    hint,
                )],
                Vec::new(),
            );
        }
    };
    let missing: Vec<String> = ids
        .into_iter()
        .filter(|id| !tables.iter().any(|t| &t.id == id))
        .collect();
    let checks = wanted
        .into_iter()
        .map(|(label, table, dest)| {
            let name = format!("{label} routetable");
            match tables.iter().find(|t| t.id == table) {
                None => check(
                    name,
                    CheckStatus::Fail,
                    format!("route table {table} does not exist (InvalidRouteTableID.NotFound)"),
                    "correct the route table id in the Routes tab",
                ),
                Some(t) if t.routes.contains_key(&dest) => {
                    check(name, CheckStatus::Ok, format!("{table} has {dest}"), "")
                }
                Some(_) => check(
                    name,
                    CheckStatus::Warn,
                    format!("{table} has no route for {dest}; failover will create it"),
                    "creating needs ec2:CreateRoute; or add the route now",
                ),
            }
        })
        .collect();
    (checks, missing)
}
