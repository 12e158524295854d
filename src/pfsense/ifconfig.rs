//! What the firewall itself knows: `ifconfig -a` → the MAC of each device and the CARP state of
//! each (device, vhid), as FreeBSD 14 prints them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarpState {
    Init,
    Backup,
    Master,
    /// ifconfig does not show the vhid (not configured in the OS, or CARP disabled).
    Absent,
}

impl fmt::Display for CarpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CarpState::Init => "INIT",
            CarpState::Backup => "BACKUP",
            CarpState::Master => "MASTER",
            CarpState::Absent => "ABSENT",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarpStatus {
    pub vhid: u8,
    pub state: CarpState,
    pub advbase: u32,
    pub advskew: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// Lower case, as IMDS lists MACs.
    pub mac: Option<String>,
    pub carp: Vec<CarpStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub devices: BTreeMap<String, Device>,
}

impl HostFacts {
    pub fn carp(&self, device: &str, vhid: u8) -> Option<CarpStatus> {
        self.devices.get(device)?.carp.iter().find(|c| c.vhid == vhid).copied()
    }

    pub fn state(&self, device: &str, vhid: u8) -> CarpState {
        self.carp(device, vhid).map(|c| c.state).unwrap_or(CarpState::Absent)
    }

    pub fn mac(&self, device: &str) -> Option<&str> {
        self.devices.get(device)?.mac.as_deref()
    }
}

/// Where the facts come from; a trait so planning can be tested without a FreeBSD host.
/// Runs the real (or, in tests, fake) ifconfig program.
pub struct Ifconfig {
    pub program: String,
    pub timeout: Duration,
}

impl Ifconfig {
    /// Runs `ifconfig -a`, bounded by `timeout`. Blocks: call it off the async runtime.
    pub fn facts(&self) -> Result<HostFacts> {
        let out = run_bounded(&self.program, &["-a"], self.timeout)?;
        Ok(parse_ifconfig(&out))
    }
}

/// Runs a program and returns its stdout, killing it if it outlives `timeout`: a wedged
/// ifconfig must not hang pfSense's event processing.
fn run_bounded(program: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot run {program}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    // Read in a thread: a large output would otherwise fill the pipe and block the child.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.by_ref().take(16 * 1024 * 1024).read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program} -a did not finish within {} ms", timeout.as_millis());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let buf = reader.join().unwrap_or_default();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!(
            "{program} -a failed ({status}): {}",
            err.lines().next().unwrap_or("").trim()
        );
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Parses `ifconfig -a`. Device blocks start at column 0 (`ena0: flags=…`); `ether` gives the
/// MAC, `carp: STATE vhid N advbase B advskew S` one CARP entry. Unknown lines are ignored, so
/// newer ifconfig output (peer lines, libxo extras) does not break it.
pub fn parse_ifconfig(text: &str) -> HostFacts {
    let mut facts = HostFacts::default();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with([' ', '\t']) {
            current = line
                .split_once(": ")
                .map(|(name, _)| name.to_string())
                .filter(|n| !n.is_empty());
            if let Some(name) = &current {
                facts.devices.entry(name.clone()).or_default();
            }
            continue;
        }
        let Some(device) = current.as_ref().and_then(|d| facts.devices.get_mut(d)) else {
            continue;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ether", mac, ..] => device.mac = Some(mac.to_ascii_lowercase()),
            ["carp:", state, "vhid", vhid, "advbase", advbase, "advskew", advskew, ..] => {
                let state = match *state {
                    "INIT" => CarpState::Init,
                    "BACKUP" => CarpState::Backup,
                    "MASTER" => CarpState::Master,
                    _ => continue,
                };
                let (Ok(vhid), Ok(advbase), Ok(advskew)) = (vhid.parse(), advbase.parse(), advskew.parse()) else {
                    continue;
                };
                device.carp.push(CarpStatus {
                    vhid,
                    state,
                    advbase,
                    advskew,
                });
            }
            _ => {}
        }
    }
    facts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Assembled from FreeBSD 14's format strings (ifcarp.c, af_inet.c), as pfSense prints it.
    pub const SAMPLE: &str = "\
ena0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 9001
\toptions=422<JUMBO_MTU,LRO>
\tether 0a:1B:2c:3d:4e:5f
\tinet 10.0.1.11 netmask 0xffffff00 broadcast 10.0.1.255
\tinet 10.0.1.10 netmask 0xffffffff broadcast 10.0.1.10 vhid 1
\tinet 10.0.1.20 netmask 0xffffffff broadcast 10.0.1.20 vhid 10
\tcarp: MASTER vhid 1 advbase 1 advskew 0
\t      peer 10.0.1.12 peer6 ff02::12
\tcarp: BACKUP vhid 10 advbase 2 advskew 254
\t      peer 10.0.1.12 peer6 ff02::12
\tmedia: Ethernet autoselect (25GBase-CR <full-duplex>)
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
ena1: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 9001
\tether 0a:1b:2c:3d:4e:60
\tinet 10.0.2.11 netmask 0xffffff00 broadcast 10.0.2.255
\tcarp: INIT vhid 2 advbase 1 advskew 100
\t      peer 224.0.0.18 peer6 ff02::12
enc0: flags=0 metric 0 mtu 1536
\tgroups: enc
\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\toptions=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tgroups: lo
pflog0: flags=100<PROMISC> metric 0 mtu 33152
\tgroups: pflog
pfsync0: flags=0 metric 0 mtu 1500
\tgroups: pfsync
";

    #[test]
    fn parses_macs_and_carp_states() {
        let f = parse_ifconfig(SAMPLE);
        assert_eq!(f.mac("ena0"), Some("0a:1b:2c:3d:4e:5f"));
        assert_eq!(f.mac("lo0"), None);
        assert_eq!(
            f.carp("ena0", 1),
            Some(CarpStatus {
                vhid: 1,
                state: CarpState::Master,
                advbase: 1,
                advskew: 0
            })
        );
        assert_eq!(f.state("ena0", 10), CarpState::Backup);
        assert_eq!(f.carp("ena0", 10).unwrap().advskew, 254);
        assert_eq!(f.state("ena1", 2), CarpState::Init);
        assert_eq!(f.state("ena1", 1), CarpState::Absent);
        assert_eq!(f.state("ena9", 1), CarpState::Absent);
        assert_eq!(f.devices.len(), 6);
    }

    #[test]
    fn freebsd13_output_without_peer_lines_and_garbage_are_fine() {
        let f = parse_ifconfig(
            "vtnet0: flags=8943<UP> mtu 1500\n\tcarp: MASTER vhid 3 advbase 1 advskew 0\n\tcarp: WEIRD vhid 4 advbase 1 advskew 0\n\tcarp: MASTER vhid 999 advbase 1 advskew 0\n\n\u{0}\u{1}",
        );
        assert_eq!(f.state("vtnet0", 3), CarpState::Master);
        assert_eq!(f.devices["vtnet0"].carp.len(), 1);
        assert_eq!(parse_ifconfig(""), HostFacts::default());
    }

    #[test]
    fn bounded_run_reports_failures() {
        let e = run_bounded("/nonexistent/ifconfig", &["-a"], Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("cannot run /nonexistent/ifconfig"));
        let started = Instant::now();
        let e = run_bounded("/bin/sleep", &["5"], Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(run_bounded("/bin/false", &[], Duration::from_secs(2)).is_err());
    }
}
