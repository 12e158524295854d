//! This node as AWS knows it: instance id, region, and the ENI behind each pfSense interface
//! (interface → device (config.xml) → MAC (ifconfig) → ENI (IMDS)); and its CARP priority.

use std::collections::HashMap;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::aws::ec2::MAX_ATTEMPTS;
use crate::aws::imds::{self, Eni, Imds};
use crate::base::tags::Priority;
use crate::edges::Edges;
use crate::pfsense::ifconfig::HostFacts;
use crate::pfsense::model::PfConfig;
use crate::pfsense::validate::Action;
use crate::report::{Failure, Timeline};
use crate::settings::Settings;

pub struct Node {
    pub instance: String,
    pub region: String,
    /// By interface key; an error says why an interface has no ENI.
    pub enis: HashMap<String, Result<Eni, String>>,
}

impl Node {
    pub fn eni_ids(&self) -> HashMap<String, Result<String, String>> {
        self.enis
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map(|e| e.id.clone()).map_err(Clone::clone)))
            .collect()
    }

    /// The subnets of this node's ENIs (known after a full discovery), sorted: where the holder of
    /// a drifted address may be.
    pub fn subnet_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .enis
            .values()
            .filter_map(|e| e.as_ref().ok()?.subnet_id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// This node's ENI for an interface, or why there is none.
    pub fn eni(&self, interface: &str) -> Result<&Eni, String> {
        match self.enis.get(interface) {
            Some(Ok(eni)) => Ok(eni),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("interface {interface} was not looked up")),
        }
    }
}

/// Where the region comes from, in order: `AWS_REGION`, config.xml, IMDS (`None`: ask IMDS).
pub fn region(s: &Settings, cfg: &PfConfig) -> Option<String> {
    s.region.clone().or_else(|| cfg.settings.region.clone())
}

/// The EC2 endpoint: `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, then config.xml; `None` means
/// the SDK's regional default.
pub fn endpoint(s: &Settings, cfg: &PfConfig) -> Option<String> {
    s.endpoint.clone().or_else(|| cfg.settings.endpoint.clone())
}

/// The interface keys the actions need ENIs for, in first-use order.
pub fn interfaces_of(actions: &[&Action]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in actions {
        let i = a.kind.interface().to_string();
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Reads everything at once; `full` also reads each ENI's subnet and addresses. An interface
/// without an ENI is that interface's error, not the run's; the run fails without an instance
/// id or a region (with the instance id, when IMDS gave that much).
pub async fn discover<I: Imds>(
    imds: &I,
    cfg: &PfConfig,
    host: &HostFacts,
    interfaces: &[String],
    full: bool,
    region: Option<String>,
) -> Result<Node, Failure> {
    let lookups = interfaces.iter().map(|key| async move {
        let iface = cfg
            .interface(key)
            .ok_or_else(|| format!("interface {key} is not in config.xml"))?;
        let mac = host.mac(&iface.device).ok_or_else(|| {
            format!(
                "interface {key} ({}): ifconfig shows no MAC address, so it cannot be an ENI",
                iface.device
            )
        })?;
        imds::eni(imds, mac, full)
            .await
            .map_err(|e| format!("interface {key} ({}): {e:#}", iface.device))
    });
    let region_lookup = async {
        match region {
            Some(r) => Ok(r),
            None => imds::region(imds).await,
        }
    };
    let (instance, region, enis) = tokio::join!(imds::instance_id(imds), region_lookup, join_all(lookups));
    let instance = instance?;
    let region = region.map_err(|error| Failure {
        error,
        instance: Some(instance.clone()),
    })?;
    Ok(Node {
        instance,
        region,
        enis: interfaces.iter().cloned().zip(enis).collect(),
    })
}

/// EC2 for this node's region, at the configured endpoint, until `deadline`: every command that
/// acts through EC2 opens it this way.
pub async fn open_ec2<E: Edges>(
    edges: &E,
    s: &Settings,
    cfg: &PfConfig,
    me: &Node,
    deadline: Instant,
    timeline: &Timeline,
) -> E::Ec2 {
    edges
        .ec2(
            &me.region,
            endpoint(s, cfg).as_deref(),
            deadline,
            MAX_ATTEMPTS,
            timeline,
        )
        .await
}

/// This node's priority for a VIP: the running values from ifconfig (maintenance mode shows
/// advskew 254), else config.xml's.
pub fn priority(cfg: &PfConfig, facts: &HostFacts, vip: usize, instance: &str) -> Priority {
    let v = &cfg.vips[vip];
    let device = cfg.interface(&v.interface).map(|f| f.device.as_str()).unwrap_or("");
    let carp = facts.carp(device, v.vhid);
    Priority {
        advbase: carp.map(|c| c.advbase).or(v.advbase).unwrap_or(1),
        advskew: carp.map(|c| c.advskew).or(v.advskew).unwrap_or(0),
        instance: instance.to_string(),
    }
}
