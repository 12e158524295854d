//! `ifconfig -a` output: any bytes (lossily decoded, as the binary does) → `parse_ifconfig`, then
//! every lookup the commands make. Must never panic.
#![no_main]

use awsha_fuzz::pfsense::ifconfig as host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let facts = host::parse_ifconfig(&text);
    for (name, dev) in &facts.devices {
        let _ = facts.mac(name);
        for c in &dev.carp {
            let found = facts.carp(name, c.vhid).expect("a parsed CARP entry is found again");
            assert_eq!(found.vhid, c.vhid);
            let _ = facts.state(name, c.vhid).to_string();
        }
    }
    let _ = facts.state("ena0", 1);
});
