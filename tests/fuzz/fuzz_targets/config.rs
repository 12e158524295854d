//! config.xml: any bytes → `PfConfig::load`'s path (UTF-8 check, XML parse with pfSense's rules),
//! then validation of every row and the resolution of every CARP VIP's names. Must never panic,
//! whatever the file holds; every problem must render.
#![no_main]

use std::path::Path;

use awsha_fuzz::pfsense::{model, validate, vhid, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xml::decode_entities(text);
    let Ok(cfg) = model::PfConfig::parse(Path::new("/conf/config.xml"), text) else {
        return;
    };
    let validated = validate::validate(&cfg);
    for p in validated.problems() {
        let _ = p.to_string();
    }
    for a in &validated.actions {
        assert!(a.vip < cfg.vips.len(), "an action names a VIP that does not exist");
        assert_eq!(a.vhid, cfg.vips[a.vip].canonical());
    }
    for v in &cfg.vips {
        // Every form a VIP can be named by resolves without panicking (to it, or to an equal one).
        for name in [v.canonical(), format!("_vip{}", v.uniqid), format!("{}@{}", v.vhid, v.interface)] {
            let _ = vhid::resolve(&name, &cfg);
        }
        let _ = vhid::file_stem(&v.canonical());
    }
});
