//! awsha: high availability for pfSense on AWS. When a node becomes CARP MASTER, awsha makes the
//! VPC follow: secondary private IPs, routes and Elastic IPs move to this node's ENIs, tagged with
//! who moved them; `reconcile` repairs drift and settles split brains every 60 s.
//!
//! Layout (design.md §2): `cli`/`settings` (flags → what the run needs), `config`/`vhid` (config.xml),
//! `host` (ifconfig), `imds`, `ec2` (the edges, as traits), `plan`/`apply`/`tags` (the core), one
//! module per command, and `report` (JSON and text).

pub mod aws;
pub mod base;
pub mod cli;
pub mod commands;
pub mod core;
pub mod log;
pub mod pfsense;
pub mod report;
pub mod settings;
pub mod util;
