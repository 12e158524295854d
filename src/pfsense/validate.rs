//! Checking every awsha row (docs/contracts.md §6): each field on its own, then across rows for anything
//! claimed by two VHIDs. The result is the actions a command may plan, and every problem as
//! `<tab> row <n> <field>: <what is wrong>`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::base::ids::check_id;
use crate::base::net::{Destination, parse_ip, parse_ipv4};
use crate::pfsense::model::{PfConfig, Problem, Section, Tab};
use crate::pfsense::vhid;

/// Longest value a row field may hold; far above any id, address or URL.
const MAX_FIELD_CHARS: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Ip {
        interface: String,
        /// IPv4 or IPv6 (moved by AssignPrivateIpAddresses or Unassign/AssignIpv6Addresses).
        addr: IpAddr,
    },
    Route {
        table: String,
        dest: Destination,
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

/// Checks every row (docs/contracts.md §6.1); no network. Rows are checked one by one, then across rows for
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
        let mut required = |field: &'static str| -> Option<&str> {
            let text = row.get(field);
            if text.is_empty() {
                problem(field, "missing".into());
                return None;
            }
            Some(text)
        };
        let ipaddr = (row.tab == Tab::Ips).then(|| required("ipaddr")).flatten();
        let privateip = (row.tab == Tab::Eips).then(|| required("privateip")).flatten();
        let cidr = (row.tab == Tab::Routes).then(|| required("cidr")).flatten();
        let kind = match row.tab {
            Tab::Ips => ipaddr
                .and_then(|t| parse_ip(t).map_err(|e| problem("ipaddr", e)).ok())
                .map(|addr| ActionKind::Ip {
                    interface: interface.clone(),
                    addr,
                }),
            Tab::Eips => {
                let private_ip = privateip.and_then(|t| {
                    if parse_ip(t).is_ok_and(|a| a.is_ipv6()) {
                        problem(
                            "privateip",
                            format!("\"{t}\" is an IPv6 address; an Elastic IP is IPv4 and so is its private IP"),
                        );
                        return None;
                    }
                    parse_ipv4(t).map_err(|e| problem("privateip", e)).ok()
                });
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
                let dest = cidr.and_then(|t| Destination::parse(t).map_err(|e| problem("cidr", e)).ok());
                match (table, dest) {
                    (Some(table), Some(dest)) => Some(ActionKind::Route {
                        table,
                        dest,
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
                ActionKind::Route { table, dest, .. } => (format!("route {dest} in {table}"), "cidr"),
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
    // (AssignPrivateIpAddresses moves the association along, docs/references.md §1.1): the other VHID's
    // failover would take this row's EIP, and its own failover would fail "not mapped" for ever.
    let mut moved_by: HashMap<IpAddr, usize> = HashMap::new();
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
        let Some(mover) = moved_by.get(&IpAddr::V4(*private_ip)).map(|j| action(*j)) else {
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

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfsense::model::tests::{SAMPLE, sample};
    use std::path::Path;

    fn with_rows(rows: &str) -> PfConfig {
        let text = SAMPLE.replace(
            &SAMPLE[SAMPLE.find("<awshaips>").unwrap()..SAMPLE.find("</installedpackages>").unwrap()],
            rows,
        );
        PfConfig::parse(Path::new("/conf/config.xml"), &text).unwrap()
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
    fn dual_stack_rows_are_checked_in_any_form() {
        let cfg = with_rows(
            "<awshaips><config><vhid>wan@1</vhid><interface>wan</interface><ipaddr>2600:1F18::10</ipaddr></config>\
             <config><vhid>lan@2</vhid><interface>lan</interface><ipaddr>2600:1f18:0:0::10</ipaddr></config></awshaips>\
             <awsharoutes><config><vhid>wan@1</vhid><routetable>rtb-0123abcd</routetable><cidr>2600:1f18::/129</cidr><interface>lan</interface></config>\
             <config><vhid>wan@1</vhid><routetable>rtb-0123abcd</routetable><cidr>2600:1f18:1::/32</cidr><interface>lan</interface></config>\
             <config><vhid>wan@1</vhid><routetable>rtb-0123abcd</routetable><cidr>pl-0123abc</cidr><interface>lan</interface></config>\
             <config><vhid>wan@1</vhid><routetable>rtb-0123abcd</routetable><cidr>PL-0123ABCD</cidr><interface>lan</interface></config></awsharoutes>\
             <awshaeips><config><vhid>wan@1</vhid><allocationid>eipalloc-0a1b2c3d</allocationid><interface>wan</interface><privateip>2600:1f18::10</privateip></config></awshaeips>",
        );
        let v = validate(&cfg);
        let problems: Vec<String> = v.problems().iter().map(|p| p.to_string()).collect();
        let has = |prefix: &str, needle: &str| problems.iter().any(|p| p.starts_with(prefix) && p.contains(needle));
        assert!(has("awshaips row 1 ipaddr", "also claimed by lan@2"), "{problems:?}");
        assert!(has("awshaips row 2 ipaddr", "also claimed by wan@1"), "{problems:?}");
        assert!(has("awsharoutes row 1 cidr", "0 to 128"), "{problems:?}");
        assert!(
            has("awsharoutes row 2 cidr", "did you mean 2600:1f18::/32"),
            "{problems:?}"
        );
        assert!(has("awsharoutes row 3 cidr", "8 or 17 hex digits"), "{problems:?}");
        assert!(has("awshaeips row 1 privateip", "IPv4"), "{problems:?}");
        assert_eq!(problems.len(), 6, "{problems:?}");
        // The prefix-list row is valid, in lower case.
        assert!(
            v.actions
                .iter()
                .any(|a| matches!(&a.kind, ActionKind::Route { dest, .. } if dest.to_string() == "pl-0123abcd"))
        );
    }
}
