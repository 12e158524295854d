//! Naming a CARP VIP: `wan@1`, `WAN@1`, `ena0@1`, the kernel's `1@ena0`, and `_vip<uniqid>`.
//!
//! rc.carpmaster passes the kernel form (`<vhid>@<device>`); the status page shows
//! `<DESCR>@<vhid>`; operators type `wan@1`. All resolve to one `<virtualip><vip>` of mode carp
//! (rules: docs/references.md §12).

use crate::pfsense::model::{CarpVip, PfConfig};

/// The index into `cfg.vips` of the CARP VIP that `text` names, or an error that says what exists.
pub fn resolve(text: &str, cfg: &PfConfig) -> Result<usize, String> {
    let input = text.trim().trim_start_matches('$');
    let shown = crate::base::text::shorten(text);
    if let Some(uniqid) = input.strip_prefix("_vip") {
        return cfg
            .vips
            .iter()
            .position(|v| !v.uniqid.is_empty() && v.uniqid.eq_ignore_ascii_case(uniqid))
            .ok_or_else(|| format!("\"{shown}\" names no CARP VIP{}", known(cfg)));
    }
    let Some((left, right)) = input.rsplit_once('@') else {
        return Err(format!(
            "\"{shown}\" is not a VHID (use iface@vhid like wan@1, vhid@device like 1@ena0, or _vip<uniqid>)"
        ));
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (key, vhid) = match (numeric(left), numeric(right)) {
        (true, false) => {
            // Kernel form: vhid@device. The device maps to the interface whose <if> it is.
            let key = cfg
                .interfaces
                .iter()
                .find(|i| !i.device.is_empty() && i.device.eq_ignore_ascii_case(right))
                .map(|i| i.key.clone())
                .ok_or_else(|| {
                    format!(
                        "\"{shown}\": no interface in config.xml uses device {}{}",
                        crate::base::text::shorten(right),
                        known(cfg)
                    )
                })?;
            (key, left)
        }
        (false, true) => {
            let by = |f: &dyn Fn(&crate::pfsense::model::Interface) -> bool| cfg.interfaces.iter().find(|i| f(i));
            let key = by(&|i| i.key.eq_ignore_ascii_case(left))
                .or_else(|| by(&|i| !i.descr.is_empty() && i.descr.eq_ignore_ascii_case(left)))
                .or_else(|| by(&|i| !i.device.is_empty() && i.device.eq_ignore_ascii_case(left)))
                .map(|i| i.key.clone())
                .ok_or_else(|| {
                    format!(
                        "\"{shown}\": no interface is named {}{}",
                        crate::base::text::shorten(left),
                        known(cfg)
                    )
                })?;
            (key, right)
        }
        _ => {
            return Err(format!(
                "\"{shown}\" is not a VHID (use iface@vhid like wan@1, vhid@device like 1@ena0, or _vip<uniqid>)"
            ));
        }
    };
    let vhid: u8 = vhid
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("\"{shown}\": a vhid is 1 to 255"))?;
    cfg.vips
        .iter()
        .position(|v| v.interface == key && v.vhid == vhid)
        .ok_or_else(|| format!("\"{shown}\" names no CARP VIP{}", known(cfg)))
}

fn known(cfg: &PfConfig) -> String {
    if cfg.vips.is_empty() {
        return " (config.xml has no CARP VIPs)".into();
    }
    let names: Vec<String> = cfg.vips.iter().map(describe).collect();
    format!(" (configured: {})", names.join(", "))
}

fn describe(v: &CarpVip) -> String {
    use crate::base::text::shorten;
    if v.descr.is_empty() {
        format!("{} = {}", shorten(&v.canonical()), shorten(&v.subnet))
    } else {
        format!(
            "{} = {} ({})",
            shorten(&v.canonical()),
            shorten(&v.subnet),
            shorten(&v.descr)
        )
    }
}

/// `wan@1` → `wan_1`: the stem of the lock and takeover file names.
pub fn file_stem(canonical: &str) -> String {
    canonical.replace('@', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfsense::model::tests::sample;

    #[test]
    fn resolves_every_accepted_form() {
        let cfg = sample();
        for (text, want) in [
            ("wan@1", 0),
            ("WAN@1", 0),
            ("ena0@1", 0),
            ("1@ena0", 0),
            ("$1@ena0", 0),
            ("_vip65de65ceb0447", 0),
            ("_vip65DE65CEB0447", 0),
            ("lan@2", 1),
            ("2@ena1", 1),
            ("Inside & trusted@2", 1),
        ] {
            assert_eq!(resolve(text, &cfg), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_with_what_exists() {
        let cfg = sample();
        let e = resolve("wan@9", &cfg).unwrap_err();
        assert!(
            e.contains("wan@1 = 10.0.1.10") && e.contains("lan@2 = 10.0.2.10"),
            "{e}"
        );
        assert!(resolve("1@2", &cfg).unwrap_err().contains("not a VHID"));
        assert!(resolve("wan", &cfg).unwrap_err().contains("not a VHID"));
        assert!(resolve("1@ena9", &cfg).unwrap_err().contains("device ena9"));
        assert!(resolve("dmz@0", &cfg).unwrap_err().contains("1 to 255"));
        assert!(resolve("dmz@256", &cfg).is_err());
        assert!(resolve("opt1@1", &cfg).unwrap_err().contains("names no CARP VIP"));
        assert!(resolve("_vipdeadbeef", &cfg).is_err());
        assert!(resolve("_vip", &cfg).is_err());
    }

    #[test]
    fn file_stem_is_safe() {
        assert_eq!(file_stem("wan@1"), "wan_1");
    }
}
