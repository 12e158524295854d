//! The pfSense box: config.xml read as pfSense reads it (`xml`, `model`), the rows checked
//! (`validate`), VHID names, CARP state and MACs from `ifconfig -a`, and awsha's run directory
//! (locks, takeover times).

pub mod ifconfig;
pub mod model;
pub mod run_dir;
pub mod validate;
pub mod vhid;
pub mod xml;
