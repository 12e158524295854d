//! Reading pfSense's config.xml the way pfSense reads it, and validating awsha's rows.
//!
//! pfSense's own parser (`xmlparse.inc`) lower-cases element names, keeps list tags (`config`,
//! `vip`, …) as arrays, refuses any other element repeated under one parent, and HTML-entity-
//! decodes text after XML decoding. awsha copies those rules for the parts it reads: the
//! interfaces, the CARP VIPs and its own four package sections (design.md §4).

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::base::net::{Cidr, parse_ipv4};
use crate::pfsense::vhid;

/// Real configs run to a few MB; anything this large is not a pfSense config.
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;
/// See `PfConfig::parse`: far above what CDATA text in a real config holds.
const MAX_ATTRIBUTES: usize = 5_000;
/// Longest value a row field may hold; far above any id, address or URL.
const MAX_FIELD_CHARS: usize = 1024;

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
pub struct Settings {
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
    pub settings: Settings,
    pub rows: Vec<Row>,
    /// Problems in the settings page itself (bad endpoint, bad region).
    pub settings_problems: Vec<Problem>,
}

impl PfConfig {
    pub fn interface(&self, key: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.key == key)
    }

    pub fn load(path: &Path) -> Result<PfConfig> {
        let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
        // A device or FIFO would be read forever (or block): pfSense's config is a regular file.
        if !meta.is_file() {
            bail!("{}: not a regular file", path.display());
        }
        if meta.len() > MAX_CONFIG_BYTES {
            bail!(
                "{}: {} bytes is larger than any pfSense config (limit {MAX_CONFIG_BYTES})",
                path.display(),
                meta.len()
            );
        }
        let mut bytes = Vec::new();
        let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
        // Bounded even if the file grows between the size check and the read.
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1), &mut bytes)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            bail!(
                "{}: larger than any pfSense config (limit {MAX_CONFIG_BYTES} bytes)",
                path.display()
            );
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
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

        let mut settings = Settings {
            enable: true,
            ..Settings::default()
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

/// The top-level sections of `<pfsense>` that awsha reads.
const SECTIONS: [&str; 3] = ["interfaces", "virtualip", "installedpackages"];

/// One streaming pass over the whole document (xmlparser: no tree, no copies): checks that it is
/// well-formed XML with a `<pfsense>` root and no DTD, and returns the text of each of
/// `SECTIONS` found directly under the root, in document order.
fn wanted_sections(text: &str) -> Result<Vec<&str>, String> {
    use xmlparser::{ElementEnd, Token};
    let mut open: Vec<&str> = Vec::new();
    let mut pending: (&str, usize) = ("", 0);
    let mut section_start: Option<usize> = None;
    let mut out = Vec::new();
    let mut root_seen = false;
    let is_wanted = |name: &str| SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(name));
    for token in xmlparser::Tokenizer::from(text) {
        match token.map_err(|e| format!("malformed XML: {e}"))? {
            Token::DtdStart { .. } | Token::EmptyDtd { .. } | Token::EntityDeclaration { .. } => {
                return Err("malformed XML: a DTD is not allowed".into());
            }
            Token::ElementStart { prefix, local, span } => {
                let name = if prefix.is_empty() {
                    local.as_str()
                } else {
                    span.as_str().trim_start_matches('<')
                };
                if open.is_empty() {
                    if root_seen {
                        return Err("malformed XML: more than one root element".into());
                    }
                    if !local.as_str().eq_ignore_ascii_case("pfsense") {
                        return Err(format!(
                            "the root element is <{}>, not <pfsense>",
                            shorten(local.as_str())
                        ));
                    }
                    root_seen = true;
                }
                pending = (name, span.start());
            }
            Token::ElementEnd {
                end: ElementEnd::Open, ..
            } => {
                if open.len() == 1 && is_wanted(pending.0) {
                    section_start = Some(pending.1);
                }
                open.push(pending.0);
            }
            Token::ElementEnd {
                end: ElementEnd::Empty,
                span,
            } => {
                if open.len() == 1 && is_wanted(pending.0) {
                    out.push(&text[pending.1..span.end()]);
                }
            }
            Token::ElementEnd {
                end: ElementEnd::Close(prefix, local),
                span,
            } => {
                let name = if prefix.is_empty() {
                    local.as_str()
                } else {
                    &text[prefix.start()..local.end()]
                };
                match open.pop() {
                    Some(expected) if expected == name => {}
                    Some(expected) => {
                        return Err(format!(
                            "malformed XML: </{}> closes <{}> at byte {}",
                            shorten(name),
                            shorten(expected),
                            span.start()
                        ));
                    }
                    None => return Err(format!("malformed XML: </{}> with nothing open", shorten(name))),
                }
                if open.len() == 1
                    && let Some(start) = section_start.take()
                {
                    out.push(&text[start..span.end()]);
                }
            }
            Token::Text { text: t } if open.is_empty() && !t.as_str().trim().is_empty() => {
                return Err("malformed XML: text outside the root element".into());
            }
            _ => {}
        }
    }
    match (root_seen, open.last()) {
        (false, _) => Err("malformed XML: no root element".into()),
        (true, Some(name)) => Err(format!(
            "malformed XML: unexpected end of file inside <{}>",
            shorten(name)
        )),
        (true, None) => Ok(out),
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
    fn new(section: Section, row: usize, field: &'static str, message: impl Into<String>) -> Problem {
        let message = message
            .into()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        Problem {
            section,
            row,
            field,
            message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let section = match self.section {
            Section::Settings => "awsha",
            Section::Tab(t) => t.element(),
        };
        write!(f, "{section} row {} {}: {}", self.row, self.field, self.message)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Ip {
        interface: String,
        addr: Ipv4Addr,
    },
    Route {
        table: String,
        cidr: Cidr,
        interface: String,
    },
    Eip {
        allocation: String,
        interface: String,
        private_ip: Ipv4Addr,
    },
}

impl ActionKind {
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Ip { .. } => "ip",
            ActionKind::Route { .. } => "route",
            ActionKind::Eip { .. } => "eip",
        }
    }

    pub fn interface(&self) -> &str {
        match self {
            ActionKind::Ip { interface, .. }
            | ActionKind::Route { interface, .. }
            | ActionKind::Eip { interface, .. } => interface,
        }
    }
}

/// A valid row, ready to plan: what to point where, for which CARP VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub tab: Tab,
    pub row: usize,
    /// Index into `PfConfig::vips`.
    pub vip: usize,
    /// Canonical VHID (`wan@1`).
    pub vhid: String,
    pub kind: ActionKind,
}

/// A row that cannot be acted on, with every problem found in it.
#[derive(Clone, Debug)]
pub struct InvalidRow {
    pub tab: Tab,
    pub row: usize,
    /// Canonical VHID when the row's `vhid` names a VIP, else the text as written.
    pub vhid: String,
    pub vip: Option<usize>,
    /// What the row would have acted on, for the report's `kind`.
    pub kind: &'static str,
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug, Default)]
pub struct Validated {
    pub actions: Vec<Action>,
    pub invalid: Vec<InvalidRow>,
    pub settings_problems: Vec<Problem>,
}

impl Validated {
    /// Every problem, settings first, then rows in tab and row order.
    pub fn problems(&self) -> Vec<&Problem> {
        self.settings_problems
            .iter()
            .chain(self.invalid.iter().flat_map(|r| r.problems.iter()))
            .collect()
    }

    pub fn actions_for(&self, vip: usize) -> Vec<&Action> {
        self.actions.iter().filter(|a| a.vip == vip).collect()
    }

    pub fn invalid_for(&self, vip: usize) -> Vec<&InvalidRow> {
        self.invalid.iter().filter(|r| r.vip == Some(vip)).collect()
    }
}

/// Checks every row (design.md §4); no network. Rows are checked one by one, then across rows for
/// addresses, routes and allocations claimed by two VHIDs.
pub fn validate(cfg: &PfConfig) -> Validated {
    let mut out = Validated {
        settings_problems: cfg.settings_problems.clone(),
        ..Validated::default()
    };
    let mut checked: Vec<(Option<Action>, InvalidRow)> = Vec::new();
    for row in &cfg.rows {
        let section = Section::Tab(row.tab);
        let mut problems = Vec::new();
        let mut problem =
            |field: &'static str, msg: String| problems.push(Problem::new(section, row.number, field, msg));
        for field in row.tab.fields() {
            let value = row.get(field);
            if value.chars().count() > MAX_FIELD_CHARS {
                problem(field, format!("{} characters is too long", value.chars().count()));
            }
        }
        let vhid_text = row.get("vhid");
        let vip = if vhid_text.is_empty() {
            problem("vhid", "missing".into());
            None
        } else if vhid_text.chars().count() > MAX_FIELD_CHARS {
            None
        } else {
            match vhid::resolve(vhid_text, cfg) {
                Ok(i) => Some(i),
                Err(e) => {
                    problem("vhid", e);
                    None
                }
            }
        };
        let interface = row.get("interface").to_ascii_lowercase();
        if interface.is_empty() {
            problem("interface", "missing".into());
        } else if cfg.interface(&interface).is_none() {
            let known: Vec<&str> = cfg.interfaces.iter().map(|i| i.key.as_str()).collect();
            problem(
                "interface",
                format!(
                    "\"{}\" is not an interface in config.xml (known: {})",
                    row.get("interface"),
                    list_or_none(&known)
                ),
            );
        }
        let mut address = |field: &'static str| -> Option<Ipv4Addr> {
            let text = row.get(field);
            if text.is_empty() {
                problem(field, "missing".into());
                return None;
            }
            parse_ipv4(text).map_err(|e| problem(field, e)).ok()
        };
        let kind = match row.tab {
            Tab::Ips => address("ipaddr").map(|addr| ActionKind::Ip {
                interface: interface.clone(),
                addr,
            }),
            Tab::Eips => {
                let private_ip = address("privateip");
                let allocation = check_id(row.get("allocationid"), "eipalloc-", "an Elastic IP allocation id")
                    .map_err(|e| problem("allocationid", e))
                    .ok();
                match (allocation, private_ip) {
                    (Some(allocation), Some(private_ip)) => Some(ActionKind::Eip {
                        allocation,
                        interface: interface.clone(),
                        private_ip,
                    }),
                    _ => None,
                }
            }
            Tab::Routes => {
                let table = check_id(row.get("routetable"), "rtb-", "a route table id")
                    .map_err(|e| problem("routetable", e))
                    .ok();
                let cidr_text = row.get("cidr");
                let cidr = if cidr_text.is_empty() {
                    problem("cidr", "missing".into());
                    None
                } else {
                    Cidr::parse(cidr_text).map_err(|e| problem("cidr", e)).ok()
                };
                match (table, cidr) {
                    (Some(table), Some(cidr)) => Some(ActionKind::Route {
                        table,
                        cidr,
                        interface: interface.clone(),
                    }),
                    _ => None,
                }
            }
        };
        let vhid = vip
            .map(|i| cfg.vips[i].canonical())
            .unwrap_or_else(|| vhid_text.to_string());
        let invalid = InvalidRow {
            tab: row.tab,
            row: row.number,
            vhid: vhid.clone(),
            vip,
            kind: match row.tab {
                Tab::Ips => "ip",
                Tab::Routes => "route",
                Tab::Eips => "eip",
            },
            problems,
        };
        let action = match (vip, kind) {
            (Some(vip), Some(kind)) if invalid.problems.is_empty() => Some(Action {
                tab: row.tab,
                row: row.number,
                vip,
                vhid,
                kind,
            }),
            _ => None,
        };
        checked.push((action, invalid));
    }

    // Cross-row conflicts: one thing claimed by two different VHIDs makes every such row invalid,
    // because either VHID's failover would take it from the other.
    let claims: Vec<Option<(String, &'static str)>> = checked
        .iter()
        .map(|(a, _)| {
            a.as_ref().map(|a| match &a.kind {
                ActionKind::Ip { addr, .. } => (format!("address {addr}"), "ipaddr"),
                ActionKind::Route { table, cidr, .. } => (format!("route {cidr} in {table}"), "cidr"),
                ActionKind::Eip { allocation, .. } => (format!("allocation {allocation}"), "allocationid"),
            })
        })
        .collect();
    // Grouped by claim, so thousands of rows stay linear; each row names one other claimant.
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, claim) in claims.iter().enumerate() {
        if let Some((what, _)) = claim {
            groups.entry(what.as_str()).or_default().push(i);
        }
    }
    let mut conflicts: Vec<(usize, Problem)> = Vec::new();
    let action = |i: usize| checked[i].0.as_ref().expect("claims come from actions");
    for rows in groups.values() {
        let first = rows[0];
        let Some(second) = rows.iter().copied().find(|j| action(*j).vhid != action(first).vhid) else {
            continue;
        };
        for &i in rows {
            let (a, (what, field)) = (action(i), claims[i].as_ref().expect("grouped"));
            let b = if a.vhid != action(first).vhid {
                action(first)
            } else {
                action(second)
            };
            let msg = format!(
                "{what} is also claimed by {} ({} row {})",
                b.vhid,
                b.tab.element(),
                b.row
            );
            conflicts.push((i, Problem::new(Section::Tab(a.tab), a.row, field, msg)));
        }
    }
    // An Elastic IP follows its private address when an IP row of another VHID moves that address
    // (AssignPrivateIpAddresses moves the association along, ec2.md §2.1): the other VHID's
    // failover would take this row's EIP, and its own failover would fail "not mapped" for ever.
    let mut moved_by: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (i, (a, _)) in checked.iter().enumerate() {
        if let Some(Action {
            kind: ActionKind::Ip { addr, .. },
            ..
        }) = a
        {
            moved_by.entry(*addr).or_insert(i);
        }
    }
    for (i, (a, _)) in checked.iter().enumerate() {
        let Some(a) = a else { continue };
        let ActionKind::Eip { private_ip, .. } = &a.kind else {
            continue;
        };
        let Some(mover) = moved_by.get(private_ip).map(|j| action(*j)) else {
            continue;
        };
        if mover.vhid != a.vhid {
            let msg = format!(
                "{private_ip} is moved by {} ({} row {}), and an Elastic IP follows its private address: give this row the VHID {}, or another private IP",
                mover.vhid,
                mover.tab.element(),
                mover.row,
                mover.vhid
            );
            conflicts.push((i, Problem::new(Section::Tab(a.tab), a.row, "privateip", msg)));
        }
    }
    conflicts.sort_by_key(|(i, _)| *i);
    for (i, p) in conflicts {
        checked[i].0 = None;
        checked[i].1.problems.push(p);
    }

    for (action, invalid) in checked {
        match action {
            Some(a) => out.actions.push(a),
            None => out.invalid.push(invalid),
        }
    }
    out
}

/// `rtb-` or `eipalloc-` followed by 8 or 17 hex digits, any case; returned in lower case.
pub fn check_id(text: &str, prefix: &str, what: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("missing".into());
    }
    let lower = text.to_ascii_lowercase();
    match lower.strip_prefix(prefix) {
        Some(hex) if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(lower),
        _ => Err(format!(
            "\"{}\" is not {what} ({prefix} followed by 8 or 17 hex digits)",
            shorten(text)
        )),
    }
}

/// An ENI id as EC2 and IMDS give it; checked before use so a broken IMDS answer never reaches a
/// request.
pub fn is_eni_id(text: &str) -> bool {
    check_id(text, "eni-", "").is_ok()
}

/// An instance id: `i-` followed by 8 or 17 hex digits.
pub fn is_instance_id(text: &str) -> bool {
    check_id(text, "i-", "").is_ok()
}

fn check_endpoint(text: &str) -> Result<(), String> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err(format!("\"{}\" is not an http(s):// URL", shorten(text))),
    }
}

/// A region name as AWS spells them (`us-east-1`, `us-gov-west-1`).
pub fn check_region(text: &str) -> Result<(), String> {
    let ok = text.len() <= 32
        && text.split('-').count() >= 3
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not an AWS region name (like us-east-1)",
            shorten(text)
        ))
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Keeps error lines one line and readable whatever an operator pasted.
pub fn shorten(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if clean.chars().count() > 64 {
        format!("{}…", clean.chars().take(64).collect::<String>())
    } else {
        clean
    }
}

/// pfSense's list tags: the only elements that may repeat under one parent.
const LIST_TAGS: &[&str] = &[
    "acls",
    "alias",
    "aliasurl",
    "allowedip",
    "allowedhostname",
    "authserver",
    "bridged",
    "ca",
    "cacert",
    "cert",
    "checkipservice",
    "child",
    "columnitem",
    "config",
    "crl",
    "dhcpdv6range",
    "dhcpdv6staticmap",
    "disk",
    "dnsserver",
    "dnsupdate",
    "domainoverrides",
    "dyndns",
    "earlyshellcmd",
    "element",
    "encryption-algorithm-option",
    "field",
    "fieldname",
    "hash-algorithm-option",
    "gateway_item",
    "gateway_group",
    "gif",
    "gre",
    "group",
    "hosts",
    "item",
    "key",
    "lagg",
    "lbaction",
    "lbpool",
    "l7rules",
    "lbprotocol",
    "member",
    "menu",
    "mobilekey",
    "monitor_type",
    "mount",
    "npt",
    "ntpd",
    "onetoone",
    "openvpn-server",
    "openvpn-client",
    "openvpn-csc",
    "option",
    "package",
    "passthrumac",
    "phase1",
    "phase2",
    "ppp",
    "pppoe",
    "priv",
    "proxyarpnet",
    "pool",
    "qinqentry",
    "queue",
    "pages",
    "pipe",
    "radnsserver",
    "roll",
    "route",
    "row",
    "rrddatafile",
    "rule",
    "schedule",
    "service",
    "servernat",
    "servers",
    "serversdisabled",
    "shellcmd",
    "staticmap",
    "subqueue",
    "switch",
    "swport",
    "timerange",
    "tunnel",
    "user",
    "vip",
    "virtual_server",
    "vlan",
    "vlangroup",
    "winsserver",
    "wolentry",
    "widget",
    "xmldatafile",
];

fn is_list_tag(name: &str) -> bool {
    LIST_TAGS.contains(&name)
}

/// The named children of `node`, refusing a repeat of any of them (pfSense refuses to load such a
/// file: "cannot occur more than once").
fn children_once<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    names: &[&str],
) -> Result<HashMap<String, roxmltree::Node<'a, 'i>>, String> {
    let mut found = HashMap::new();
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name().to_ascii_lowercase();
        if names.contains(&name.as_str()) && found.insert(name.clone(), child).is_some() {
            return Err(format!("<{name}> occurs more than once"));
        }
    }
    Ok(found)
}

fn elements_named<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case(name))
}

/// The text children of a row-like element, by lower-cased name; a repeated non-list element is
/// an error, as in pfSense; nested elements (rowhelper rows) are skipped.
fn leaf_fields(node: roxmltree::Node) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name().to_ascii_lowercase();
        if is_list_tag(&name) {
            continue;
        }
        if out.contains_key(&name) {
            return Err(format!("<{name}> occurs more than once"));
        }
        out.insert(name, element_text(child));
    }
    Ok(out)
}

/// XML-decoded text (roxmltree), trimmed, then entity-decoded again as pfSense's `cData()` does.
fn element_text(node: roxmltree::Node) -> String {
    let raw: String = node
        .children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    decode_entities(raw.trim())
}

/// PHP's `html_entity_decode(…, ENT_QUOTES|ENT_SUBSTITUTE|ENT_XML1)`: the five XML entities and
/// numeric references; anything else stays as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = name.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    n.map(|n| char::from_u32(n).filter(|c| *c != '\0').unwrap_or('\u{FFFD}'))
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
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

    fn with_rows(rows: &str) -> PfConfig {
        let text = SAMPLE.replace(
            &SAMPLE[SAMPLE.find("<awshaips>").unwrap()..SAMPLE.find("</installedpackages>").unwrap()],
            rows,
        );
        PfConfig::parse(Path::new("/conf/config.xml"), &text).unwrap()
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
    fn all_sample_rows_are_valid_and_canonical() {
        let v = validate(&sample());
        assert!(v.problems().is_empty(), "{:?}", v.problems());
        let names: Vec<&str> = v.actions.iter().map(|a| a.vhid.as_str()).collect();
        assert_eq!(names, ["wan@1", "lan@2", "wan@1", "wan@1"]);
        let route = v.actions.iter().find(|a| a.tab == Tab::Routes).unwrap();
        assert!(matches!(&route.kind, ActionKind::Route { table, .. } if table == "rtb-05ed6e7c46531c6c3"));
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
    fn every_problem_names_tab_row_and_field() {
        let cfg = with_rows(
            r#"<awshaips><config><vhid>wan@9</vhid><interface>wan</interface><ipaddr>10.0.1.300</ipaddr></config></awshaips>
            <awsharoutes><config><vhid>wan@1</vhid><routetable>rtb-xyz</routetable><cidr>10.0.1.1/24</cidr><interface>dmz9</interface></config></awsharoutes>
            <awshaeips><config><vhid>wan@1</vhid><allocationid>eipalloc-123</allocationid><interface>wan</interface><privateip></privateip></config></awshaeips>"#,
        );
        let v = validate(&cfg);
        let lines: Vec<String> = v.problems().iter().map(|p| p.to_string()).collect();
        let expect = [
            "awshaips row 1 vhid: ",
            "awshaips row 1 ipaddr: ",
            "awsharoutes row 1 interface: ",
            "awsharoutes row 1 routetable: ",
            "awsharoutes row 1 cidr: ",
            "awshaeips row 1 privateip: missing",
            "awshaeips row 1 allocationid: ",
        ];
        for e in expect {
            assert!(
                lines.iter().any(|l| l.starts_with(e)),
                "no line starts with {e:?}: {lines:#?}"
            );
        }
        assert!(lines.iter().any(|l| l.contains("did you mean 10.0.1.0/24")));
        assert!(
            lines.iter().any(|l| l.contains("wan@1") && l.contains("lan@2")),
            "unknown VHID lists what exists"
        );
        assert!(v.actions.is_empty());
        assert_eq!(v.invalid.len(), 3);
    }

    #[test]
    fn an_address_claimed_by_two_vhids_invalidates_both_rows() {
        let cfg = with_rows(
            r#"<awshaips><config><vhid>wan@1</vhid><interface>wan</interface><ipaddr>10.0.1.10</ipaddr></config>
            <config><vhid>lan@2</vhid><interface>wan</interface><ipaddr>10.0.1.10</ipaddr></config>
            <config><vhid>wan@1</vhid><interface>wan</interface><ipaddr>10.0.1.11</ipaddr></config></awshaips>
            <awsharoutes><config><vhid>wan@1</vhid><routetable>rtb-0123abcd</routetable><cidr>0.0.0.0/0</cidr><interface>lan</interface></config>
            <config><vhid>lan@2</vhid><routetable>rtb-0123ABCD</routetable><cidr>0.0.0.0/0</cidr><interface>lan</interface></config></awsharoutes>"#,
        );
        let v = validate(&cfg);
        assert_eq!(v.actions.len(), 1, "only the unclaimed address survives");
        let lines: Vec<String> = v.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            lines.contains(
                &"awshaips row 1 ipaddr: address 10.0.1.10 is also claimed by lan@2 (awshaips row 2)".to_string()
            ),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| {
            l.starts_with("awsharoutes row 2 cidr: route 0.0.0.0/0 in rtb-0123abcd is also claimed by wan@1")
        }));
    }

    #[test]
    fn an_elastic_ip_on_an_address_another_vhid_moves_is_invalid() {
        let cfg = with_rows(
            "<awshaips><config><vhid>lan@2</vhid><interface>wan</interface><ipaddr>10.0.1.10</ipaddr></config></awshaips>\
             <awshaeips><config><vhid>wan@1</vhid><allocationid>eipalloc-0a1b2c3d</allocationid><interface>wan</interface><privateip>10.0.1.10</privateip></config></awshaeips>",
        );
        let v = validate(&cfg);
        let problems: Vec<String> = v.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("awshaeips row 1 privateip: 10.0.1.10 is moved by lan@2 (awshaips row 1)"),
            "{problems:?}"
        );
        assert_eq!(v.actions.len(), 1, "the IP row itself stays valid");
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

    #[test]
    fn decodes_entities_after_xml_like_php() {
        assert_eq!(decode_entities("a &amp;amp; b"), "a &amp; b");
        assert_eq!(decode_entities("&lt;x&gt; &#65;&#x42; &quot;&apos;"), "<x> AB \"'");
        assert_eq!(decode_entities("AT&T & co &nbsp;"), "AT&T & co &nbsp;");
        assert_eq!(decode_entities("&#0;"), "\u{FFFD}");
    }

    #[test]
    fn ids_any_case_used_lower() {
        assert_eq!(check_id("RTB-0123ABCD", "rtb-", "x").unwrap(), "rtb-0123abcd");
        assert!(check_id("rtb-0123abcde", "rtb-", "x").is_err());
        assert!(check_id("eipalloc-0a1b2c3d4e5f6789g", "eipalloc-", "x").is_err());
        assert!(check_id("eipalloc-0a1b2c3d4e5f67890", "eipalloc-", "x").is_ok());
        assert!(is_eni_id("eni-0123456789abcdef0") && !is_eni_id("eni-; rm -rf /"));
    }
}
