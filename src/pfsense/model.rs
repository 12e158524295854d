//! config.xml as awsha sees it: the interfaces, the CARP VIPs, the awsha settings and the rows of
//! its three tabs, decoded the way pfSense decodes them (docs/contracts.md §5.1), not yet validated.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::base::ids::check_region;
use crate::base::text::{scrub, shorten};
use crate::pfsense::xml::{self, SECTIONS, children_once, elements_named, leaf_fields, wanted_sections};

/// See `PfConfig::parse`: far above what CDATA text in a real config holds.
const MAX_ATTRIBUTES: usize = 5_000;

#[derive(Clone, Debug)]
pub struct Interface {
    /// The friendly key: `wan`, `lan`, `opt1`.
    pub key: String,
    /// The OS device: `ena0`, `ena1.100`.
    pub device: String,
    pub descr: String,
}

#[derive(Clone, Debug)]
pub struct CarpVip {
    /// Friendly interface key, lower case.
    pub interface: String,
    pub vhid: u8,
    pub advbase: Option<u32>,
    pub advskew: Option<u32>,
    pub subnet: String,
    pub uniqid: String,
    pub descr: String,
    /// pfSense Plus unicast CARP: `ucast` or `mcast` (absent = `mcast`).
    pub carp_mode: Option<String>,
    pub carp_peer: Option<String>,
}

impl CarpVip {
    /// The canonical VHID name used in reports, tags and lock files: `wan@1`.
    pub fn canonical(&self) -> String {
        format!("{}@{}", self.interface, self.vhid)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PackageSettings {
    /// The periodic reconcile job; absent means on.
    pub enable: bool,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// The three list tabs, each stored under its own `installedpackages/<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tab {
    Ips,
    Routes,
    Eips,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Ips, Tab::Routes, Tab::Eips];

    /// The config.xml element, which is also how errors name the tab.
    pub fn element(self) -> &'static str {
        match self {
            Tab::Ips => "awshaips",
            Tab::Routes => "awsharoutes",
            Tab::Eips => "awshaeips",
        }
    }

    /// How errors, reports and doctor name one row: `awsharoutes row 2`.
    pub fn row_name(self, row: usize) -> String {
        format!("{} row {row}", self.element())
    }

    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Tab::Ips => &["vhid", "interface", "ipaddr"],
            Tab::Routes => &["vhid", "routetable", "cidr", "interface"],
            Tab::Eips => &["vhid", "allocationid", "interface", "privateip"],
        }
    }
}

/// One `<config>` row of a tab, its fields decoded but not yet checked.
#[derive(Clone, Debug)]
pub struct Row {
    pub tab: Tab,
    /// 1-based, as the GUI lists them.
    pub number: usize,
    pub fields: HashMap<String, String>,
}

impl Row {
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map(String::as_str).unwrap_or("")
    }
}

#[derive(Clone, Debug)]
pub struct PfConfig {
    pub path: PathBuf,
    pub interfaces: Vec<Interface>,
    pub vips: Vec<CarpVip>,
    pub settings: PackageSettings,
    pub rows: Vec<Row>,
    /// Problems in the settings page itself (bad endpoint, bad region).
    pub settings_problems: Vec<Problem>,
}

impl PfConfig {
    pub fn interface(&self, key: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.key == key)
    }

    pub fn load(path: &Path) -> Result<PfConfig> {
        let text = xml::read_text(path)?;
        PfConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<PfConfig> {
        let shown = path.display();
        // A real config is mostly firewall rules awsha never reads: one streaming pass checks the
        // whole file and finds the three sections awsha needs, and only those become a tree.
        let wanted = wanted_sections(text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let slim = format!("<pfsense>{}</pfsense>", wanted.concat());
        // roxmltree checks duplicate attributes quadratically (RazrFalcon/roxmltree#153); pfSense
        // writes no attributes at all, so sections full of them are refused before parsing.
        let attributes = slim.matches("=\"").count() + slim.matches("='").count();
        if attributes > MAX_ATTRIBUTES {
            bail!("{shown}: {attributes} attribute-like `=\"` sequences; pfSense writes none (limit {MAX_ATTRIBUTES})");
        }
        let doc = roxmltree::Document::parse_with_options(
            &slim,
            roxmltree::ParsingOptions {
                allow_dtd: false,
                nodes_limit: 4_000_000,
                ..Default::default()
            },
        )
        .map_err(|e| {
            anyhow::anyhow!("{shown}: malformed XML in <interfaces>, <virtualip> or <installedpackages>: {e}")
        })?;
        let root = doc.root_element();
        let top = children_once(root, &SECTIONS).map_err(|e| anyhow::anyhow!("{shown}: <pfsense>: {e}"))?;

        let mut interfaces = Vec::new();
        if let Some(node) = top.get("interfaces") {
            let mut seen = std::collections::HashSet::new();
            for child in node.children().filter(|n| n.is_element()) {
                let key = child.tag_name().name().to_ascii_lowercase();
                if !seen.insert(key.clone()) {
                    bail!("{shown}: <interfaces>: <{key}> occurs more than once");
                }
                let fields = leaf_fields(child).map_err(|e| anyhow::anyhow!("{shown}: <interfaces><{key}>: {e}"))?;
                interfaces.push(Interface {
                    device: fields.get("if").cloned().unwrap_or_default(),
                    descr: fields.get("descr").cloned().unwrap_or_default(),
                    key,
                });
            }
        }

        let mut vips = Vec::new();
        if let Some(node) = top.get("virtualip") {
            for (n, vip) in elements_named(*node, "vip").enumerate() {
                let f = leaf_fields(vip).map_err(|e| anyhow::anyhow!("{shown}: <virtualip> vip {}: {e}", n + 1))?;
                if !f.get("mode").is_some_and(|m| m.eq_ignore_ascii_case("carp")) {
                    continue;
                }
                let Some(vhid) = f.get("vhid").and_then(|v| v.parse::<u8>().ok()).filter(|v| *v >= 1) else {
                    // pfSense's GUI never writes this; such a VIP cannot be named, so skip it.
                    continue;
                };
                vips.push(CarpVip {
                    interface: f.get("interface").map(|s| s.to_ascii_lowercase()).unwrap_or_default(),
                    vhid,
                    advbase: f.get("advbase").and_then(|v| v.parse().ok()),
                    advskew: f.get("advskew").and_then(|v| v.parse().ok()),
                    subnet: f.get("subnet").cloned().unwrap_or_default(),
                    uniqid: f.get("uniqid").cloned().unwrap_or_default(),
                    descr: f.get("descr").cloned().unwrap_or_default(),
                    carp_mode: f.get("carp_mode").cloned().filter(|s| !s.is_empty()),
                    carp_peer: f.get("carp_peer").cloned().filter(|s| !s.is_empty()),
                });
            }
        }

        let mut settings = PackageSettings {
            enable: true,
            ..PackageSettings::default()
        };
        let mut settings_problems = Vec::new();
        let mut rows = Vec::new();
        if let Some(pkgs) = top.get("installedpackages") {
            let sections = children_once(*pkgs, &["awsha", "awshaips", "awsharoutes", "awshaeips"])
                .map_err(|e| anyhow::anyhow!("{shown}: <installedpackages>: {e}"))?;
            if let Some(node) = sections.get("awsha")
                && let Some(row) = elements_named(*node, "config").next()
            {
                let f = leaf_fields(row).map_err(|e| anyhow::anyhow!("{shown}: awsha row 1: {e}"))?;
                settings.enable = match f.get("enable") {
                    None => true,
                    Some(v) => v.eq_ignore_ascii_case("on") || v.eq_ignore_ascii_case("yes") || v == "1",
                };
                if let Some(ep) = f.get("endpoint").filter(|s| !s.is_empty()) {
                    match check_endpoint(ep) {
                        Ok(()) => settings.endpoint = Some(ep.clone()),
                        Err(why) => settings_problems.push(Problem::new(Section::Settings, 1, "endpoint", why)),
                    }
                }
                if let Some(region) = f.get("region").filter(|s| !s.is_empty()) {
                    match check_region(region) {
                        Ok(()) => settings.region = Some(region.clone()),
                        Err(why) => settings_problems.push(Problem::new(Section::Settings, 1, "region", why)),
                    }
                }
            }
            for tab in Tab::ALL {
                let Some(node) = sections.get(tab.element()) else {
                    continue;
                };
                for (i, row) in elements_named(*node, "config").enumerate() {
                    let number = i + 1;
                    let fields = leaf_fields(row)
                        .map_err(|e| anyhow::anyhow!("{shown}: {} row {number}: {e}", tab.element()))?;
                    rows.push(Row { tab, number, fields });
                }
            }
        }

        Ok(PfConfig {
            path: path.to_path_buf(),
            interfaces,
            vips,
            settings,
            rows,
            settings_problems,
        })
    }
}

/// Where a problem is: one of the tabs, or the settings page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Settings,
    Tab(Tab),
}

/// One thing wrong with one field of one row: `awsharoutes row 2 cidr: …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub section: Section,
    pub row: usize,
    pub field: &'static str,
    pub message: String,
}

impl Problem {
    /// Control characters in the message (a newline pasted into a field) become `?`: every
    /// problem is one line.
    pub(crate) fn new(section: Section, row: usize, field: &'static str, message: impl Into<String>) -> Problem {
        let message = scrub(&message.into());
        Problem {
            section,
            row,
            field,
            message,
        }
    }
}

impl Problem {
    /// The field the problem is in: `awsharoutes row 2 cidr` (`awsha row 1 region` for a setting).
    pub fn place(&self) -> String {
        let row = match self.section {
            Section::Settings => format!("awsha row {}", self.row),
            Section::Tab(t) => t.row_name(self.row),
        };
        format!("{row} {}", self.field)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place(), self.message)
    }
}

fn check_endpoint(text: &str) -> Result<(), String> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err(format!("\"{}\" is not an http(s):// URL", shorten(text))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"<?xml version="1.0"?>
<pfsense>
  <version>24.5</version>
  <interfaces>
    <wan><enable></enable><if>ena0</if><descr><![CDATA[WAN]]></descr><ipaddr>dhcp</ipaddr></wan>
    <LAN><if>ena1</if><descr><![CDATA[Inside &amp; trusted]]></descr></LAN>
    <opt1><if>ena2</if><descr>DMZ</descr></opt1>
  </interfaces>
  <virtualip>
    <vip><mode>carp</mode><interface>wan</interface><vhid>1</vhid><advskew>0</advskew><advbase>1</advbase>
      <password><![CDATA[secret]]></password><uniqid>65de65ceb0447</uniqid><descr><![CDATA[WAN VIP]]></descr>
      <type>single</type><subnet_bits>32</subnet_bits><subnet>10.0.1.10</subnet>
      <carp_mode>ucast</carp_mode><carp_peer>10.0.1.12</carp_peer></vip>
    <vip><mode>carp</mode><interface>lan</interface><vhid>2</vhid><advskew>0</advskew><advbase>1</advbase>
      <uniqid>65de65ceb0448</uniqid><descr></descr><type>single</type><subnet_bits>32</subnet_bits><subnet>10.0.2.10</subnet></vip>
    <vip><mode>ipalias</mode><interface>_vip65de65ceb0447</interface><uniqid>65de65ceb0449</uniqid><subnet>10.0.1.20</subnet></vip>
  </virtualip>
  <installedpackages>
    <package><name>awsha</name></package>
    <awsha><config><enable>on</enable><endpoint></endpoint><region></region></config></awsha>
    <awshaips>
      <config><vhid>wan@1</vhid><interface>wan</interface><ipaddr>10.0.1.10</ipaddr><xmlrpcsync>on</xmlrpcsync></config>
      <config><vhid>_vip65de65ceb0448</vhid><interface>LAN</interface><ipaddr>10.0.2.10</ipaddr></config>
    </awshaips>
    <awsharoutes>
      <config><vhid>WAN@1</vhid><routetable>RTB-05ED6E7C46531C6C3</routetable><cidr>0.0.0.0/0</cidr><interface>lan</interface></config>
    </awsharoutes>
    <awshaeips>
      <config><vhid>1@ena0</vhid><allocationid>eipalloc-0a1b2c3d4e5f67890</allocationid><interface>wan</interface><privateip>10.0.1.10</privateip></config>
    </awshaeips>
  </installedpackages>
</pfsense>
"#;

    pub fn sample() -> PfConfig {
        PfConfig::parse(Path::new("/conf/config.xml"), SAMPLE).unwrap()
    }

    #[test]
    fn reads_interfaces_vips_settings_and_rows_like_pfsense() {
        let cfg = sample();
        assert_eq!(cfg.interfaces.len(), 3);
        let lan = cfg.interface("lan").unwrap();
        assert_eq!((lan.device.as_str(), lan.descr.as_str()), ("ena1", "Inside & trusted"));
        assert_eq!(cfg.vips.len(), 2, "the IP alias is not a CARP VIP");
        assert_eq!(cfg.vips[0].canonical(), "wan@1");
        assert_eq!(cfg.vips[0].carp_mode.as_deref(), Some("ucast"));
        assert_eq!(cfg.vips[1].carp_peer, None);
        assert!(cfg.settings.enable);
        assert_eq!(cfg.settings.endpoint, None);
        assert_eq!(cfg.rows.len(), 4);
    }

    #[test]
    fn enable_checkbox_empty_means_off_absent_means_on() {
        let off = SAMPLE.replace("<enable>on</enable>", "<enable></enable>");
        assert!(!PfConfig::parse(Path::new("c"), &off).unwrap().settings.enable);
        let upper = SAMPLE.replace("<enable>on</enable>", "<enable>ON</enable>");
        assert!(PfConfig::parse(Path::new("c"), &upper).unwrap().settings.enable);
        let absent = SAMPLE.replace("<enable>on</enable>", "");
        assert!(PfConfig::parse(Path::new("c"), &absent).unwrap().settings.enable);
    }

    #[test]
    fn refuses_what_pfsense_refuses() {
        let p = Path::new("/conf/config.xml");
        let dup = SAMPLE.replace(
            "<ipaddr>10.0.1.10</ipaddr>",
            "<ipaddr>10.0.1.10</ipaddr><ipaddr>10.0.1.11</ipaddr>",
        );
        let e = PfConfig::parse(p, &dup).unwrap_err().to_string();
        assert!(
            e.contains("awshaips row 1") && e.contains("<ipaddr> occurs more than once"),
            "{e}"
        );
        let e = PfConfig::parse(p, "<pfsense><interfaces>").unwrap_err().to_string();
        assert!(e.starts_with("/conf/config.xml: malformed XML"), "{e}");
        let e = PfConfig::parse(p, "<opnsense/>").unwrap_err().to_string();
        assert!(e.contains("not <pfsense>"), "{e}");
        let bomb = "<!DOCTYPE pfsense [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;\">]><pfsense>&b;</pfsense>";
        assert!(PfConfig::parse(p, bomb).is_err(), "no DTD, so no entity expansion");
    }

    #[test]
    fn streaming_pass_finds_only_top_level_sections_and_checks_the_rest() {
        let text = "<?xml version=\"1.0\"?>\n<pfsense><filter><rule><descr><![CDATA[<interfaces>]]></descr></rule></filter>\
            <!-- <virtualip> --><interfaces><wan><if>ena0</if></wan></interfaces><x:y xmlns:x=\"u\"><z/></x:y>\
            <installedpackages/></pfsense>";
        let parts = wanted_sections(text).unwrap();
        assert_eq!(
            parts,
            [
                "<interfaces><wan><if>ena0</if></wan></interfaces>",
                "<installedpackages/>"
            ]
        );
        for (bad, needle) in [
            ("<pfsense><interfaces></pfsense>", "closes <interfaces>"),
            ("<pfsense><filter><rule></filter></rule></pfsense>", "closes <rule>"),
            ("<pfsense/><pfsense/>", "malformed XML"),
            ("<pfsense><interfaces>", "unexpected end of file inside <interfaces>"),
            ("", "no root element"),
            ("<opnsense/>", "not <pfsense>"),
            ("<pfsense/>trailing", "malformed XML"),
            ("<!DOCTYPE pfsense><pfsense/>", "DTD"),
        ] {
            let e = wanted_sections(bad).unwrap_err();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
    }
}
