//! EC2 through aws-sdk-ec2: the run's timeouts and deadline, retries with EC2's last error kept,
//! throttling paced per action (`aws::throttle`), every page of a Describe, and requests cut to
//! EC2's limits (200 filter values, 1,000 resources a CreateTags).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, Tag};
use futures_util::future::join_all;
use tokio::time::Instant;

use crate::aws::ec2::{
    Address, ApiError, ApiResult, DryRun, Ec2, NetworkInterface, RouteOrigin, RouteTable, THROTTLING, TRANSIENT,
    TagMap, route_map,
};
use crate::aws::throttle::{Answer, Limiter};
use crate::base::net::{Cidr, Destination};
use crate::base::text::flatten;
use crate::report::Timeline;

/// Connection and retry settings (docs/contracts.md §8.3): a short connect timeout, throttling paced by a
/// per-action limiter that follows EC2's answers, 5xx and transient errors retried with
/// exponential backoff and jitter, and every call abandoned at the run's deadline.
pub struct AwsEc2 {
    client: aws_sdk_ec2::Client,
    sdk: aws_config::SdkConfig,
    deadline: Instant,
    /// Tries per call in all (the first and the retries).
    max_attempts: u32,
    /// Shared by every call of the run (and by `until`'s copies): EC2's buckets are per action,
    /// not per call.
    limiter: Rc<Limiter>,
    /// Every request sent and answered, for the failover report.
    timeline: Timeline,
}

/// EC2 refuses a request with more than this many filter values in all (`FilterLimitExceeded`).
pub const MAX_FILTER_VALUES: usize = 200;
/// CreateTags takes at most this many resource ids per call.
const MAX_TAG_RESOURCES: usize = 1000;
/// DescribeRouteTables pages hold at most 100 tables: a chunk of that size is one request.
const ROUTE_TABLES_PER_CHUNK: usize = 100;
/// A Describe that keeps answering with tokens is cut off here (the deadline usually is first).
const MAX_PAGES: usize = 1000;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

impl AwsEc2 {
    /// `endpoint`: a PrivateLink or test endpoint; `None` lets the SDK use the regional one (or
    /// `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL`, which it reads itself). `attempts`: how often a
    /// throttled, 5xx or unreachable call is tried in all.
    pub async fn connect(
        region: &str,
        endpoint: Option<&str>,
        deadline: Instant,
        attempts: u32,
        connect_timeout: Duration,
        timeline: Timeline,
    ) -> AwsEc2 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(connect_timeout)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(remaining.max(Duration::from_millis(1))))
            .build();
        // Retries are awsha's own (`bounded`): it keeps the last error and knows the deadline.
        let retries = RetryConfig::standard().with_max_attempts(1);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        AwsEc2 {
            client: aws_sdk_ec2::Client::new(&sdk),
            sdk,
            deadline,
            max_attempts: attempts.max(1),
            limiter: Rc::new(Limiter::new()),
            timeline,
        }
    }

    /// Runs one EC2 call of `action`: queued behind the action's limiter once EC2 has throttled it,
    /// retried on throttling (paced by the limiter, not by a backoff of its own), on 5xx and on
    /// transient errors (exponential backoff and jitter); awsha's loop, not the SDK's, so the error
    /// reported is the last one EC2 gave. Abandoned at the run's deadline whatever is in flight.
    async fn bounded<T, E, F, Fut>(&self, action: &'static str, call: F) -> ApiResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut last: Option<ApiError> = None;
        for attempt in 1..=self.max_attempts {
            let sent = async {
                self.limiter.acquire(action).await;
                self.timeline.mark(format!("{action} sent"));
                call().await
            };
            let (err, throttled) = match tokio::time::timeout_at(self.deadline, sent).await {
                Ok(Ok(v)) => {
                    self.limiter.record(action, Answer::Accepted);
                    self.timeline.mark(format!("{action} answered"));
                    return Ok(v);
                }
                Ok(Err(e)) => {
                    let class = classify(&e);
                    let err = api_error(e);
                    self.timeline.mark(format!("{action} answered {}", err.code));
                    let throttled = class == Retry::Throttled;
                    self.limiter
                        .record(action, if throttled { Answer::Throttled } else { Answer::Other });
                    if class == Retry::No {
                        return Err(err);
                    }
                    (err, throttled)
                }
                Err(_) => {
                    let mut message = "no answer before the run's deadline".to_string();
                    if let Some(prev) = &last {
                        message.push_str(&format!(" (attempt {attempt}; before it: {prev})"));
                    }
                    return Err(ApiError::new("Timeout", message));
                }
            };
            // A throttled call waits in the limiter's queue; anything else backs off.
            let pause = if throttled { Duration::ZERO } else { backoff(attempt) };
            if attempt == self.max_attempts || Instant::now() + pause >= self.deadline {
                let why = if attempt == self.max_attempts {
                    "attempts"
                } else {
                    "attempts before the deadline"
                };
                return Err(ApiError::new(
                    &err.code,
                    format!("{} (after {attempt} {why})", err.message),
                ));
            }
            last = Some(err);
            tokio::time::sleep(pause).await;
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Every page of a Describe call: `call(token)` sends one request; pages may be short or
    /// empty and still carry a token (docs/references.md §1.5), so only a missing token ends.
    async fn all_pages<T, E, F, Fut>(&self, action: &'static str, call: F) -> ApiResult<Vec<T>>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        T: Paged,
    {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.bounded(action, || call(token.clone())).await?;
            let next = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            pages.push(page);
            match next {
                None => return Ok(pages),
                Some(t) if Some(&t) == token.as_ref() => {
                    return Err(ApiError::new(
                        "MalformedResponse",
                        format!("{action} answered the same NextToken twice"),
                    ));
                }
                Some(_) if pages.len() >= MAX_PAGES => {
                    return Err(ApiError::new(
                        "MalformedResponse",
                        format!("{action} still had more after {MAX_PAGES} pages"),
                    ));
                }
                Some(t) => token = Some(t),
            }
        }
    }
}

/// A Describe answer that may continue on another page.
pub trait Paged {
    fn next_token(&self) -> Option<&str>;
}

macro_rules! paged {
    ($($output:ty),*) => {
        $(impl Paged for $output {
            fn next_token(&self) -> Option<&str> {
                <$output>::next_token(self)
            }
        })*
    };
}

paged!(
    aws_sdk_ec2::operation::describe_tags::DescribeTagsOutput,
    aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput,
    aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput
);

/// `values` in pieces that fit one request beside `others` filter values already in it.
pub fn filter_chunks(values: &[String], others: usize, at_most: usize) -> Vec<&[String]> {
    let size = MAX_FILTER_VALUES.saturating_sub(others).clamp(1, at_most.max(1));
    values.chunks(size).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    No,
    Throttled,
    Transient,
}

fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> Retry {
    match err {
        SdkError::ServiceError(se) => {
            let code = se.err().code();
            if code.is_some_and(|c| THROTTLING.contains(&c)) {
                Retry::Throttled
            } else if se.raw().status().as_u16() >= 500 || code.is_some_and(|c| TRANSIENT.contains(&c)) {
                Retry::Transient
            } else {
                Retry::No
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Retry::Transient,
        _ => Retry::No,
    }
}

/// Exponential backoff from 100 ms, capped at 2 s, with jitter (a random half to full pause).
fn backoff(attempt: u32) -> Duration {
    let full = Duration::from_millis(100)
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(Duration::from_secs(2));
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

fn api_error<E>(err: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let (e, status) = (se.err(), se.raw().status().as_u16());
            match e.code() {
                Some(code) => ApiError::new(code, e.message().map(flat).unwrap_or_else(|| format!("HTTP {status}"))),
                // An answer the SDK could not read as EC2's (a proxy's page, a truncated body).
                None if (200..300).contains(&status) => ApiError::new(
                    "MalformedResponse",
                    format!("HTTP {status} with a body that is not an EC2 answer"),
                ),
                None => ApiError::new("Unknown", format!("HTTP {status} without an EC2 error code")),
            }
        }
        SdkError::TimeoutError(_) => ApiError::new("Timeout", "the request timed out"),
        SdkError::DispatchFailure(d) if d.is_timeout() => ApiError::new("Timeout", "the connection timed out"),
        SdkError::DispatchFailure(_) => ApiError::new("ConnectionError", flat(&DisplayErrorContext(&err).to_string())),
        SdkError::ResponseError(_) => ApiError::new("MalformedResponse", flat(&DisplayErrorContext(&err).to_string())),
        _ => ApiError::new("RequestError", flat(&DisplayErrorContext(&err).to_string())),
    }
}

impl Ec2 for AwsEc2 {
    /// The same client with an earlier deadline: failover keeps time back for tagging.
    fn until(&self, deadline: Instant) -> AwsEc2 {
        AwsEc2 {
            client: self.client.clone(),
            sdk: self.sdk.clone(),
            deadline,
            max_attempts: self.max_attempts,
            limiter: self.limiter.clone(),
            timeline: self.timeline.clone(),
        }
    }

    async fn assign_private_ips(&self, eni: &str, ips: &[Ipv4Addr]) -> ApiResult<()> {
        let call = || {
            self.client
                .assign_private_ip_addresses()
                .network_interface_id(eni)
                .set_private_ip_addresses(Some(ips.iter().map(|ip| ip.to_string()).collect()))
                .allow_reassignment(true)
                .send()
        };
        self.bounded("AssignPrivateIpAddresses", call).await.map(|_| ())
    }

    async fn assign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()> {
        let call = || {
            self.client
                .assign_ipv6_addresses()
                .network_interface_id(eni)
                .set_ipv6_addresses(Some(addrs.iter().map(|a| a.to_string()).collect()))
                .send()
        };
        self.bounded("AssignIpv6Addresses", call).await.map(|_| ())
    }

    async fn unassign_ipv6(&self, eni: &str, addrs: &[Ipv6Addr]) -> ApiResult<()> {
        let call = || {
            self.client
                .unassign_ipv6_addresses()
                .network_interface_id(eni)
                .set_ipv6_addresses(Some(addrs.iter().map(|a| a.to_string()).collect()))
                .send()
        };
        self.bounded("UnassignIpv6Addresses", call).await.map(|_| ())
    }

    async fn replace_route(&self, table: &str, dest: &Destination, eni: &str) -> ApiResult<()> {
        let call = || route_request!(self.client.replace_route(), table, dest, eni).send();
        self.bounded("ReplaceRoute", call).await.map(|_| ())
    }

    async fn create_route(&self, table: &str, dest: &Destination, eni: &str) -> ApiResult<()> {
        let call = || route_request!(self.client.create_route(), table, dest, eni).send();
        self.bounded("CreateRoute", call).await.map(|_| ())
    }

    async fn associate_address(&self, allocation: &str, eni: &str, ip: Ipv4Addr) -> ApiResult<()> {
        let call = || {
            self.client
                .associate_address()
                .allocation_id(allocation)
                .network_interface_id(eni)
                .private_ip_address(ip.to_string())
                .allow_reassociation(true)
                .send()
        };
        self.bounded("AssociateAddress", call).await.map(|_| ())
    }

    async fn create_tags(&self, resources: &[String], tags: &[(&'static str, String)]) -> ApiResult<()> {
        if resources.len() > MAX_TAG_RESOURCES {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!(
                    "{} resources in one CreateTags (at most {MAX_TAG_RESOURCES})",
                    resources.len()
                ),
            ));
        }
        let call = || {
            self.client
                .create_tags()
                .set_resources(Some(resources.to_vec()))
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                        .collect(),
                ))
                .send()
        };
        self.bounded("CreateTags", call).await.map(|_| ())
    }

    async fn describe_route_tables(&self, tables: &[String]) -> ApiResult<Vec<RouteTable>> {
        // A filter, not RouteTableIds: an unknown id is then just absent instead of failing the
        // whole call (and with it every other table's observation).
        let chunk = |ids: Vec<String>| {
            self.all_pages("DescribeRouteTables", move |token| {
                self.client
                    .describe_route_tables()
                    .filters(
                        Filter::builder()
                            .name("route-table-id")
                            .set_values(Some(ids.clone()))
                            .build(),
                    )
                    .max_results(100)
                    .set_next_token(token)
                    .send()
            })
        };
        let chunks = filter_chunks(tables, 0, ROUTE_TABLES_PER_CHUNK);
        let mut out = Vec::new();
        for pages in join_all(chunks.into_iter().map(|c| chunk(c.to_vec()))).await {
            for page in pages? {
                out.extend(page.route_tables().iter().map(|t| RouteTable {
                    id: t.route_table_id().unwrap_or_default().to_string(),
                    routes: route_map(t.routes().iter().filter_map(|r| {
                        // Read back from the field it was written to (docs/contracts.md §5.5).
                        let dest = match (
                            r.destination_cidr_block(),
                            r.destination_ipv6_cidr_block(),
                            r.destination_prefix_list_id(),
                        ) {
                            (Some(c), _, _) | (None, Some(c), _) => Destination::Cidr(Cidr::parse(c).ok()?),
                            (None, None, Some(pl)) => Destination::PrefixList(pl.to_ascii_lowercase()),
                            (None, None, None) => return None,
                        };
                        let origin = RouteOrigin::parse(r.origin().map(|o| o.as_str()));
                        Some((dest, r.network_interface_id().map(str::to_string), origin))
                    })),
                }));
            }
        }
        Ok(out)
    }

    async fn describe_tags(&self, resources: &[String]) -> ApiResult<TagMap> {
        let keys: Vec<String> = crate::base::tags::ALL_KEYS.map(String::from).to_vec();
        let chunk = |ids: Vec<String>| {
            let keys = keys.clone();
            self.all_pages("DescribeTags", move |token| {
                self.client
                    .describe_tags()
                    .filters(
                        Filter::builder()
                            .name("resource-id")
                            .set_values(Some(ids.clone()))
                            .build(),
                    )
                    .filters(Filter::builder().name("key").set_values(Some(keys.clone())).build())
                    .max_results(1000)
                    .set_next_token(token)
                    .send()
            })
        };
        let chunks = filter_chunks(resources, keys.len(), usize::MAX);
        let mut map = TagMap::new();
        for pages in join_all(chunks.into_iter().map(|c| chunk(c.to_vec()))).await {
            for page in pages? {
                for t in page.tags() {
                    if let (Some(r), Some(k)) = (t.resource_id(), t.key()) {
                        map.entry(r.to_string())
                            .or_default()
                            .insert(k.to_string(), t.value().unwrap_or_default().to_string());
                    }
                }
            }
        }
        Ok(map)
    }

    async fn describe_addresses(&self, allocations: &[String]) -> ApiResult<Vec<Address>> {
        // A filter for the same reason as in describe_route_tables. DescribeAddresses has no
        // pages: it answers every match at once.
        let chunk = |ids: Vec<String>| {
            self.bounded("DescribeAddresses", move || {
                self.client
                    .describe_addresses()
                    .filters(
                        Filter::builder()
                            .name("allocation-id")
                            .set_values(Some(ids.clone()))
                            .build(),
                    )
                    .send()
            })
        };
        let chunks = filter_chunks(allocations, 0, usize::MAX);
        let mut out = Vec::new();
        for answer in join_all(chunks.into_iter().map(|c| chunk(c.to_vec()))).await {
            out.extend(answer?.addresses().iter().map(|a| Address {
                allocation: a.allocation_id().unwrap_or_default().to_string(),
                eni: a.network_interface_id().map(str::to_string),
                private_ip: a.private_ip_address().and_then(|ip| ip.parse().ok()),
            }));
        }
        Ok(out)
    }

    async fn describe_interfaces_with_ips(
        &self,
        ips: &[IpAddr],
        subnets: &[String],
    ) -> ApiResult<Vec<NetworkInterface>> {
        // One filter per family: filters of different names are ANDed.
        let v4: Vec<String> = ips.iter().filter(|i| i.is_ipv4()).map(|i| i.to_string()).collect();
        let v6: Vec<String> = ips.iter().filter(|i| i.is_ipv6()).map(|i| i.to_string()).collect();
        // Always paged (MaxResults): EC2 refuses an unpaginated DescribeNetworkInterfaces
        // without one of a few filters, and subnet-id is absent when no subnet is known.
        let chunk = |filter: &'static str, values: Vec<String>| {
            self.all_pages("DescribeNetworkInterfaces", move |token| {
                let mut req = self
                    .client
                    .describe_network_interfaces()
                    .filters(Filter::builder().name(filter).set_values(Some(values.clone())).build())
                    .max_results(1000)
                    .set_next_token(token);
                if !subnets.is_empty() {
                    req = req.filters(
                        Filter::builder()
                            .name("subnet-id")
                            .set_values(Some(subnets.to_vec()))
                            .build(),
                    );
                }
                req.send()
            })
        };
        let requests = filter_chunks(&v4, subnets.len(), usize::MAX)
            .into_iter()
            .map(|c| chunk("addresses.private-ip-address", c.to_vec()))
            .chain(
                filter_chunks(&v6, subnets.len(), usize::MAX)
                    .into_iter()
                    .map(|c| chunk("ipv6-addresses.ipv6-address", c.to_vec())),
            );
        let mut out: Vec<NetworkInterface> = Vec::new();
        for pages in join_all(requests).await {
            for page in pages? {
                for n in page.network_interfaces() {
                    let id = n.network_interface_id().unwrap_or_default().to_string();
                    if out.iter().any(|o| o.id == id) {
                        continue;
                    }
                    let v4 = n
                        .private_ip_addresses()
                        .iter()
                        .filter_map(|p| p.private_ip_address()?.parse::<Ipv4Addr>().ok())
                        .map(IpAddr::V4);
                    let v6 = n
                        .ipv6_addresses()
                        .iter()
                        .filter_map(|a| a.ipv6_address()?.parse::<Ipv6Addr>().ok())
                        .map(IpAddr::V6);
                    out.push(NetworkInterface {
                        id,
                        instance: n.attachment().and_then(|a| a.instance_id()).map(str::to_string),
                        addresses: v4.chain(v6).collect(),
                        tags: n
                            .tag_set()
                            .iter()
                            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                            .collect(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn describe_tagged_enis(&self, vhids: &[String]) -> ApiResult<TagMap> {
        let chunk = |values: Vec<String>| {
            self.all_pages("DescribeTags", move |token| {
                self.client
                    .describe_tags()
                    .filters(
                        Filter::builder()
                            .name("resource-type")
                            .values("network-interface")
                            .build(),
                    )
                    .filters(Filter::builder().name("key").values(crate::base::tags::VHID).build())
                    .filters(Filter::builder().name("value").set_values(Some(values.clone())).build())
                    .max_results(1000)
                    .set_next_token(token)
                    .send()
            })
        };
        let mut enis: Vec<String> = Vec::new();
        for pages in join_all(
            filter_chunks(vhids, 2, usize::MAX)
                .into_iter()
                .map(|c| chunk(c.to_vec())),
        )
        .await
        {
            for page in pages? {
                enis.extend(page.tags().iter().filter_map(|t| t.resource_id().map(str::to_string)));
            }
        }
        enis.sort();
        enis.dedup();
        if enis.is_empty() {
            return Ok(TagMap::new());
        }
        self.describe_tags(&enis).await
    }

    /// `Ok(())` when EC2 answers `DryRunOperation` (permitted); the error otherwise
    /// (`UnauthorizedOperation` when denied). A Describe that simply answers counts as permitted.
    async fn dry_run(&self, call: &DryRun<'_>) -> ApiResult<()> {
        let c = &self.client;
        let action = call.action().trim_start_matches("ec2:");
        let result = match call {
            DryRun::DescribeRegions => self
                .bounded(action, || c.describe_regions().dry_run(true).send())
                .await
                .map(|_| ()),
            DryRun::DescribeRouteTables => self
                .bounded(action, || c.describe_route_tables().dry_run(true).max_results(5).send())
                .await
                .map(|_| ()),
            DryRun::DescribeTags => self
                .bounded(action, || c.describe_tags().dry_run(true).max_results(5).send())
                .await
                .map(|_| ()),
            DryRun::DescribeAddresses => self
                .bounded(action, || c.describe_addresses().dry_run(true).send())
                .await
                .map(|_| ()),
            DryRun::DescribeNetworkInterfaces => self
                .bounded(action, || {
                    c.describe_network_interfaces().dry_run(true).max_results(5).send()
                })
                .await
                .map(|_| ()),
            DryRun::ReplaceRoute { table, dest, eni } => self
                .bounded(action, || {
                    route_request!(c.replace_route().dry_run(true), *table, dest, *eni).send()
                })
                .await
                .map(|_| ()),
            DryRun::CreateRoute { table, dest, eni } => self
                .bounded(action, || {
                    route_request!(c.create_route().dry_run(true), *table, dest, *eni).send()
                })
                .await
                .map(|_| ()),
            DryRun::AssociateAddress { allocation, eni, ip } => self
                .bounded(action, || {
                    c.associate_address()
                        .dry_run(true)
                        .allocation_id(*allocation)
                        .network_interface_id(*eni)
                        .private_ip_address(ip.to_string())
                        .allow_reassociation(true)
                        .send()
                })
                .await
                .map(|_| ()),
            DryRun::CreateTags { resources } => self
                .bounded(action, || {
                    c.create_tags()
                        .dry_run(true)
                        .set_resources(Some(resources.to_vec()))
                        .tags(Tag::builder().key(crate::base::tags::VHID).value("doctor").build())
                        .send()
                })
                .await
                .map(|_| ()),
        };
        match result {
            Err(e) if e.code == "DryRunOperation" => Ok(()),
            other => other,
        }
    }

    /// Whether the SDK obtains credentials, whether they are temporary, and when they expire.
    /// Never their values.
    async fn credentials(&self) -> anyhow::Result<(bool, Option<SystemTime>)> {
        use aws_sdk_ec2::config::ProvideCredentials;
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| anyhow::anyhow!("no credentials provider configured"))?;
        match tokio::time::timeout_at(self.deadline, provider.provide_credentials()).await {
            Err(_) => anyhow::bail!("no credentials before the run's deadline"),
            Ok(Err(e)) => anyhow::bail!(flat(&DisplayErrorContext(&e).to_string())),
            Ok(Ok(c)) => Ok((c.session_token().is_some(), c.expiry())),
        }
    }
}

/// A ReplaceRoute or CreateRoute request (the SDK's builders are two types with the same
/// methods) for `table`, the destination in its own field, and the target ENI.
macro_rules! route_request {
    ($builder:expr, $table:expr, $dest:expr, $eni:expr) => {{
        let (v4, v6, pl) = destination_fields($dest);
        $builder
            .route_table_id($table)
            .set_destination_cidr_block(v4)
            .set_destination_ipv6_cidr_block(v6)
            .set_destination_prefix_list_id(pl)
            .network_interface_id($eni)
    }};
}
use route_request;

/// A route destination in the field EC2 takes it in: `(DestinationCidrBlock,
/// DestinationIpv6CidrBlock, DestinationPrefixListId)`, exactly one of them set.
fn destination_fields(dest: &Destination) -> (Option<String>, Option<String>, Option<String>) {
    match dest {
        Destination::Cidr(c) if c.is_ipv6() => (None, Some(c.to_string()), None),
        Destination::Cidr(c) => (Some(c.to_string()), None, None),
        Destination::PrefixList(id) => (None, None, Some(id.clone())),
    }
}

/// EC2's and the SDK's texts, one line and bounded, for reports and notices.
fn flat(text: &str) -> String {
    flatten(text, 2000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_split_to_fit_ec2s_limit() {
        let ids: Vec<String> = (0..450).map(|i| format!("rtb-{i:08x}")).collect();
        let chunks = filter_chunks(&ids, 5, usize::MAX);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [195, 195, 60]);
        assert_eq!(filter_chunks(&ids, 0, 100).len(), 5);
        assert!(filter_chunks(&[], 5, usize::MAX).is_empty());
        // Even a request full of other values sends one value at a time rather than none.
        assert_eq!(filter_chunks(&ids[..2], 250, usize::MAX).len(), 2);
    }
}
