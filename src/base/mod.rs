//! Value types every other room uses, with no I/O: addresses and CIDRs, times, one-line text.

pub mod net;
pub mod time;
