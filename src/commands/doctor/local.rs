//! doctor's checks of the box itself: the run directory, the reconcile job, the configured
//! addresses against their ENIs' subnets, and CARP's mode.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::check;
use crate::aws::imds::Eni;
use crate::base::net::Cidr;
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::{Action, ActionKind};
use crate::report::{Check, CheckStatus};
use crate::settings::Settings;

/// The documentation-only ranges of RFC 5737, which never collide with a VPC's addresses.
fn is_rfc5737(ip: Ipv4Addr) -> bool {
    ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .any(|c| Cidr::parse(c).is_ok_and(|c| c.contains(IpAddr::V4(ip))))
}

pub(super) fn run_dir_check(s: &Settings) -> Check {
    let probe = s.run_dir.join(format!(".awsha-doctor.{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            check(
                "run dir",
                CheckStatus::Ok,
                format!("{} is writable (locks, takeover times)", s.run_dir.display()),
                "",
            )
        }
        Err(e) => check(
            "run dir",
            CheckStatus::Fail,
            format!("{}: {e}", s.run_dir.display()),
            "awsha needs a writable AWSHA_RUN_DIR for its per-VHID locks",
        ),
    }
}

pub(super) fn reconcile_job_check(s: &Settings, cfg: &PfConfig) -> Check {
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
            CheckStatus::Ok,
            format!("minicron runs it (pid {} in {})", pid.unwrap_or(0), pidfile.display()),
            "",
        ),
        (true, false) => check(
            "reconcile job",
            CheckStatus::Warn,
            format!("not running ({} has no live pid)", pidfile.display()),
            "save the awsha settings page (or reinstall the package) to start the minicron job",
        ),
        (false, true) => check(
            "reconcile job",
            CheckStatus::Warn,
            "running although switched off in the settings",
            "save the awsha settings page to stop it",
        ),
        (false, false) => check("reconcile job", CheckStatus::Ok, "switched off in the settings", ""),
    }
}

/// Every configured address must lie in its ENI's subnet: EC2 refuses it otherwise.
pub(super) fn address_checks(actions: &[&Action], enis: &HashMap<String, Result<Eni, String>>) -> Vec<Check> {
    let mut out = Vec::new();
    for a in actions {
        let (field, ip) = match &a.kind {
            ActionKind::Ip { addr, .. } => ("ipaddr", *addr),
            ActionKind::Eip { private_ip, .. } => ("privateip", IpAddr::V4(*private_ip)),
            ActionKind::Route { .. } => continue,
        };
        let Some(Ok(eni)) = enis.get(a.kind.interface()) else {
            continue;
        };
        // An IPv6 address must lie in one of the subnet's IPv6 prefixes.
        let subnet = if ip.is_ipv6() {
            match eni.subnet_ipv6_cidrs.iter().find(|c| c.contains(ip)) {
                Some(c) => *c,
                None => match eni.subnet_ipv6_cidrs.first() {
                    Some(c) => *c,
                    None => {
                        out.push(check(
                            format!("{} {field}", a.tab.row_name(a.row)),
                            CheckStatus::Fail,
                            format!("{ip} is IPv6, and {}'s subnet has no IPv6 prefix", eni.id),
                            "associate an IPv6 CIDR with the VPC and the subnet, or use an IPv4 address",
                        ));
                        continue;
                    }
                },
            }
        } else {
            let Some(subnet) = eni.subnet_cidr else { continue };
            subnet
        };
        let name = format!("{} {field}", a.tab.row_name(a.row));
        if subnet.contains(ip) {
            out.push(check(
                name,
                CheckStatus::Ok,
                format!("{ip} is inside {} ({subnet})", eni.id),
                "",
            ));
        } else {
            out.push(check(name, CheckStatus::Fail, format!("{ip} is outside {}'s subnet {subnet}", eni.id), "use an address of this node's subnet; across AZs, map it per node (XMLRPC sync does, with awsha map-ip)"));
        }
    }
    out
}

/// CARP in a VPC needs unicast (pfSense Plus); a VIP only used to negotiate across AZs is best
/// taken from RFC 5737 space so it never collides with a real address.
pub(super) fn carp_checks(
    cfg: &PfConfig,
    actions: &[&Action],
    enis: &HashMap<String, Result<Eni, String>>,
) -> Vec<Check> {
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
            (true, Some(peer)) => out.push(check(name.clone(), CheckStatus::Ok, format!("unicast CARP to peer {peer}"), "")),
            (true, None) => out.push(check(name.clone(), CheckStatus::Warn, "unicast CARP without a peer address", "set the peer IP of the VIP (Firewall > Virtual IPs)")),
            (false, _) => out.push(check(name.clone(), CheckStatus::Warn, "multicast CARP: a VPC carries no multicast, so the nodes cannot see each other", "switch the VIP to unicast and set the peer (pfSense Plus 23.05 or later); allow IP protocol 112 between the nodes")),
        }
        let Ok(address) = vip.subnet.parse::<Ipv4Addr>() else {
            continue;
        };
        let iface_subnet = enis
            .get(&vip.interface)
            .and_then(|e| e.as_ref().ok())
            .and_then(|e| e.subnet_cidr);
        let in_subnet = iface_subnet.is_some_and(|c| c.contains(IpAddr::V4(address)));
        if iface_subnet.is_some() && !in_subnet && !is_rfc5737(address) {
            out.push(check(
                format!("{name} address"),
                CheckStatus::Warn,
                format!("{address} is outside this node's subnet and not from RFC 5737 space"),
                "a VIP that only negotiates CARP across AZs should come from 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24, so it can never shadow a real address",
            ));
        }
    }
    out
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
}
