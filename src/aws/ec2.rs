//! The EC2 calls awsha makes, as a narrow trait, with the types they return and the errors
//! callers branch on. The aws-sdk-ec2 implementation is `aws::sdk`; the unit tests use fakes.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::base::net::Destination;

/// An EC2 failure as the report shows it: `InvalidRouteTableID.NotFound: …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// ReplaceRoute on a destination the table does not have: "… Use CreateRoute instead." today;
    /// `InvalidRoute.NotFound` if AWS fixes that answer (reported to AWS as a defect, docs/references.md §1.3).
    pub fn is_missing_route(&self) -> bool {
        (self.code == "InvalidParameterValue" && self.message.contains("CreateRoute"))
            || self.code == "InvalidRoute.NotFound"
    }

    /// AssociateAddress before the address's asynchronous move to the ENI has landed.
    pub fn is_not_mapped(&self) -> bool {
        self.code == "InvalidParameterValue" && self.message.contains("not mapped")
    }

    /// An answer about EC2 or the network rather than about the request: throttling, 5xx, a
    /// timeout, a lost connection. Sending the same thing again in pieces would not help.
    pub fn is_transient(&self) -> bool {
        let code = self.code.as_str();
        THROTTLING.contains(&code)
            || TRANSIENT.contains(&code)
            || matches!(
                code,
                "Timeout"
                    | "ConnectionError"
                    | "MalformedResponse"
                    | "Unknown"
                    | "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unavailable"
            )
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self.code.as_str(),
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException"
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Tries per EC2 call in all (the first and the retries), unless a command asks for fewer.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    /// Destination (IPv4, IPv6 or prefix list) → the ENI it points at (None: a gateway, NAT,
    /// peering … target). Where a table lists the same destination twice (a VGW-propagated route
    /// beside the static one), the static route: it is the one ReplaceRoute changes and the one
    /// that wins in the VPC.
    pub routes: HashMap<Destination, Option<String>>,
}

/// How a route came to be (`origin` in DescribeRouteTables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOrigin {
    /// CreateRoute, CreateRouteTable (the local route), or not said.
    Static,
    /// EnableVgwRoutePropagation: learnt from a virtual private gateway.
    Propagated,
}

impl RouteOrigin {
    pub fn parse(origin: Option<&str>) -> RouteOrigin {
        match origin {
            Some("EnableVgwRoutePropagation") => RouteOrigin::Propagated,
            _ => RouteOrigin::Static,
        }
    }
}

/// Builds a table's routes from `(destination, target, origin)` in the order EC2 lists them: a
/// static route is never displaced by a propagated one with the same destination.
pub fn route_map(
    routes: impl IntoIterator<Item = (Destination, Option<String>, RouteOrigin)>,
) -> HashMap<Destination, Option<String>> {
    let mut map: HashMap<Destination, (Option<String>, RouteOrigin)> = HashMap::new();
    for (dest, target, origin) in routes {
        match map.get(&dest) {
            Some((_, RouteOrigin::Static)) if origin == RouteOrigin::Propagated => {}
            _ => {
                map.insert(dest, (target, origin));
            }
        }
    }
    map.into_iter().map(|(dest, (target, _))| (dest, target)).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub allocation: String,
    pub eni: Option<String>,
    pub private_ip: Option<Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInterface {
    pub id: String,
    pub instance: Option<String>,
    /// Its private IPv4 and its IPv6 addresses.
    pub addresses: Vec<IpAddr>,
    pub tags: HashMap<String, String>,
}

/// Tags by resource id, then by key.
pub type TagMap = HashMap<String, HashMap<String, String>>;

/// Everything awsha asks of EC2. Single-threaded runtime: no `Send` bounds needed.
#[allow(async_fn_in_trait)]
pub trait Ec2 {
    async fn assign_private_ips(&self, eni: &str, ips: &[Ipv4Addr]) -> ApiResult<()>;
    /// IPv6 has no reassignment: EC2 refuses an address another ENI holds.
    async fn assign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()>;
    async fn unassign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()>;
    async fn replace_route(&self, table: &str, dest: &Destination, eni: &str) -> ApiResult<()>;
    async fn create_route(&self, table: &str, dest: &Destination, eni: &str) -> ApiResult<()>;
    async fn associate_address(&self, allocation: &str, eni: &str, ip: Ipv4Addr) -> ApiResult<()>;
    async fn create_tags(&self, resources: &[String], tags: &[(&'static str, String)]) -> ApiResult<()>;
    async fn describe_route_tables(&self, tables: &[String]) -> ApiResult<Vec<RouteTable>>;
    async fn describe_tags(&self, resources: &[String]) -> ApiResult<TagMap>;
    async fn describe_addresses(&self, allocations: &[String]) -> ApiResult<Vec<Address>>;
    /// The ENIs holding any of `ips` (either family), within `subnets` when given (an address
    /// moves only inside its subnet, and the filter keeps other VPCs' overlapping addresses out).
    async fn describe_interfaces_with_ips(
        &self,
        ips: &[IpAddr],
        subnets: &[String],
    ) -> ApiResult<Vec<NetworkInterface>>;
    /// The awsha tags of every ENI tagged for one of `vhids` (the fallback when
    /// DescribeNetworkInterfaces is not permitted).
    async fn describe_tagged_enis(&self, vhids: &[String]) -> ApiResult<TagMap>;
    /// `Ok(())` when EC2 answers `DryRunOperation` (permitted); the error otherwise
    /// (`UnauthorizedOperation` when denied). A Describe that simply answers counts as permitted.
    async fn dry_run(&self, call: &DryRun<'_>) -> ApiResult<()>;
    /// Whether credentials are obtained, whether they are temporary, and when they expire —
    /// never their values.
    async fn credentials(&self) -> anyhow::Result<(bool, Option<SystemTime>)>;
    /// The same client with an earlier deadline, sharing everything else (the throttling state
    /// included): failover keeps time back for tagging.
    fn until(&self, deadline: Instant) -> Self
    where
        Self: Sized;
}

/// Codes the AWS SDKs retry as transient although EC2 sends them with HTTP 400.
pub(crate) const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Throttling codes EC2 answers with (the SDK's list, for the EC2 ones).
pub(crate) const THROTTLING: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "SlowDown",
];

/// A permission check with EC2's `DryRun` (docs/contracts.md §8.4: doctor's job, never failover's).
#[derive(Clone, Debug)]
pub enum DryRun<'a> {
    DescribeRegions,
    DescribeRouteTables,
    DescribeTags,
    DescribeAddresses,
    DescribeNetworkInterfaces,
    ReplaceRoute {
        table: &'a str,
        dest: &'a Destination,
        eni: &'a str,
    },
    CreateRoute {
        table: &'a str,
        dest: &'a Destination,
        eni: &'a str,
    },
    AssociateAddress {
        allocation: &'a str,
        eni: &'a str,
        ip: Ipv4Addr,
    },
    CreateTags {
        resources: &'a [String],
    },
}

impl DryRun<'_> {
    pub fn action(&self) -> &'static str {
        match self {
            DryRun::DescribeRegions => "ec2:DescribeRegions",
            DryRun::DescribeRouteTables => "ec2:DescribeRouteTables",
            DryRun::DescribeTags => "ec2:DescribeTags",
            DryRun::DescribeAddresses => "ec2:DescribeAddresses",
            DryRun::DescribeNetworkInterfaces => "ec2:DescribeNetworkInterfaces",
            DryRun::ReplaceRoute { .. } => "ec2:ReplaceRoute",
            DryRun::CreateRoute { .. } => "ec2:CreateRoute",
            DryRun::AssociateAddress { .. } => "ec2:AssociateAddress",
            DryRun::CreateTags { .. } => "ec2:CreateTags",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_propagated_route_never_hides_the_static_one() {
        let c = Destination::parse("0.0.0.0/0").unwrap();
        let vgw = (c.clone(), None, RouteOrigin::Propagated);
        let eni = (c.clone(), Some("eni-1".to_string()), RouteOrigin::Static);
        assert_eq!(route_map([eni.clone(), vgw.clone()])[&c].as_deref(), Some("eni-1"));
        assert_eq!(route_map([vgw.clone(), eni])[&c].as_deref(), Some("eni-1"));
        assert_eq!(route_map([vgw])[&c], None);
        assert_eq!(RouteOrigin::parse(Some("CreateRoute")), RouteOrigin::Static);
    }

    #[test]
    fn classifies_the_errors_failover_reacts_to() {
        let missing = ApiError::new(
            "InvalidParameterValue",
            "There is no route defined for '10.99.0.0/16' in the route table. Use CreateRoute instead.",
        );
        assert!(missing.is_missing_route() && !missing.is_not_mapped());
        let unmapped = ApiError::new(
            "InvalidParameterValue",
            "10.0.1.10 is not mapped to the interface eni-0123",
        );
        assert!(unmapped.is_not_mapped() && !unmapped.is_missing_route());
        assert!(ApiError::new("InvalidRoute.NotFound", "no route").is_missing_route());
        assert!(ApiError::new("UnauthorizedOperation", "").is_unauthorized());
        assert_eq!(ApiError::new("Timeout", "").to_string(), "Timeout");
    }
}
