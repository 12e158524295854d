//! `awsha doctor`: prove this node can fail over before it has to. Every check is a line (ok,
//! warn or fail) with a fix hint; IAM is checked with EC2's DryRun wherever the action has one.
//! Doctor never changes AWS: the only real call it may make is an AssignPrivateIpAddresses of
//! addresses this MASTER already holds, which is a no-op.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::time::Instant;

use crate::aws::ec2::{AwsEc2, DryRun, Ec2};
use crate::aws::imds::{self, AwsImds, Eni};
use crate::base::net::Cidr;
use crate::base::time::{format_rfc3339_millis, to_millis};
use crate::pfsense::config::{self, Action, ActionKind, PfConfig};
use crate::pfsense::ifconfig::{CarpState, Host, HostFacts, Ifconfig};
use crate::report::Report;
use crate::settings::Settings;
use crate::util::join_all;
use crate::{commands::failover, core::node};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
    pub hint: String,
}

fn check(name: impl Into<String>, level: Level, detail: impl Into<String>, hint: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        level,
        detail: detail.into(),
        hint: hint.into(),
    }
}

/// The documentation-only ranges of RFC 5737, which never collide with a VPC's addresses.
fn is_rfc5737(ip: Ipv4Addr) -> bool {
    ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .any(|c| Cidr::parse(c).map(|c| c.contains(ip)).unwrap_or(false))
}

pub async fn run(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let deadline = Instant::now() + s.deadline;
    let mut checks: Vec<Check> = Vec::new();
    let mut report = Report::new("doctor");

    // Configuration, no network.
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => Some(c),
        Err(e) => {
            checks.push(check(
                "config",
                Level::Fail,
                format!("{e:#}"),
                "fix config.xml (see awsha validate)",
            ));
            None
        }
    };
    let validated = cfg.as_ref().map(config::validate);
    if let (Some(cfg), Some(v)) = (&cfg, &validated) {
        let problems = v.problems();
        if problems.is_empty() {
            checks.push(check(
                "config",
                Level::Ok,
                format!("{}: {} valid rows", cfg.path.display(), v.actions.len()),
                "",
            ));
        } else {
            let detail = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            checks.push(check(
                "config",
                Level::Fail,
                format!("{}: {detail}", cfg.path.display()),
                "fix the rows named (awsha validate lists every problem)",
            ));
        }
    }

    // Local: ifconfig, run directory, the reconcile job.
    let facts = match (Ifconfig {
        program: s.ifconfig.clone(),
        timeout: Duration::from_secs(5),
    })
    .facts()
    {
        Ok(f) => {
            checks.push(check(
                "ifconfig",
                Level::Ok,
                format!("{} lists {} interfaces", s.ifconfig, f.devices.len()),
                "",
            ));
            Some(f)
        }
        Err(e) => {
            checks.push(check(
                "ifconfig",
                Level::Fail,
                format!("{e:#}"),
                "awsha reads CARP states and MACs from ifconfig -a (AWSHA_IFCONFIG)",
            ));
            None
        }
    };
    checks.push(run_dir_check(s));
    if let Some(cfg) = &cfg {
        checks.push(reconcile_job_check(s, cfg));
    }

    // IMDS: token, instance, region.
    let imds = AwsImds::new(deadline);
    let instance = imds::instance_id(&imds).await;
    match &instance {
        Ok(id) => {
            report.instance = Some(id.clone());
            checks.push(check("imds", Level::Ok, format!("IMDSv2 token accepted; instance {id}"), ""));
        }
        Err(e) => checks.push(check(
            "imds",
            Level::Fail,
            e.clone(),
            "enable the instance metadata service with IMDSv2 (HttpTokens=required is fine, hop limit ≥ 1) and make sure nothing on the firewall blocks 169.254.169.254",
        )),
    }
    let configured = cfg
        .as_ref()
        .and_then(|c| node::configured_region(c, env))
        .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()));
    let region = match configured {
        Some(r) => {
            checks.push(check("region", Level::Ok, format!("{r} (configured)"), ""));
            Some(r)
        }
        None if instance.is_ok() => match imds::region(&imds).await {
            Ok(r) => {
                checks.push(check("region", Level::Ok, format!("{r} (from IMDS)"), ""));
                Some(r)
            }
            Err(e) => {
                checks.push(check("region", Level::Fail, e, "set the region in the awsha settings"));
                None
            }
        },
        None => {
            checks.push(check(
                "region",
                Level::Fail,
                "unknown: no region is configured and IMDS gave none",
                "set the region in the awsha settings, or fix IMDS",
            ));
            None
        }
    };

    // This node's ENIs for every interface the rows use.
    let actions: Vec<&Action> = validated
        .as_ref()
        .map(|v| v.actions.iter().collect())
        .unwrap_or_default();
    let mut enis: HashMap<String, Result<Eni, String>> = HashMap::new();
    if let (Some(cfg), Some(facts), Ok(_)) = (&cfg, &facts, &instance) {
        let interfaces = failover::interfaces_of(&actions);
        if let Ok(n) = node::discover(&imds, cfg, facts, &interfaces, true, region.clone()).await {
            enis = n.enis;
        }
        for key in &interfaces {
            match enis.get(key) {
                Some(Ok(eni)) => checks.push(check(
                    format!("interface {key}"),
                    Level::Ok,
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
                Some(Err(e)) => checks.push(check(
                    format!("interface {key}"),
                    Level::Fail,
                    e.clone(),
                    "rows may only name interfaces backed by an ENI of this instance (awsha interfaces lists them)",
                )),
                None => {}
            }
        }
        checks.extend(address_checks(&actions, &enis));
        checks.extend(carp_checks(cfg, &actions, &enis));
    }

    // EC2: endpoint, credentials, permissions, route tables.
    if let Some(region) = &region {
        let endpoint = cfg.as_ref().and_then(|c| node::endpoint(c, env));
        let shown = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        // Two tries at most: an unreachable endpoint must be reported in seconds, not a minute.
        let ec2 = AwsEc2::connect_with(region, endpoint.as_deref(), deadline, 2).await;
        match ec2.credentials().await {
            Ok((temporary, expiry)) => {
                let when = expiry.map(|t| {
                    let left = t.duration_since(SystemTime::now()).unwrap_or_default().as_secs();
                    format!(
                        "; they expire at {} (in {}h{:02}m; the SDK renews them)",
                        format_rfc3339_millis(to_millis(t)),
                        left / 3600,
                        left % 3600 / 60
                    )
                });
                let kind = if temporary {
                    "temporary credentials"
                } else {
                    "long-term keys (prefer an instance profile)"
                };
                checks.push(check(
                    "credentials",
                    if temporary { Level::Ok } else { Level::Warn },
                    format!("{kind} obtained{}", when.unwrap_or_default()),
                    if temporary {
                        ""
                    } else {
                        "attach an IAM instance profile instead of static keys"
                    },
                ));
            }
            Err(e) => checks.push(check(
                "credentials",
                Level::Fail,
                e,
                "attach an IAM instance profile with the policy in docs/install.md",
            )),
        }
        let credentials_ok = checks
            .last()
            .is_some_and(|c| c.name == "credentials" && c.level != Level::Fail);
        let endpoint_check = reach(&shown).await;
        let reachable = endpoint_check.level == Level::Ok;
        checks.push(endpoint_check);
        if !reachable {
            checks.push(check(
                "iam",
                Level::Warn,
                "not checked: the EC2 endpoint is unreachable",
                "fix the endpoint first",
            ));
        } else if !credentials_ok {
            checks.push(check(
                "iam",
                Level::Warn,
                "not checked: no credentials to sign requests with",
                "fix the credentials first",
            ));
        } else {
            // One signed round trip, bounded: an endpoint that accepts connections but never
            // answers must not cost the operator the SDK's full retry budget.
            let started = Instant::now();
            let probe = tokio::time::timeout(Duration::from_secs(5), ec2.dry_run(&DryRun::DescribeRegions)).await;
            let rtt = started.elapsed().as_millis();
            match probe {
                Err(_) => checks.push(check("api", Level::Fail, format!("{shown} accepted a connection but no EC2 answer came within 5 s"), "check proxies or TLS interception between the firewall and the endpoint")),
                Ok(Err(e)) if matches!(e.code.as_str(), "ConnectionError" | "Timeout" | "MalformedResponse" | "RequestError") => {
                    checks.push(check("api", Level::Fail, format!("{shown}: {e}"), "the endpoint is reachable but did not answer as EC2: check the URL (PrivateLink endpoint setting) and TLS"))
                }
                Ok(_) => {
                    checks.push(check("api", Level::Ok, format!("EC2 answered a signed request in {rtt} ms"), ""));
                    let (table_checks, missing) = route_table_checks(&ec2, &actions).await;
                    checks.extend(permission_checks(&ec2, &actions, &enis, facts.as_ref(), cfg.as_ref(), &missing).await);
                    checks.extend(table_checks);
                }
            }
        }
    }

    finish(report, checks)
}

/// Whether the endpoint's host resolves and accepts a TCP connection, and how fast: the network
/// path, apart from credentials and permissions.
async fn reach(url: &str) -> Check {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let default_port = if url.starts_with("http://") { 80 } else { 443 };
    let target = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    let started = Instant::now();
    let hint = "allow HTTPS from the firewall to the EC2 endpoint (or set a PrivateLink endpoint in the awsha settings), and check DNS";
    let addrs = match tokio::net::lookup_host(target.clone()).await {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return check(
                "endpoint",
                Level::Fail,
                format!("{url}: cannot resolve {target}: {e}"),
                hint,
            );
        }
    };
    let Some(addr) = addrs.first() else {
        return check(
            "endpoint",
            Level::Fail,
            format!("{url}: {target} resolves to no address"),
            hint,
        );
    };
    match tokio::time::timeout(crate::aws::ec2::CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => check(
            "endpoint",
            Level::Ok,
            format!(
                "{url} ({addr}) accepts connections ({} ms)",
                started.elapsed().as_millis()
            ),
            "",
        ),
        Ok(Err(e)) => check(
            "endpoint",
            Level::Fail,
            format!("{url} ({addr}): {e} (after {} ms)", started.elapsed().as_millis()),
            hint,
        ),
        Err(_) => check(
            "endpoint",
            Level::Fail,
            format!(
                "{url} ({addr}): no connection within {} s",
                crate::aws::ec2::CONNECT_TIMEOUT.as_secs()
            ),
            hint,
        ),
    }
}

fn finish(mut report: Report, checks: Vec<Check>) -> Report {
    let tag = |l: Level| match l {
        Level::Ok => "ok",
        Level::Warn => "warn",
        Level::Fail => "fail",
    };
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &checks {
        let mut line = format!("{:<4}  {:<width$}  {}", tag(c.level), c.name, c.detail);
        if !c.hint.is_empty() && c.level != Level::Ok {
            line.push_str(&format!("\n      {:<width$}  hint: {}", "", c.hint));
        }
        report.text.push(line);
    }
    let fails = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warns = checks.iter().filter(|c| c.level == Level::Warn).count();
    report
        .text
        .push(format!("{} checks: {fails} failed, {warns} warnings", checks.len()));
    report.call_failed = fails > 0;
    report.extra.insert(
        "checks".into(),
        checks
            .iter()
            .map(|c| json!({"name": c.name, "status": tag(c.level), "detail": c.detail, "hint": c.hint}))
            .collect(),
    );
    report
}

fn run_dir_check(s: &Settings) -> Check {
    let probe = s.run_dir.join(format!(".awsha-doctor.{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            check(
                "run dir",
                Level::Ok,
                format!("{} is writable (locks, takeover times)", s.run_dir.display()),
                "",
            )
        }
        Err(e) => check(
            "run dir",
            Level::Fail,
            format!("{}: {e}", s.run_dir.display()),
            "awsha needs a writable AWSHA_RUN_DIR for its per-VHID locks",
        ),
    }
}

fn reconcile_job_check(s: &Settings, cfg: &PfConfig) -> Check {
    let pidfile = s.run_dir.join("awsha_reconcile.pid");
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    let running = pid.is_some_and(|p| {
        std::process::Command::new("kill")
            .args(["-0", &p.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    });
    match (cfg.settings.enable, running) {
        (true, true) => check(
            "reconcile job",
            Level::Ok,
            format!("minicron runs it (pid {} in {})", pid.unwrap_or(0), pidfile.display()),
            "",
        ),
        (true, false) => check(
            "reconcile job",
            Level::Warn,
            format!("not running ({} has no live pid)", pidfile.display()),
            "save the awsha settings page (or reinstall the package) to start the minicron job",
        ),
        (false, true) => check(
            "reconcile job",
            Level::Warn,
            "running although switched off in the settings",
            "save the awsha settings page to stop it",
        ),
        (false, false) => check("reconcile job", Level::Ok, "switched off in the settings", ""),
    }
}

/// Every configured address must lie in its ENI's subnet: EC2 refuses it otherwise.
fn address_checks(actions: &[&Action], enis: &HashMap<String, Result<Eni, String>>) -> Vec<Check> {
    let mut out = Vec::new();
    for a in actions {
        let (field, ip) = match &a.kind {
            ActionKind::Ip { addr, .. } => ("ipaddr", *addr),
            ActionKind::Eip { private_ip, .. } => ("privateip", *private_ip),
            ActionKind::Route { .. } => continue,
        };
        let Some(Ok(eni)) = enis.get(a.kind.interface()) else {
            continue;
        };
        let Some(subnet) = eni.subnet_cidr else { continue };
        let name = format!("{} row {} {field}", a.tab.element(), a.row);
        if subnet.contains(ip) {
            out.push(check(
                name,
                Level::Ok,
                format!("{ip} is inside {} ({subnet})", eni.id),
                "",
            ));
        } else {
            out.push(check(name, Level::Fail, format!("{ip} is outside {}'s subnet {subnet}", eni.id), "use an address of this node's subnet; across AZs, map it per node (XMLRPC sync does, with awsha map-ip)"));
        }
    }
    out
}

/// CARP in a VPC needs unicast (pfSense Plus); a VIP only used to negotiate across AZs is best
/// taken from RFC 5737 space so it never collides with a real address.
fn carp_checks(cfg: &PfConfig, actions: &[&Action], enis: &HashMap<String, Result<Eni, String>>) -> Vec<Check> {
    let mut out = Vec::new();
    let mut vips: Vec<usize> = actions.iter().map(|a| a.vip).collect();
    vips.sort();
    vips.dedup();
    for i in vips {
        let vip = &cfg.vips[i];
        let name = format!("carp {}", vip.canonical());
        let unicast = vip
            .carp_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("ucast"));
        match (unicast, &vip.carp_peer) {
            (true, Some(peer)) => out.push(check(name.clone(), Level::Ok, format!("unicast CARP to peer {peer}"), "")),
            (true, None) => out.push(check(name.clone(), Level::Warn, "unicast CARP without a peer address", "set the peer IP of the VIP (Firewall > Virtual IPs)")),
            (false, _) => out.push(check(name.clone(), Level::Warn, "multicast CARP: a VPC carries no multicast, so the nodes cannot see each other", "switch the VIP to unicast and set the peer (pfSense Plus 23.05 or later); allow IP protocol 112 between the nodes")),
        }
        let Ok(address) = vip.subnet.parse::<Ipv4Addr>() else {
            continue;
        };
        let iface_subnet = enis
            .get(&vip.interface)
            .and_then(|e| e.as_ref().ok())
            .and_then(|e| e.subnet_cidr);
        let in_subnet = iface_subnet.is_some_and(|c| c.contains(address));
        if iface_subnet.is_some() && !in_subnet && !is_rfc5737(address) {
            out.push(check(
                format!("{name} address"),
                Level::Warn,
                format!("{address} is outside this node's subnet and not from RFC 5737 space"),
                "a VIP that only negotiates CARP across AZs should come from 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24, so it can never shadow a real address",
            ));
        }
    }
    out
}

async fn permission_checks(
    ec2: &AwsEc2,
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
    // (check, required?) — optional permissions only warn when denied.
    let mut probes: Vec<(String, DryRun, bool)> = vec![
        ("ec2:DescribeRouteTables".into(), DryRun::DescribeRouteTables, true),
        ("ec2:DescribeTags".into(), DryRun::DescribeTags, true),
        ("ec2:DescribeAddresses".into(), DryRun::DescribeAddresses, false),
        (
            "ec2:DescribeNetworkInterfaces".into(),
            DryRun::DescribeNetworkInterfaces,
            false,
        ),
    ];
    let mut routes: Vec<(String, String, Cidr, String)> = Vec::new();
    let mut eips: Vec<(String, String, String, Ipv4Addr)> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for a in actions {
        let Some(eni) = eni_id(a) else { continue };
        let label = format!("{} row {}", a.tab.element(), a.row);
        match &a.kind {
            // Its own `routetable` check already fails; a probe would only repeat NotFound.
            ActionKind::Route { table, .. } if missing_tables.contains(table) => {}
            ActionKind::Route { table, cidr, .. } => {
                routes.push((label, table.clone(), *cidr, eni));
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
    for (label, table, cidr, eni) in &routes {
        probes.push((
            format!("ec2:ReplaceRoute ({label})"),
            DryRun::ReplaceRoute {
                table,
                cidr: *cidr,
                eni,
            },
            true,
        ));
    }
    if let Some((label, table, cidr, eni)) = routes.first() {
        probes.push((
            format!("ec2:CreateRoute ({label}, optional)"),
            DryRun::CreateRoute {
                table,
                cidr: *cidr,
                eni,
            },
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
    let answers = join_all(probes.iter().map(|(_, p, _)| ec2.dry_run(p)).collect()).await;
    let mut out = Vec::new();
    for ((name, probe, required), answer) in probes.iter().zip(answers) {
        let action = probe.action();
        out.push(match answer {
            Ok(()) => check(format!("iam {name}"), Level::Ok, "allowed (DryRun)", ""),
            Err(e) if e.is_unauthorized() => check(
                format!("iam {name}"),
                if *required { Level::Fail } else { Level::Warn },
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
                Level::Warn,
                format!("permission not determined: EC2 refused the DryRun for the resource's state, not for permission: {e}"),
                format!("confirm the policy grants {action} (docs/install.md); on the standby node, an Elastic IP probe refuses a private IP this node does not hold yet"),
            ),
            Err(e) => check(
                format!("iam {name}"),
                Level::Fail,
                e.to_string(),
                "the DryRun was refused for another reason than permissions: fix what it names",
            ),
        });
    }
    out.push(assign_check(ec2, actions, enis, facts, cfg).await);
    out
}

/// A DryRun answer about the resource's state rather than the caller's permission: the route to
/// create exists already, the route to replace is missing, the private IP is not on the ENI yet
/// (the standby's Elastic IP probe), or the address is associated elsewhere.
fn refused_for_state(e: &crate::aws::ec2::ApiError) -> bool {
    e.code == "RouteAlreadyExists"
        || e.code == "Resource.AlreadyAssociated"
        || e.is_not_mapped()
        || e.is_missing_route()
}

/// AssignPrivateIpAddresses has no DryRun. On the MASTER, re-assigning addresses the ENI already
/// holds is a real but harmless call; anywhere else the only proof would move traffic.
async fn assign_check(
    ec2: &AwsEc2,
    actions: &[&Action],
    enis: &HashMap<String, Result<Eni, String>>,
    facts: Option<&HostFacts>,
    cfg: Option<&PfConfig>,
) -> Check {
    let name = "iam ec2:AssignPrivateIpAddresses";
    let ips: Vec<&Action> = actions
        .iter()
        .copied()
        .filter(|a| matches!(a.kind, ActionKind::Ip { .. }))
        .collect();
    if ips.is_empty() {
        return check(name, Level::Ok, "not needed (no IP rows)", "");
    }
    let held = ips.iter().find_map(|a| {
        let ActionKind::Ip { interface, addr } = &a.kind else {
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
                Level::Ok,
                format!("allowed (a no-op assignment of {addr}, already on {eni}: this action has no DryRun)"),
                "",
            ),
            Err(e) if e.is_unauthorized() => check(
                name,
                Level::Fail,
                format!("denied: {e}"),
                "add ec2:AssignPrivateIpAddresses to the instance profile's policy (docs/install.md)",
            ),
            Err(e) => check(name, Level::Fail, e.to_string(), "fix what EC2 names"),
        },
        None => check(
            name,
            Level::Warn,
            "not checked: this action has no DryRun, and this node holds none of the addresses, so the only test would move traffic",
            "run awsha doctor on the MASTER, or confirm the policy grants ec2:AssignPrivateIpAddresses",
        ),
    }
}

/// Every configured route table exists and has the route's destination.
/// Also returns the tables that do not exist, so the permission probes leave them out (a DryRun
/// naming a missing table answers NotFound, not whether the action is allowed).
async fn route_table_checks(ec2: &AwsEc2, actions: &[&Action]) -> (Vec<Check>, Vec<String>) {
    let wanted: Vec<(String, String, Cidr)> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Route { table, cidr, .. } => {
                Some((format!("{} row {}", a.tab.element(), a.row), table.clone(), *cidr))
            }
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
                    Level::Fail,
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
        .map(|(label, table, cidr)| {
            let name = format!("{label} routetable");
            match tables.iter().find(|t| t.id == table) {
                None => check(
                    name,
                    Level::Fail,
                    format!("route table {table} does not exist (InvalidRouteTableID.NotFound)"),
                    "correct the route table id in the Routes tab",
                ),
                Some(t) if t.routes.contains_key(&cidr) => check(name, Level::Ok, format!("{table} has {cidr}"), ""),
                Some(_) => check(
                    name,
                    Level::Warn,
                    format!("{table} has no route for {cidr}; failover will create it"),
                    "creating needs ec2:CreateRoute; or add the route now",
                ),
            }
        })
        .collect();
    (checks, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5737_ranges() {
        assert!(is_rfc5737("192.0.2.10".parse().unwrap()));
        assert!(is_rfc5737("203.0.113.255".parse().unwrap()));
        assert!(!is_rfc5737("10.0.1.10".parse().unwrap()));
    }

    #[test]
    fn failures_make_exit_1_and_warnings_do_not() {
        let r = finish(
            Report::new("doctor"),
            vec![check("a", Level::Ok, "x", ""), check("b", Level::Warn, "y", "h")],
        );
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.extra["checks"][1]["status"], "warn");
        let r = finish(Report::new("doctor"), vec![check("a", Level::Fail, "x", "fix")]);
        assert_eq!(r.exit_code(), 1);
        assert!(r.to_text().contains("hint: fix"));
    }
}
