//! The instance metadata service (IMDSv2): instance id, region, and per MAC the ENI, its subnet
//! and its private addresses.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use aws_config::imds::client::error::ImdsError;
use tokio::time::Instant;

use crate::base::ids::{check_region, is_eni_id, is_instance_id};
use crate::base::net::{Cidr, parse_ipv4};
use crate::base::text::shorten;

/// One read of an IMDS path: `Ok(None)` is a 404 (the path does not exist for this instance).
#[allow(async_fn_in_trait)]
pub trait Imds {
    async fn get(&self, path: &str) -> anyhow::Result<Option<String>>;
}

/// aws-config's IMDS client (token handling, retries on 5xx), with one addition: a 401 — a token
/// that IMDS no longer accepts — gets a fresh client, hence a fresh token, and one more try.
pub struct AwsImds {
    client: Mutex<aws_config::imds::Client>,
    deadline: Instant,
}

impl AwsImds {
    pub fn new(deadline: Instant) -> AwsImds {
        AwsImds {
            client: Mutex::new(build_client()),
            deadline,
        }
    }
}

fn build_client() -> aws_config::imds::Client {
    // IMDS is a link-local service answering in microseconds: anything slow is broken, and
    // failover must not wait on it for long.
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(2))
        .max_attempts(3)
        .build()
}

impl Imds for AwsImds {
    async fn get(&self, path: &str) -> anyhow::Result<Option<String>> {
        for attempt in 0..2 {
            let client = self.client.lock().expect("imds client lock").clone();
            let answer = tokio::time::timeout_at(self.deadline, client.get(format!("/latest/{path}"))).await;
            match answer {
                Err(_) => return Err(anyhow!("IMDS {path}: no answer before the run's deadline")),
                Ok(Ok(value)) => return Ok(Some(value.as_ref().to_string())),
                Ok(Err(ImdsError::ErrorResponse(r))) if r.response().status().as_u16() == 404 => {
                    return Ok(None);
                }
                Ok(Err(ImdsError::ErrorResponse(r))) if r.response().status().as_u16() == 401 => {
                    if attempt == 0 {
                        *self.client.lock().expect("imds client lock") = build_client();
                    }
                }
                Ok(Err(e)) => return Err(anyhow!("IMDS {path}: {}", describe(&e))),
            }
        }
        Err(anyhow!(
            "IMDS {path}: 401 Unauthorized twice, even with a fresh IMDSv2 token"
        ))
    }
}

fn describe(e: &ImdsError) -> String {
    if timed_out(e) {
        return "the metadata service did not answer in time".into();
    }
    match e {
        ImdsError::ErrorResponse(r) => format!("HTTP {}", r.response().status().as_u16()),
        ImdsError::FailedToLoadToken(t) if t.is_dispatch_failure() => {
            "cannot reach the metadata service for an IMDSv2 token (is IMDS enabled for this instance?)".into()
        }
        ImdsError::FailedToLoadToken(_) => "the metadata service refused an IMDSv2 token".into(),
        ImdsError::IoError(_) => "cannot reach the metadata service".into(),
        _ => "unexpected answer from the metadata service".into(),
    }
}

/// Whether any error in the chain is a timeout (the SDK nests it a few levels deep).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("timeout") {
            return true;
        }
        current = err.source();
    }
    false
}

/// One ENI of this instance, as IMDS describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eni {
    pub mac: String,
    pub id: String,
    pub subnet_id: Option<String>,
    pub subnet_cidr: Option<Cidr>,
    pub local_ipv4s: Vec<Ipv4Addr>,
}

async fn required<I: Imds>(imds: &I, path: &str) -> anyhow::Result<String> {
    match imds.get(path).await? {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(anyhow!("IMDS {path}: not found")),
    }
}

pub async fn instance_id<I: Imds>(imds: &I) -> anyhow::Result<String> {
    let id = required(imds, "meta-data/instance-id").await?;
    if is_instance_id(&id) {
        Ok(id)
    } else {
        Err(anyhow!(
            "IMDS meta-data/instance-id: \"{}\" is not an instance id",
            shorten(&id)
        ))
    }
}

pub async fn region<I: Imds>(imds: &I) -> anyhow::Result<String> {
    let region = required(imds, "meta-data/placement/region").await?;
    check_region(&region).map_err(|e| anyhow!("IMDS meta-data/placement/region: {e}"))?;
    Ok(region)
}

/// The ENI id behind a MAC; `full` also reads its subnet and addresses (three more reads, done
/// concurrently).
pub async fn eni<I: Imds>(imds: &I, mac: &str, full: bool) -> anyhow::Result<Eni> {
    let base = format!("meta-data/network/interfaces/macs/{mac}");
    let id_path = format!("{base}/interface-id");
    let id = match imds.get(&id_path).await? {
        Some(id) if is_eni_id(id.trim()) => id.trim().to_string(),
        Some(id) => {
            return Err(anyhow!("IMDS {id_path}: \"{}\" is not an ENI id", shorten(&id)));
        }
        None => {
            return Err(anyhow!("MAC {mac} has no ENI in IMDS ({id_path} not found)"));
        }
    };
    let mut eni = Eni {
        mac: mac.to_string(),
        id,
        subnet_id: None,
        subnet_cidr: None,
        local_ipv4s: Vec::new(),
    };
    if full {
        let (subnet_path, cidr_path, ipv4s_path) = (
            format!("{base}/subnet-id"),
            format!("{base}/subnet-ipv4-cidr-block"),
            format!("{base}/local-ipv4s"),
        );
        let (subnet, cidr, ipv4s) = tokio::join!(imds.get(&subnet_path), imds.get(&cidr_path), imds.get(&ipv4s_path));
        eni.subnet_id = subnet?.map(|s| s.trim().to_string());
        eni.subnet_cidr = match cidr? {
            Some(c) => Some(Cidr::parse(c.trim()).map_err(|e| anyhow!("IMDS {base}/subnet-ipv4-cidr-block: {e}"))?),
            None => None,
        };
        eni.local_ipv4s = ipv4s?
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_ipv4(l.trim()).map_err(|e| anyhow!("IMDS {base}/local-ipv4s: {e}")))
            .collect::<Result<_, _>>()?;
    }
    Ok(eni)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// IMDS from a table of paths; absent paths are 404s.
    pub struct FakeImds(pub HashMap<String, String>);

    impl Imds for FakeImds {
        async fn get(&self, path: &str) -> anyhow::Result<Option<String>> {
            Ok(self.0.get(path).cloned())
        }
    }

    pub fn fake() -> FakeImds {
        let mac = "meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f";
        FakeImds(
            [
                ("meta-data/instance-id", "i-0123456789abcdef0"),
                ("meta-data/placement/region", "eu-west-1"),
                (
                    "meta-data/network/interfaces/macs/",
                    "0a:1b:2c:3d:4e:5f/\n0a:1b:2c:3d:4e:60/",
                ),
                (&format!("{mac}/interface-id"), "eni-0aaaaaaaaaaaaaaa1"),
                (&format!("{mac}/subnet-id"), "subnet-0123abcd"),
                (&format!("{mac}/subnet-ipv4-cidr-block"), "10.0.1.0/24"),
                (&format!("{mac}/local-ipv4s"), "10.0.1.11\n10.0.1.10"),
                (
                    "meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/interface-id",
                    "eni-; reboot",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn reads_instance_and_enis() {
        let imds = fake();
        assert_eq!(run(instance_id(&imds)).unwrap(), "i-0123456789abcdef0");
        assert_eq!(run(region(&imds)).unwrap(), "eu-west-1");
        let eni = run(eni(&imds, "0a:1b:2c:3d:4e:5f", true)).unwrap();
        assert_eq!(eni.id, "eni-0aaaaaaaaaaaaaaa1");
        assert_eq!(eni.subnet_cidr.unwrap().to_string(), "10.0.1.0/24");
        assert_eq!(eni.local_ipv4s.len(), 2);
    }

    #[test]
    fn refuses_what_is_not_an_eni() {
        let imds = fake();
        assert!(
            run(eni(&imds, "0a:1b:2c:3d:4e:60", false))
                .unwrap_err()
                .to_string()
                .contains("is not an ENI id")
        );
        assert!(
            run(eni(&imds, "0a:00:00:00:00:00", false))
                .unwrap_err()
                .to_string()
                .contains("has no ENI")
        );
    }
}
