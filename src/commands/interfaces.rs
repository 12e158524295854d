//! `awsha interfaces` (the GUI's interface and address choices) and `awsha map-ip` (moving a
//! synced address into this node's subnet).

use anyhow::anyhow;
use tokio::time::Instant;

use crate::base::net::{Cidr, parse_ipv4};
use crate::base::text::shorten;
use crate::core::node;
use crate::edges::Edges;
use crate::pfsense::model::PfConfig;
use crate::report::{Details, EniInterface, Failure, Outcome, Report};
use crate::settings::Settings;

pub async fn interfaces<E: Edges>(edges: &E, s: &Settings) -> Outcome {
    let deadline = Instant::now() + s.deadline;
    let cfg = PfConfig::load(&s.config_path)?;
    let facts = edges.host_facts().await?;
    let keys: Vec<String> = cfg.interfaces.iter().map(|i| i.key.clone()).collect();
    let imds = edges.imds(deadline);
    let me = node::discover(&imds, &cfg, &facts, &keys, true, node::region(s, &cfg)).await?;
    let mut report = Report::new("interfaces");
    report.instance = Some(me.instance.clone());
    let mut enis = Vec::new();
    let mut not_eni = Vec::new();
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
                enis.push(EniInterface {
                    interface: iface.key.clone(),
                    device: iface.device.clone(),
                    descr: iface.descr.clone(),
                    eni: eni.id.clone(),
                    mac: eni.mac.clone(),
                    subnet_id: eni.subnet_id.clone(),
                    subnet_cidr: eni.subnet_cidr.map(|c| c.to_string()),
                    ipv4s,
                });
            }
            Some(Err(why)) => not_eni.push((iface.key.clone(), iface.device.clone(), why.clone())),
            None => {}
        }
    }
    report.details = Details::Interfaces { enis, not_eni };
    Ok(report)
}

pub async fn map_ip<E: Edges>(edges: &E, s: &Settings, interface: &str, from_subnet: &str, ip: &str) -> Outcome {
    let from = Cidr::parse(from_subnet).map_err(|e| anyhow!("--from-subnet: {e}"))?;
    let addr = parse_ipv4(ip).map_err(|e| anyhow!("IP: {e}"))?;
    if !from.contains(addr) {
        return Err(anyhow!("{addr} is not inside --from-subnet {from}").into());
    }
    let cfg = PfConfig::load(&s.config_path)?;
    let key = interface.to_ascii_lowercase();
    if cfg.interface(&key).is_none() {
        return Err(anyhow!(
            "--interface: \"{}\" is not an interface in {}",
            shorten(interface),
            cfg.path.display()
        )
        .into());
    }
    let facts = edges.host_facts().await?;
    let imds = edges.imds(Instant::now() + s.deadline);
    let me = node::discover(
        &imds,
        &cfg,
        &facts,
        std::slice::from_ref(&key),
        true,
        node::region(s, &cfg),
    )
    .await?;
    let fail = |e: String| Failure::on(&me.instance, anyhow!(e));
    let eni = me.eni(&key).map_err(fail)?;
    let local = eni
        .subnet_cidr
        .ok_or_else(|| fail(format!("interface {key}: IMDS gives no subnet CIDR for {}", eni.id)))?;
    let mapped = from.map_into(addr, &local).map_err(fail)?;
    let mut r = Report::new("map-ip");
    r.instance = Some(me.instance.clone());
    r.text.push(mapped.to_string());
    r.details = Details::MappedIp {
        ip: mapped.to_string(),
        subnet: local.to_string(),
    };
    Ok(r)
}
