//! `awsha interfaces` (the GUI's interface and address choices) and `awsha map-ip` (moving a
//! synced address into this node's subnet).

use serde_json::json;
use tokio::time::Instant;

use crate::aws::imds::AwsImds;
use crate::base::net::{Cidr, parse_ipv4};
use crate::core::node;
use crate::pfsense::config::PfConfig;
use crate::pfsense::ifconfig::{Host, Ifconfig};
use crate::report::Report;
use crate::settings::Settings;

pub async fn interfaces(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Report {
    let deadline = Instant::now() + s.deadline;
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return Report::fail("interfaces", format!("{e:#}")),
    };
    let facts = match (Ifconfig {
        program: s.ifconfig.clone(),
        timeout: std::time::Duration::from_secs(5),
    })
    .facts()
    {
        Ok(f) => f,
        Err(e) => return Report::fail("interfaces", format!("{e:#}")),
    };
    let keys: Vec<String> = cfg.interfaces.iter().map(|i| i.key.clone()).collect();
    let imds = AwsImds::new(deadline);
    let me = match node::discover(&imds, &cfg, &facts, &keys, true, node::configured_region(&cfg, env)).await {
        Ok(n) => n,
        Err(e) => return e.report("interfaces"),
    };
    let mut report = Report::new("interfaces");
    report.instance = Some(me.instance.clone());
    let mut list = Vec::new();
    let mut others = Vec::new();
    for iface in &cfg.interfaces {
        match me.enis.get(&iface.key) {
            Some(Ok(eni)) => {
                let ipv4s: Vec<String> = eni.local_ipv4s.iter().map(|i| i.to_string()).collect();
                report.text.push(format!(
                    "{:<6} {:<8} {:<22} {:<18} {}",
                    iface.key,
                    iface.device,
                    eni.id,
                    eni.subnet_cidr.map(|c| c.to_string()).unwrap_or_default(),
                    ipv4s.join(" ")
                ));
                list.push(json!({
                    "interface": iface.key, "device": iface.device, "descr": iface.descr,
                    "eni": eni.id, "mac": eni.mac, "subnet_id": eni.subnet_id,
                    "subnet_cidr": eni.subnet_cidr.map(|c| c.to_string()), "ipv4s": ipv4s,
                }));
            }
            Some(Err(why)) => others.push(json!({"interface": iface.key, "device": iface.device, "reason": why})),
            None => {}
        }
    }
    report.extra.insert("interfaces".into(), json!(list));
    report.extra.insert("not_eni".into(), json!(others));
    report
}

pub async fn map_ip(
    s: &Settings,
    interface: &str,
    from_subnet: &str,
    ip: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Report {
    let fail = |e: String| Report::fail("map-ip", e);
    let from = match Cidr::parse(from_subnet) {
        Ok(c) => c,
        Err(e) => return fail(format!("--from-subnet: {e}")),
    };
    let addr = match parse_ipv4(ip) {
        Ok(a) => a,
        Err(e) => return fail(format!("IP: {e}")),
    };
    if !from.contains(addr) {
        return fail(format!("{addr} is not inside --from-subnet {from}"));
    }
    let cfg = match PfConfig::load(&s.config_path) {
        Ok(c) => c,
        Err(e) => return fail(format!("{e:#}")),
    };
    let key = interface.to_ascii_lowercase();
    if cfg.interface(&key).is_none() {
        return fail(format!(
            "--interface: \"{}\" is not an interface in {}",
            crate::pfsense::config::shorten(interface),
            cfg.path.display()
        ));
    }
    let facts = match (Ifconfig {
        program: s.ifconfig.clone(),
        timeout: std::time::Duration::from_secs(5),
    })
    .facts()
    {
        Ok(f) => f,
        Err(e) => return fail(format!("{e:#}")),
    };
    let imds = AwsImds::new(Instant::now() + s.deadline);
    let me = match node::discover(
        &imds,
        &cfg,
        &facts,
        std::slice::from_ref(&key),
        true,
        node::configured_region(&cfg, env),
    )
    .await
    {
        Ok(n) => n,
        Err(e) => return fail(e.message),
    };
    let local = match me.enis.get(&key) {
        Some(Ok(eni)) => match eni.subnet_cidr {
            Some(c) => c,
            None => {
                return fail(format!("interface {key}: IMDS gives no subnet CIDR for {}", eni.id));
            }
        },
        Some(Err(e)) => return fail(e.clone()),
        None => return fail(format!("interface {key} was not looked up")),
    };
    match from.map_into(addr, &local) {
        Ok(mapped) => {
            let mut r = Report::new("map-ip");
            r.instance = Some(me.instance);
            r.text.push(mapped.to_string());
            r.extra.insert("ip".into(), json!(mapped.to_string()));
            r.extra.insert("subnet".into(), json!(local.to_string()));
            r
        }
        Err(e) => fail(e),
    }
}
