//! Value types and text rules every other room uses, with no I/O: addresses and CIDRs, resource
//! ids, times, one-line text, and the awsha:* tag schema with CARP's priority rule.

pub mod ids;
pub mod net;
pub mod tags;
pub mod text;
pub mod time;
