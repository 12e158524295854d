//! The decisions: who this node is, what a VHID's failover must call and in which order, running
//! that plan through the EC2 trait, the tag schema and priorities.

pub mod apply;
pub mod node;
pub mod plan;
pub mod tags;
