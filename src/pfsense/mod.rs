//! The pfSense box: config.xml read as pfSense reads it, the rows validated, VHID names, CARP
//! state and MACs from `ifconfig -a`, and awsha's run directory (locks, takeover times).

pub mod config;
pub mod ifconfig;
pub mod run_dir;
pub mod vhid;
