//! One file per command: gather the facts, decide with the core, act, report.

pub mod doctor;
pub mod failover;
pub mod interfaces;
pub mod reconcile;
pub mod status;
pub mod validate;
