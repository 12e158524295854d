//! awsha's pure parser modules, compiled into the fuzz crate by path (see ../Cargo.toml for why
//! awsha itself is not a dependency). The modules refer to each other as `crate::base::…` and
//! `crate::pfsense::…`, which this tree mirrors; they are the very files the binary is built from,
//! so a finding here is a finding in awsha.
#![allow(dead_code, unused_imports)]

#[path = "../../../src/base"]
pub mod base {
    pub mod ids;
    pub mod net;
    pub mod text;
    pub mod time;
}

#[path = "../../../src/pfsense"]
pub mod pfsense {
    pub mod ifconfig;
    pub mod model;
    pub mod validate;
    pub mod vhid;
    pub mod xml;
}

/// A small, valid pfSense config with two CARP VIPs and awsha rows (the integration tests'
/// scenario), for targets that fuzz something other than the XML itself.
pub const SAMPLE_CONFIG: &str = include_str!("../seeds/config/scenario.xml");
