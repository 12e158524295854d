//! The decisions, with every edge behind a trait: who this node is (`node`), what a VHID's
//! failover must call and in which order (`plan`), running that plan and tagging what moved
//! (`apply`), what AWS says now and how it compares (`observe`), the reconcile rules (`judge`),
//! and the history of runs (`history`). The tag schema and CARP's priority rule are `base::tags`.

pub mod apply;
pub mod history;
pub mod judge;
pub mod node;
pub mod observe;
pub mod plan;
