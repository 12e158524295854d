//! VHID names as they arrive on the command line or in a row (`wan@1`, `1@ena0`, `_vip<uniqid>`,
//! and anything else) against a fixed valid config. Must never panic; what resolves must name an
//! existing CARP VIP.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use awsha_fuzz::SAMPLE_CONFIG;
use awsha_fuzz::base::text;
use awsha_fuzz::pfsense::{model, vhid};
use libfuzzer_sys::fuzz_target;

fn sample() -> &'static model::PfConfig {
    static CFG: OnceLock<model::PfConfig> = OnceLock::new();
    CFG.get_or_init(|| model::PfConfig::parse(Path::new("sample.xml"), SAMPLE_CONFIG).expect("sample parses"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cfg = sample();
    match vhid::resolve(&text, cfg) {
        Ok(i) => assert!(i < cfg.vips.len()),
        Err(e) => assert!(!e.is_empty()),
    }
    let _ = vhid::file_stem(&text);
    let _ = text::shorten(&text);
});
