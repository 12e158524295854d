//! This node as AWS knows it: instance id, region, and the ENI behind each pfSense interface
//! (interface → device (config.xml) → MAC (ifconfig) → ENI (IMDS)).

use std::collections::HashMap;

use crate::aws::imds::{self, Eni, Imds};
use crate::core::tags::Priority;
use crate::pfsense::config::PfConfig;
use crate::pfsense::ifconfig::HostFacts;
use crate::util::join_all;

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
}

/// Where the region comes from, in order: `AWS_REGION`, config.xml, IMDS.
pub fn configured_region(cfg: &PfConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("AWS_REGION")
        .filter(|r| !r.is_empty())
        .or_else(|| cfg.settings.region.clone())
}

/// The EC2 endpoint: `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, then config.xml; `None` means
/// the SDK's regional default.
pub fn endpoint(cfg: &PfConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("AWS_ENDPOINT_URL_EC2")
        .filter(|v| !v.is_empty())
        .or_else(|| env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()))
        .or_else(|| cfg.settings.endpoint.clone())
}

/// Reads everything at once; `full` also reads each ENI's subnet and addresses.
pub async fn discover<I: Imds>(
    imds: &I,
    cfg: &PfConfig,
    host: &HostFacts,
    interfaces: &[String],
    full: bool,
    region: Option<String>,
) -> Result<Node, DiscoveryError> {
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
            .map_err(|e| format!("interface {key} ({}): {e}", iface.device))
    });
    let region_lookup = async {
        match region {
            Some(r) => Ok(r),
            None => imds::region(imds).await,
        }
    };
    let (instance, region, enis) = tokio::join!(imds::instance_id(imds), region_lookup, join_all(lookups.collect()));
    let instance = instance.map_err(|message| DiscoveryError {
        instance: None,
        message,
    })?;
    let region = region.map_err(|message| DiscoveryError {
        instance: Some(instance.clone()),
        message,
    })?;
    Ok(Node {
        instance,
        region,
        enis: interfaces.iter().cloned().zip(enis).collect(),
    })
}

/// Why this node could not be discovered, with its instance id when IMDS gave that much: a report
/// carries `instance` whenever the run learnt it (design.md §10.1).
#[derive(Debug)]
pub struct DiscoveryError {
    pub instance: Option<String>,
    pub message: String,
}

impl DiscoveryError {
    /// The exit-2 report of `command` for this error.
    pub fn report(self, command: &'static str) -> crate::report::Report {
        let mut r = crate::report::Report::fail(command, self.message);
        r.instance = self.instance;
        r
    }
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
