//! awsha: high availability for pfSense on AWS. When a node becomes CARP MASTER, awsha makes the
//! VPC follow: secondary private IPs, routes and Elastic IPs move to this node's ENIs, tagged with
//! who moved them; `reconcile` repairs drift and settles split brains every 60 s.
//!
//! Layout (design.md §2): `cli`/`settings` (flags → what the run needs), `config`/`vhid` (config.xml),
//! `host` (ifconfig), `imds`, `ec2` (the edges, as traits), `plan`/`apply`/`tags` (the core), one
//! module per command, and `report` (JSON and text).

pub mod apply;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod ec2;
pub mod failover;
pub mod host;
pub mod imds;
pub mod interfaces;
pub mod lock;
pub mod log;
pub mod net;
pub mod node;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod settings;
pub mod status;
pub mod tags;
pub mod throttle;
pub mod timefmt;
pub mod util;
pub mod validate;
pub mod vhid;
