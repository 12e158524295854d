//! Everything a command touches outside the process — `ifconfig -a`, the instance metadata
//! service, EC2, the network path to EC2, the wall clock — as one trait. `main` passes the real
//! ones (`Real`); the commands' unit tests pass fakes, so their decisions are tested without a
//! network. (config.xml and the run directory are files, read and written directly.)

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::aws::ec2::Ec2;
use crate::aws::imds::{AwsImds, Imds};
use crate::aws::sdk::AwsEc2;
use crate::base::time::{Millis, to_millis};
use crate::pfsense::ifconfig::{HostFacts, Ifconfig};
use crate::report::Timeline;

/// What a command may use of the world outside the process.
pub trait Edges {
    type Imds: Imds;
    type Ec2: Ec2;

    /// CARP states and MACs, read now (`ifconfig -a`).
    fn host_facts(&self) -> impl Future<Output = anyhow::Result<HostFacts>>;

    /// The instance metadata service, for a run ending at `deadline`.
    fn imds(&self, deadline: Instant) -> Self::Imds;

    /// EC2 in `region`, at `endpoint` (PrivateLink) or the regional default; each call tried at
    /// most `attempts` times and abandoned at `deadline`; every request sent and answered is
    /// marked on `timeline`.
    fn ec2(
        &self,
        region: &str,
        endpoint: Option<&str>,
        deadline: Instant,
        attempts: u32,
        timeline: &Timeline,
    ) -> impl Future<Output = Self::Ec2>;

    /// Whether `url`'s host resolves and accepts a TCP connection, and how fast: doctor's check of
    /// the network path, apart from credentials. The text says what was found either way.
    fn reach(&self, url: &str) -> impl Future<Output = Result<String, String>>;

    /// The wall clock, for tag times, takeover marks and the age of a change.
    fn now_millis(&self) -> Millis;
}

/// The real edges of a pfSense node.
pub struct Real {
    /// The ifconfig program (`AWSHA_IFCONFIG`, default `/sbin/ifconfig`).
    pub ifconfig: String,
}

/// How long a TCP connect to the EC2 endpoint may take (doctor), and any connect of the SDK.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `ifconfig -a` may take.
const IFCONFIG_TIMEOUT: Duration = Duration::from_secs(5);

impl Edges for Real {
    type Imds = AwsImds;
    type Ec2 = AwsEc2;

    async fn host_facts(&self) -> anyhow::Result<HostFacts> {
        // A program run blocks; on the single-threaded runtime it would stall every other future
        // (reconcile reads CARP state again inside its concurrent VHIDs).
        let runner = Ifconfig {
            program: self.ifconfig.clone(),
            timeout: IFCONFIG_TIMEOUT,
        };
        tokio::task::spawn_blocking(move || runner.facts())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.ifconfig))?
    }

    fn imds(&self, deadline: Instant) -> AwsImds {
        AwsImds::new(deadline)
    }

    async fn ec2(
        &self,
        region: &str,
        endpoint: Option<&str>,
        deadline: Instant,
        attempts: u32,
        timeline: &Timeline,
    ) -> AwsEc2 {
        AwsEc2::connect(region, endpoint, deadline, attempts, CONNECT_TIMEOUT, timeline.clone()).await
    }

    async fn reach(&self, url: &str) -> Result<String, String> {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let hostport = rest.split('/').next().unwrap_or(rest);
        let default_port = if url.starts_with("http://") { 80 } else { 443 };
        let target = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            hostport.to_string()
        } else {
            format!("{hostport}:{default_port}")
        };
        let started = std::time::Instant::now();
        let addrs = tokio::net::lookup_host(target.clone())
            .await
            .map_err(|e| format!("{url}: cannot resolve {target}: {e}"))?
            .collect::<Vec<_>>();
        let addr = addrs
            .first()
            .ok_or_else(|| format!("{url}: {target} resolves to no address"))?;
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(format!(
                "{url} ({addr}) accepts connections ({} ms)",
                started.elapsed().as_millis()
            )),
            Ok(Err(e)) => Err(format!(
                "{url} ({addr}): {e} (after {} ms)",
                started.elapsed().as_millis()
            )),
            Err(_) => Err(format!(
                "{url} ({addr}): no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    fn now_millis(&self) -> Millis {
        to_millis(SystemTime::now())
    }
}
