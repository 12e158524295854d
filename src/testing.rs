//! Fakes of every edge, for the unit tests of the core and the commands: an EC2 that keeps a small
//! world (ENIs and their addresses, route tables, Elastic IPs, tags) and changes it as EC2 would,
//! an IMDS that reads the same world, a host whose CARP states a test sets, and a clock a test
//! moves. The integration tests drive the real binary against moto instead.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::aws::ec2::{Address, ApiError, ApiResult, DryRun, Ec2, NetworkInterface, RouteTable, TagMap};
use crate::aws::imds::Imds;
use crate::base::net::{Cidr, Destination};
use crate::base::time::Millis;
use crate::edges::Edges;
use crate::pfsense::ifconfig::{CarpState, CarpStatus, Device, HostFacts};
use crate::report::Timeline;
use crate::settings::Settings;

/// One ENI of the fake world.
#[derive(Clone, Debug)]
pub struct FakeEni {
    pub mac: String,
    pub instance: String,
    pub subnet_id: String,
    pub subnet: Cidr,
    /// The subnet's IPv6 prefix, in a dual-stack subnet.
    pub subnet6: Option<Cidr>,
    /// Private IPv4 and IPv6 addresses.
    pub ips: Vec<IpAddr>,
}

/// What EC2 holds, and what was asked of it.
#[derive(Debug, Default)]
pub struct World {
    pub enis: BTreeMap<String, FakeEni>,
    /// Table → destination → ENI.
    pub tables: BTreeMap<String, BTreeMap<Destination, String>>,
    /// Allocation → (ENI, private IP).
    pub addresses: BTreeMap<String, (Option<String>, Option<Ipv4Addr>)>,
    pub tags: TagMap,
    /// Every call, as `name detail`.
    pub calls: Vec<String>,
    /// The next call of that name fails with that error (one use each).
    pub fail: Vec<(&'static str, ApiError)>,
    /// Calls of these names are denied (UnauthorizedOperation), every time.
    pub denied: Vec<&'static str>,
    /// CreateTags fails whole (TagLimitExceeded) when it names one of these.
    pub refuse_tags: Vec<String>,
}

/// EC2 over a shared `World`; copies (`until`) share it.
#[derive(Clone, Default)]
pub struct FakeEc2 {
    pub world: Rc<RefCell<World>>,
    /// Every call takes this long (on tokio's clock).
    pub delay: Duration,
    /// Marks each call sent and answered, as the real client does.
    pub timeline: Timeline,
}

pub const MUTATING: [&str; 7] = [
    "assign",
    "assign6",
    "unassign6",
    "replace",
    "create",
    "associate",
    "tags",
];

impl FakeEc2 {
    async fn call(&self, name: &'static str, detail: String) -> ApiResult<()> {
        self.world.borrow_mut().calls.push(format!("{name} {detail}"));
        self.timeline.mark(format!("{name} sent"));
        tokio::time::sleep(self.delay).await;
        self.timeline.mark(format!("{name} answered"));
        let mut w = self.world.borrow_mut();
        if w.denied.contains(&name) {
            return Err(ApiError::new("UnauthorizedOperation", format!("not allowed: {name}")));
        }
        match w.fail.iter().position(|(n, _)| *n == name) {
            Some(i) => Err(w.fail.remove(i).1),
            None => Ok(()),
        }
    }

    /// The names of the calls made, in order.
    pub fn names(&self) -> Vec<String> {
        self.world
            .borrow()
            .calls
            .iter()
            .map(|c| c.split(' ').next().unwrap_or("").to_string())
            .collect()
    }

    /// How many calls changed (or tried to change) something.
    pub fn mutations(&self) -> usize {
        self.names().iter().filter(|n| MUTATING.contains(&n.as_str())).count()
    }

    pub fn fail_next(&self, name: &'static str, error: ApiError) {
        self.world.borrow_mut().fail.push((name, error));
    }
}

impl Ec2 for FakeEc2 {
    async fn assign_private_ips(&self, eni: &str, ips: &[Ipv4Addr]) -> ApiResult<()> {
        self.call("assign", format!("{eni} {ips:?}")).await?;
        let mut w = self.world.borrow_mut();
        if !w.enis.contains_key(eni) {
            return Err(ApiError::new("InvalidNetworkInterfaceID.NotFound", eni));
        }
        let ips: Vec<IpAddr> = ips.iter().map(|i| IpAddr::V4(*i)).collect();
        for e in w.enis.values_mut() {
            e.ips.retain(|ip| !ips.contains(ip));
        }
        w.enis.get_mut(eni).expect("checked").ips.extend(ips);
        Ok(())
    }

    async fn assign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()> {
        self.call("assign6", format!("{eni} {addrs:?}")).await?;
        let mut w = self.world.borrow_mut();
        if !w.enis.contains_key(eni) {
            return Err(ApiError::new("InvalidNetworkInterfaceID.NotFound", eni));
        }
        let wanted: Vec<IpAddr> = addrs.iter().map(|a| IpAddr::V6(*a)).collect();
        // EC2: no reassignment for IPv6; the call fails whole.
        if let Some(a) = wanted
            .iter()
            .find(|a| w.enis.iter().any(|(id, e)| id != eni && e.ips.contains(a)))
        {
            return Err(ApiError::new(
                "InvalidIPAddress.InUse",
                format!("Address {a} is in use."),
            ));
        }
        let e = w.enis.get_mut(eni).expect("checked");
        for a in wanted {
            if !e.ips.contains(&a) {
                e.ips.push(a);
            }
        }
        Ok(())
    }

    async fn unassign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()> {
        self.call("unassign6", format!("{eni} {addrs:?}")).await?;
        let mut w = self.world.borrow_mut();
        let e = w
            .enis
            .get_mut(eni)
            .ok_or_else(|| ApiError::new("InvalidNetworkInterfaceID.NotFound", eni))?;
        let gone: Vec<IpAddr> = addrs.iter().map(|a| IpAddr::V6(*a)).collect();
        if let Some(a) = gone.iter().find(|a| !e.ips.contains(a)) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("{a} is not assigned to {eni}"),
            ));
        }
        e.ips.retain(|ip| !gone.contains(ip));
        Ok(())
    }

    async fn replace_route(&self, table: &str, cidr: &Destination, eni: &str) -> ApiResult<()> {
        self.call("replace", format!("{table} {cidr} {eni}")).await?;
        let mut w = self.world.borrow_mut();
        let routes = w
            .tables
            .get_mut(table)
            .ok_or_else(|| ApiError::new("InvalidRouteTableID.NotFound", table))?;
        match routes.get_mut(cidr) {
            Some(target) => {
                *target = eni.to_string();
                Ok(())
            }
            None => Err(ApiError::new(
                "InvalidParameterValue",
                format!("There is no route defined for '{cidr}' in the route table. Use CreateRoute instead."),
            )),
        }
    }

    async fn create_route(&self, table: &str, cidr: &Destination, eni: &str) -> ApiResult<()> {
        self.call("create", format!("{table} {cidr} {eni}")).await?;
        let mut w = self.world.borrow_mut();
        let routes = w
            .tables
            .get_mut(table)
            .ok_or_else(|| ApiError::new("InvalidRouteTableID.NotFound", table))?;
        if routes.contains_key(cidr) {
            return Err(ApiError::new("RouteAlreadyExists", format!("{cidr} exists")));
        }
        routes.insert(cidr.clone(), eni.to_string());
        Ok(())
    }

    async fn associate_address(&self, allocation: &str, eni: &str, ip: Ipv4Addr) -> ApiResult<()> {
        self.call("associate", format!("{allocation} {eni} {ip}")).await?;
        let mut w = self.world.borrow_mut();
        // Only a world that knows the ENI judges whether the address is on it.
        if let Some(e) = w.enis.get(eni)
            && !e.ips.contains(&IpAddr::V4(ip))
        {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("{ip} is not mapped to the interface {eni}"),
            ));
        }
        w.addresses
            .insert(allocation.to_string(), (Some(eni.to_string()), Some(ip)));
        Ok(())
    }

    async fn create_tags(&self, resources: &[String], tags: &[(&'static str, String)]) -> ApiResult<()> {
        self.call("tags", resources.join(",")).await?;
        let mut w = self.world.borrow_mut();
        if let Some(r) = resources.iter().find(|r| w.refuse_tags.contains(r)) {
            return Err(ApiError::new("TagLimitExceeded", format!("too many tags on {r}")));
        }
        for r in resources {
            let entry = w.tags.entry(r.clone()).or_default();
            for (k, v) in tags {
                entry.insert(k.to_string(), v.clone());
            }
        }
        Ok(())
    }

    async fn describe_route_tables(&self, tables: &[String]) -> ApiResult<Vec<RouteTable>> {
        self.call("describe_route_tables", tables.join(",")).await?;
        let w = self.world.borrow();
        Ok(tables
            .iter()
            .filter_map(|t| {
                let routes = w.tables.get(t)?;
                Some(RouteTable {
                    id: t.clone(),
                    routes: routes.iter().map(|(c, e)| (c.clone(), Some(e.clone()))).collect(),
                })
            })
            .collect())
    }

    async fn describe_tags(&self, resources: &[String]) -> ApiResult<TagMap> {
        self.call("describe_tags", resources.join(",")).await?;
        let w = self.world.borrow();
        Ok(resources
            .iter()
            .filter_map(|r| Some((r.clone(), w.tags.get(r)?.clone())))
            .collect())
    }

    async fn describe_addresses(&self, allocations: &[String]) -> ApiResult<Vec<Address>> {
        self.call("describe_addresses", allocations.join(",")).await?;
        let w = self.world.borrow();
        Ok(allocations
            .iter()
            .filter_map(|a| {
                let (eni, ip) = w.addresses.get(a)?;
                Some(Address {
                    allocation: a.clone(),
                    eni: eni.clone(),
                    private_ip: *ip,
                })
            })
            .collect())
    }

    async fn describe_interfaces_with_ips(
        &self,
        ips: &[IpAddr],
        subnets: &[String],
    ) -> ApiResult<Vec<NetworkInterface>> {
        self.call("describe_interfaces", format!("{ips:?}")).await?;
        let w = self.world.borrow();
        Ok(w.enis
            .iter()
            .filter(|(_, e)| subnets.is_empty() || subnets.contains(&e.subnet_id))
            .filter(|(_, e)| e.ips.iter().any(|ip| ips.contains(ip)))
            .map(|(id, e)| NetworkInterface {
                id: id.clone(),
                instance: Some(e.instance.clone()),
                addresses: e.ips.clone(),
                tags: w.tags.get(id).cloned().unwrap_or_default(),
            })
            .collect())
    }

    async fn describe_tagged_enis(&self, vhids: &[String]) -> ApiResult<TagMap> {
        self.call("describe_tagged_enis", vhids.join(",")).await?;
        let w = self.world.borrow();
        Ok(w.tags
            .iter()
            .filter(|(r, t)| r.starts_with("eni-") && t.get(crate::base::tags::VHID).is_some_and(|v| vhids.contains(v)))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect())
    }

    async fn dry_run(&self, call: &DryRun<'_>) -> ApiResult<()> {
        self.call("dry_run", call.action().to_string()).await
    }

    async fn credentials(&self) -> anyhow::Result<(bool, Option<SystemTime>)> {
        Ok((true, None))
    }

    fn until(&self, _deadline: Instant) -> FakeEc2 {
        self.clone()
    }
}

/// IMDS answering from the world, as the instance `instance` sees it.
pub struct FakeImds {
    pub world: Rc<RefCell<World>>,
    pub instance: String,
    pub region: String,
}

impl Imds for FakeImds {
    async fn get(&self, path: &str) -> anyhow::Result<Option<String>> {
        let w = self.world.borrow();
        Ok(match path {
            "meta-data/instance-id" => Some(self.instance.clone()),
            "meta-data/placement/region" => Some(self.region.clone()),
            _ => {
                let Some(rest) = path.strip_prefix("meta-data/network/interfaces/macs/") else {
                    return Ok(None);
                };
                let Some((mac, leaf)) = rest.split_once('/') else {
                    return Ok(None);
                };
                let Some((id, eni)) = w.enis.iter().find(|(_, e)| e.mac == mac && e.instance == self.instance) else {
                    return Ok(None);
                };
                match leaf {
                    "interface-id" => Some(id.clone()),
                    "subnet-id" => Some(eni.subnet_id.clone()),
                    "subnet-ipv4-cidr-block" => Some(eni.subnet.to_string()),
                    "local-ipv4s" => Some(lines(eni.ips.iter().filter(|i| i.is_ipv4()))),
                    "ipv6s" => Some(lines(eni.ips.iter().filter(|i| i.is_ipv6()))).filter(|t| !t.is_empty()),
                    "subnet-ipv6-cidr-blocks" => eni.subnet6.map(|c| c.to_string()),
                    _ => None,
                }
            }
        })
    }
}

/// One address a line, as IMDS lists them.
fn lines<'a>(ips: impl Iterator<Item = &'a IpAddr>) -> String {
    ips.map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
}

/// The edges of one pretend node.
pub struct FakeEdges {
    pub ec2: FakeEc2,
    pub instance: String,
    /// What `ifconfig -a` shows, one entry per read; the last stays.
    pub facts: RefCell<VecDeque<HostFacts>>,
    pub now: Cell<Millis>,
}

impl FakeEdges {
    pub fn new(ec2: &FakeEc2, instance: &str, facts: HostFacts, now: Millis) -> FakeEdges {
        FakeEdges {
            ec2: ec2.clone(),
            instance: instance.to_string(),
            facts: RefCell::new(VecDeque::from([facts])),
            now: Cell::new(now),
        }
    }

    /// The next read of ifconfig (after the one queued now) shows `facts`.
    pub fn then(&self, facts: HostFacts) {
        self.facts.borrow_mut().push_back(facts);
    }
}

impl Edges for FakeEdges {
    type Imds = FakeImds;
    type Ec2 = FakeEc2;

    async fn host_facts(&self) -> anyhow::Result<HostFacts> {
        let mut q = self.facts.borrow_mut();
        if q.len() > 1 {
            Ok(q.pop_front().expect("len > 1"))
        } else {
            Ok(q.front().cloned().unwrap_or_default())
        }
    }

    fn imds(&self, _deadline: Instant) -> FakeImds {
        FakeImds {
            world: self.ec2.world.clone(),
            instance: self.instance.clone(),
            region: "eu-west-1".into(),
        }
    }

    async fn ec2(
        &self,
        _region: &str,
        _endpoint: Option<&str>,
        _deadline: Instant,
        _attempts: u32,
        timeline: &Timeline,
    ) -> FakeEc2 {
        FakeEc2 {
            timeline: timeline.clone(),
            ..self.ec2.clone()
        }
    }

    async fn reach(&self, url: &str) -> Result<String, String> {
        Ok(format!("{url} accepts connections (0 ms)"))
    }

    fn now_millis(&self) -> Millis {
        self.now.get()
    }
}

/// A CARP VIP as ifconfig shows it: `(vhid, state, advskew)`, advbase 1.
pub type Vip = (u8, CarpState, u32);

/// ifconfig's view: `(device, mac, VIPs)`.
pub fn host(devices: &[(&str, &str, &[Vip])]) -> HostFacts {
    HostFacts {
        devices: devices
            .iter()
            .map(|(dev, mac, carp)| {
                (
                    dev.to_string(),
                    Device {
                        mac: Some(mac.to_string()),
                        carp: carp
                            .iter()
                            .map(|(vhid, state, advskew)| CarpStatus {
                                vhid: *vhid,
                                state: *state,
                                advbase: 1,
                                advskew: *advskew,
                            })
                            .collect(),
                    },
                )
            })
            .collect(),
    }
}

/// A directory of its own under the system's temporary directory, for config.xml and the run
/// directory of one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("awsha-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temporary directory");
    d
}

/// Settings for a run against `config` with its run directory in `dir`, no grace time.
pub fn settings(dir: &std::path::Path, config: &str) -> Settings {
    let path = dir.join("config.xml");
    std::fs::write(&path, config).expect("config.xml");
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    Settings {
        config_path: path,
        ifconfig: "/nonexistent/ifconfig".into(),
        run_dir,
        deadline: Duration::from_secs(10),
        grace: Duration::ZERO,
        json: true,
        region: None,
        endpoint: None,
    }
}

/// The same tags a failover of `vhid` by `instance` with `advskew` at `at` writes.
pub fn stamp_tags(instance: &str, advskew: u32, vhid: &str, at: Millis) -> HashMap<String, String> {
    crate::base::tags::Stamp {
        modified: at,
        advbase: 1,
        advskew,
        instance: instance.into(),
        vhid: vhid.into(),
    }
    .to_tags()
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// This node (A) and its peer (B) in the sample config's world (`pfsense::model::tests::SAMPLE`).
pub const A: &str = "i-0aaaaaaaaaaaaaaa1";
pub const B: &str = "i-0bbbbbbbbbbbbbbb2";
pub const A_WAN: &str = "eni-0aaaaaaaaaaaaaaa1";
pub const A_LAN: &str = "eni-0aaaaaaaaaaaaaaa2";
pub const B_WAN: &str = "eni-0bbbbbbbbbbbbbbb1";
pub const B_LAN: &str = "eni-0bbbbbbbbbbbbbbb2";
pub const TABLE: &str = "rtb-05ed6e7c46531c6c3";
pub const ALLOCATION: &str = "eipalloc-0a1b2c3d4e5f67890";
pub const WAN_VIP: &str = "10.0.1.10";
/// The wan subnet's IPv6 prefix, and an IPv6 VIP in it (held by B at first).
pub const WAN6: &str = "2600:1f18:abcd:ef00::/64";
pub const WAN_VIP6: &str = "2600:1f18:abcd:ef00::10";
pub const LAN_VIP: &str = "10.0.2.10";
/// A moment in 2026, for clocks and tags.
pub const T0: Millis = 1_795_687_200_000;

/// The sample config's world with everything at B (B was MASTER): wan@1's address and Elastic
/// IP on B's wan ENI, its default route at B's lan ENI, lan@2's address on B's lan ENI.
pub fn pair_world() -> FakeEc2 {
    let ec2 = FakeEc2::default();
    {
        let mut w = ec2.world.borrow_mut();
        let wan = Cidr::parse("10.0.1.0/24").expect("cidr");
        let lan = Cidr::parse("10.0.2.0/24").expect("cidr");
        let wan6 = Cidr::parse(WAN6).expect("cidr");
        let eni = |mac: &str, instance: &str, lan_side: bool, ips: &[&str]| FakeEni {
            mac: mac.into(),
            instance: instance.into(),
            subnet_id: if lan_side { "subnet-0000000b" } else { "subnet-0000000a" }.into(),
            subnet: if lan_side { lan } else { wan },
            subnet6: (!lan_side).then_some(wan6),
            ips: ips.iter().map(|i| i.parse().expect("ip")).collect(),
        };
        w.enis.insert(
            A_WAN.into(),
            eni("0a:00:00:00:00:01", A, false, &["10.0.1.11", "2600:1f18:abcd:ef00::11"]),
        );
        w.enis
            .insert(A_LAN.into(), eni("0a:00:00:00:00:02", A, true, &["10.0.2.11"]));
        w.enis.insert(
            B_WAN.into(),
            eni(
                "0b:00:00:00:00:01",
                B,
                false,
                &["10.0.1.12", WAN_VIP, "2600:1f18:abcd:ef00::12", WAN_VIP6],
            ),
        );
        w.enis
            .insert(B_LAN.into(), eni("0b:00:00:00:00:02", B, true, &["10.0.2.12", LAN_VIP]));
        w.tables.insert(
            TABLE.into(),
            [
                (Destination::parse("0.0.0.0/0").expect("cidr"), B_LAN.to_string()),
                (Destination::parse("::/0").expect("cidr"), B_LAN.to_string()),
            ]
            .into(),
        );
        w.addresses.insert(
            ALLOCATION.into(),
            (Some(B_WAN.into()), Some(WAN_VIP.parse().expect("ip"))),
        );
    }
    ec2
}

/// Node A's `ifconfig -a`: wan@1 on ena0 and lan@2 on ena1 in `state`, with `advskew`.
pub fn a_host(state: CarpState, advskew: u32) -> HostFacts {
    host(&[
        ("ena0", "0a:00:00:00:00:01", &[(1, state, advskew)]),
        ("ena1", "0a:00:00:00:00:02", &[(2, state, advskew)]),
    ])
}

/// Where wan@1's three resources are: (holder of the address, route target, EIP's ENI).
pub fn wan1_where(ec2: &FakeEc2) -> (Vec<String>, String, Option<String>) {
    let w = ec2.world.borrow();
    let ip: IpAddr = WAN_VIP.parse().expect("ip");
    let holders = w
        .enis
        .iter()
        .filter(|(_, e)| e.ips.contains(&ip))
        .map(|(id, _)| id.clone())
        .collect();
    let route = w.tables[TABLE][&Destination::parse("0.0.0.0/0").expect("cidr")].clone();
    (holders, route, w.addresses[ALLOCATION].0.clone())
}

/// The sample config plus a dual-stack VHID: `wan@3`, an IPv6 CARP VIP on wan, whose rows move its
/// address (written in a loose form) and the table's `::/0`.
pub fn dual_stack_config() -> String {
    crate::pfsense::model::tests::SAMPLE
        .replace(
            "</virtualip>",
            "<vip><mode>carp</mode><interface>wan</interface><vhid>3</vhid><advskew>0</advskew><advbase>1</advbase>\
             <uniqid>65de65ceb0450</uniqid><descr>WAN v6</descr><type>single</type><subnet_bits>64</subnet_bits>\
             <subnet>2600:1f18:abcd:ef00::10</subnet></vip></virtualip>",
        )
        .replace(
            "</awshaips>",
            "<config><vhid>wan@3</vhid><interface>wan</interface><ipaddr>2600:1F18:ABCD:EF00:0:0:0:10</ipaddr></config></awshaips>",
        )
        .replace(
            "</awsharoutes>",
            "<config><vhid>wan@3</vhid><routetable>rtb-05ed6e7c46531c6c3</routetable><cidr>::/0</cidr><interface>lan</interface></config></awsharoutes>",
        )
}

/// Node A's `ifconfig -a` with wan@3 too.
pub fn a_host_dual(state: CarpState, advskew: u32) -> HostFacts {
    host(&[
        ("ena0", "0a:00:00:00:00:01", &[(1, state, advskew), (3, state, advskew)]),
        ("ena1", "0a:00:00:00:00:02", &[(2, state, advskew)]),
    ])
}

/// The ENIs holding `addr` now.
pub fn holders(ec2: &FakeEc2, addr: &str) -> Vec<String> {
    let ip: IpAddr = addr.parse().expect("ip");
    let w = ec2.world.borrow();
    w.enis
        .iter()
        .filter(|(_, e)| e.ips.contains(&ip))
        .map(|(id, _)| id.clone())
        .collect()
}
