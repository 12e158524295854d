//! Value types and text rules every other room uses, with no I/O: addresses and CIDRs, resource
//! ids, times, one-line text.

pub mod ids;
pub mod net;
pub mod text;
pub mod time;
