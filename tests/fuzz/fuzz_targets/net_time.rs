//! The small parsers of values: CIDRs and addresses (with the subnet mapping that XMLRPC sync
//! uses), resource ids, region names, and the RFC 3339 times read back from tags and takeover
//! files. Must never panic, and what parses must print back to itself.
#![no_main]

use awsha_fuzz::base::{ids, net, text, time as timefmt};
use libfuzzer_sys::fuzz_target;

/// 0000-01-01 to 9999-12-31: the years the 4-digit format can print.
const PRINTABLE: std::ops::Range<i64> = -62_167_219_200_000..253_402_300_800_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));

    if let Ok(cidr) = net::Cidr::parse(a) {
        assert_eq!(net::Cidr::parse(&cidr.to_string()), Ok(cidr), "CIDR round trip");
        if let (Ok(to), Ok(ip)) = (net::Cidr::parse(b), net::parse_ipv4(c)) {
            if let Ok(mapped) = cidr.map_into(ip, &to) {
                assert!(to.contains(mapped), "{ip} mapped from {cidr} to {mapped}, outside {to}");
            }
        }
    }
    let _ = net::parse_ipv4(a);
    for prefix in ["rtb-", "eipalloc-", "eni-", "i-"] {
        if let Ok(id) = ids::check_id(a, prefix, "an id") {
            assert!(id.starts_with(prefix));
        }
    }
    let _ = ids::check_region(a);
    let _ = text::shorten(&text);

    if let Some(ms) = timefmt::parse_rfc3339(&text) {
        if PRINTABLE.contains(&ms) {
            let printed = timefmt::format_rfc3339_millis(ms);
            assert_eq!(timefmt::parse_rfc3339(&printed), Some(ms), "time round trip via {printed}");
        }
    }
});
