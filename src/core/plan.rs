//! Turning a VHID's actions into EC2 calls (docs/contracts.md §8.1), without doing any: one
//! AssignPrivateIpAddresses per ENI, one IPv6 move per ENI, every ReplaceRoute at once, and each
//! AssociateAddress after the assignment of the address it needs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::base::net::Destination;
use crate::pfsense::validate::{Action, ActionKind};
use crate::report::PlanGroup;

/// All addresses of one ENI, moved in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignStep {
    pub eni: String,
    pub ips: Vec<Ipv4Addr>,
    /// Indices of the actions (IP rows) this call serves.
    pub actions: Vec<usize>,
}

/// All IPv6 addresses of one ENI. EC2 has no reassignment for IPv6: an address another ENI holds
/// is unassigned there first (`core::apply::move_ipv6`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Step {
    pub eni: String,
    pub addrs: Vec<Ipv6Addr>,
    /// Indices of the actions (IP rows) this move serves.
    pub actions: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteStep {
    pub action: usize,
    pub table: String,
    pub dest: Destination,
    pub eni: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EipStep {
    pub action: usize,
    pub allocation: String,
    pub eni: String,
    pub ip: Ipv4Addr,
    /// The AssignStep (index) that must be accepted first, when this EIP's private IP is one of
    /// the addresses being moved; `None` for an address already on the ENI (its primary IP).
    pub after: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub assigns: Vec<AssignStep>,
    pub ipv6: Vec<Ipv6Step>,
    pub routes: Vec<RouteStep>,
    pub eips: Vec<EipStep>,
    /// Actions that cannot be planned (their interface has no ENI), with the reason.
    pub unresolved: Vec<(usize, String)>,
}

/// What an action points at, given its ENI: `(resource, target)` as the report shows them.
pub fn describe(action: &Action, eni: Option<&str>) -> (String, String) {
    let eni_or_iface = |iface: &str| eni.map(str::to_string).unwrap_or_else(|| format!("({iface})"));
    match &action.kind {
        ActionKind::Ip { interface, addr } => (eni_or_iface(interface), addr.to_string()),
        ActionKind::Route { table, dest, interface } => {
            (table.clone(), format!("{dest} -> {}", eni_or_iface(interface)))
        }
        ActionKind::Eip {
            allocation,
            interface,
            private_ip,
        } => (allocation.clone(), format!("{} {private_ip}", eni_or_iface(interface))),
    }
}

/// `enis`: the ENI of each interface key, or why there is none.
pub fn plan(actions: &[&Action], enis: &HashMap<String, Result<String, String>>) -> Plan {
    let mut p = Plan::default();
    let eni_of = |a: &Action| -> Result<String, String> {
        enis.get(a.kind.interface())
            .cloned()
            .unwrap_or_else(|| Err(format!("interface {} was not looked up", a.kind.interface())))
    };
    for (i, a) in actions.iter().enumerate() {
        let eni = match eni_of(a) {
            Ok(eni) => eni,
            Err(why) => {
                p.unresolved.push((i, why));
                continue;
            }
        };
        match &a.kind {
            ActionKind::Ip {
                addr: IpAddr::V4(addr), ..
            } => match p.assigns.iter_mut().find(|s| s.eni == eni) {
                Some(step) => {
                    if !step.ips.contains(addr) {
                        step.ips.push(*addr);
                    }
                    step.actions.push(i);
                }
                None => p.assigns.push(AssignStep {
                    eni,
                    ips: vec![*addr],
                    actions: vec![i],
                }),
            },
            ActionKind::Ip {
                addr: IpAddr::V6(addr), ..
            } => match p.ipv6.iter_mut().find(|s| s.eni == eni) {
                Some(step) => {
                    if !step.addrs.contains(addr) {
                        step.addrs.push(*addr);
                    }
                    step.actions.push(i);
                }
                None => p.ipv6.push(Ipv6Step {
                    eni,
                    addrs: vec![*addr],
                    actions: vec![i],
                }),
            },
            ActionKind::Route { table, dest, .. } => p.routes.push(RouteStep {
                action: i,
                table: table.clone(),
                dest: dest.clone(),
                eni,
            }),
            ActionKind::Eip {
                allocation, private_ip, ..
            } => p.eips.push(EipStep {
                action: i,
                allocation: allocation.clone(),
                eni,
                ip: *private_ip,
                after: None,
            }),
        }
    }
    for eip in &mut p.eips {
        eip.after = p
            .assigns
            .iter()
            .position(|s| s.eni == eip.eni && s.ips.contains(&eip.ip));
    }
    p
}

impl Plan {
    /// How many calls of each EC2 action the plan makes (before retries and fallbacks).
    pub fn calls_per_action(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("AssignPrivateIpAddresses", self.assigns.len()),
            ("AssignIpv6Addresses", self.ipv6.len()),
            ("ReplaceRoute", self.routes.len()),
            ("AssociateAddress", self.eips.len()),
        ]
    }

    /// The calls in execution order, grouped: every call of a group runs at the same time.
    pub fn groups(&self) -> Vec<PlanGroup> {
        let mut first: Vec<String> = Vec::new();
        for s in &self.assigns {
            let ips: Vec<String> = s.ips.iter().map(|i| i.to_string()).collect();
            first.push(format!(
                "AssignPrivateIpAddresses NetworkInterfaceId={} PrivateIpAddress=[{}] AllowReassignment=true",
                s.eni,
                ips.join(",")
            ));
        }
        for s in &self.ipv6 {
            let addrs: Vec<String> = s.addrs.iter().map(|a| a.to_string()).collect();
            first.push(format!(
                "AssignIpv6Addresses NetworkInterfaceId={} Ipv6Addresses=[{}], with DescribeNetworkInterfaces for their holder at the same time (if refused: UnassignIpv6Addresses there, then AssignIpv6Addresses again)",
                s.eni,
                addrs.join(",")
            ));
        }
        for r in &self.routes {
            let field = match &r.dest {
                Destination::Cidr(c) if c.is_ipv6() => "DestinationIpv6CidrBlock",
                Destination::Cidr(_) => "DestinationCidrBlock",
                Destination::PrefixList(_) => "DestinationPrefixListId",
            };
            first.push(format!(
                "ReplaceRoute RouteTableId={} {field}={} NetworkInterfaceId={} (CreateRoute if the table lacks it)",
                r.table, r.dest, r.eni
            ));
        }
        let associate = |e: &EipStep| {
            format!(
                "AssociateAddress AllocationId={} NetworkInterfaceId={} PrivateIpAddress={} AllowReassociation=true",
                e.allocation, e.eni, e.ip
            )
        };
        first.extend(self.eips.iter().filter(|e| e.after.is_none()).map(associate));
        let second: Vec<String> = self.eips.iter().filter(|e| e.after.is_some()).map(associate).collect();
        let mut groups = Vec::new();
        if !first.is_empty() {
            groups.push(PlanGroup {
                when: "at once".into(),
                calls: first,
            });
        }
        if !second.is_empty() {
            groups.push(PlanGroup {
                when: "each after its address's assignment was accepted".into(),
                calls: second,
            });
        }
        let resources = self.resources();
        if !resources.is_empty() {
            groups.push(PlanGroup {
                when: "last, on what changed".into(),
                calls: vec![format!(
                    "CreateTags Resources=[{}] Tags=[{}]",
                    resources.join(","),
                    crate::base::tags::ALL_KEYS.join(",")
                )],
            });
        }
        groups
    }

    /// Every resource the plan would change (and tag), in plan order, without repeats.
    pub fn resources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .assigns
            .iter()
            .map(|s| &s.eni)
            .chain(self.ipv6.iter().map(|s| &s.eni))
            .chain(self.routes.iter().map(|r| &r.table))
            .chain(self.eips.iter().map(|e| &e.allocation));
        for r in all {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfsense::model::Tab;
    use crate::pfsense::model::tests::sample;
    use crate::pfsense::validate::validate;

    fn enis() -> HashMap<String, Result<String, String>> {
        HashMap::from([
            ("wan".to_string(), Ok("eni-0aaaaaaaaaaaaaaa1".to_string())),
            ("lan".to_string(), Ok("eni-0bbbbbbbbbbbbbbb2".to_string())),
        ])
    }

    #[test]
    fn one_assign_per_eni_and_eip_waits_for_its_address() {
        let v = validate(&sample());
        let wan: Vec<&Action> = v.actions.iter().filter(|a| a.vhid == "wan@1").collect();
        let p = plan(&wan, &enis());
        assert_eq!(p.assigns.len(), 1);
        assert_eq!(p.assigns[0].eni, "eni-0aaaaaaaaaaaaaaa1");
        assert_eq!(p.routes.len(), 1);
        assert_eq!(
            p.routes[0].eni, "eni-0bbbbbbbbbbbbbbb2",
            "the route points at the lan ENI"
        );
        assert_eq!(p.eips[0].after, Some(0));
        assert!(p.unresolved.is_empty());
        let groups = p.groups();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].calls.len(), 2, "assign and route at once");
        assert!(groups[1].calls[0].starts_with("AssociateAddress AllocationId=eipalloc-0a1b2c3d4e5f67890"));
        assert!(groups[2].calls[0].contains("eni-0aaaaaaaaaaaaaaa1,rtb-05ed6e7c46531c6c3,eipalloc-0a1b2c3d4e5f67890"));
    }

    #[test]
    fn addresses_of_many_rows_share_one_call_and_unknown_enis_are_unresolved() {
        let mk = |row, ip: &str, iface: &str| Action {
            tab: Tab::Ips,
            row,
            vip: 0,
            vhid: "wan@1".into(),
            kind: ActionKind::Ip {
                interface: iface.into(),
                addr: ip.parse().unwrap(),
            },
        };
        let actions = [
            mk(1, "10.0.1.10", "wan"),
            mk(2, "10.0.1.11", "wan"),
            mk(3, "10.0.3.10", "opt1"),
        ];
        let refs: Vec<&Action> = actions.iter().collect();
        let mut e = enis();
        e.insert("opt1".into(), Err("interface opt1 (ena2) is not an ENI".into()));
        let p = plan(&refs, &e);
        assert_eq!(p.assigns.len(), 1);
        assert_eq!(p.assigns[0].ips.len(), 2);
        assert_eq!(p.assigns[0].actions, [0, 1]);
        assert_eq!(p.unresolved, [(2, "interface opt1 (ena2) is not an ENI".to_string())]);
    }

    #[test]
    fn eip_on_an_address_not_being_moved_goes_first() {
        let a = Action {
            tab: Tab::Eips,
            row: 1,
            vip: 0,
            vhid: "wan@1".into(),
            kind: ActionKind::Eip {
                allocation: "eipalloc-0123abcd".into(),
                interface: "wan".into(),
                private_ip: "10.0.1.11".parse().unwrap(),
            },
        };
        let p = plan(&[&a], &enis());
        assert_eq!(p.eips[0].after, None);
        assert_eq!(p.groups()[0].calls.len(), 1);
    }
}
