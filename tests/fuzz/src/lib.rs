//! awsha's pure parser modules, compiled into the fuzz crate by path (see ../Cargo.toml for why
//! the awsha library itself is not a dependency). The modules refer to each other as
//! `crate::config`, `crate::net` and `crate::vhid`, which these declarations satisfy; they are the
//! very files the binary is built from, so a finding here is a finding in awsha.
#![allow(dead_code, unused_imports)]

#[path = "../../../src/config.rs"]
pub mod config;
#[path = "../../../src/host.rs"]
pub mod host;
#[path = "../../../src/net.rs"]
pub mod net;
#[path = "../../../src/timefmt.rs"]
pub mod timefmt;
#[path = "../../../src/vhid.rs"]
pub mod vhid;

/// A small, valid pfSense config with two CARP VIPs and awsha rows (the integration tests'
/// scenario), for targets that fuzz something other than the XML itself.
pub const SAMPLE_CONFIG: &str = include_str!("../seeds/config/scenario.xml");
