//! The outcome of a run: the JSON report of docs/contracts.md (the shim and monitoring read it)
//! and the same facts as text for an operator. Every field is typed; the JSON is written in one
//! place, `Report::to_json`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::base::tags::Stamp;
use crate::base::text::scrub;
use crate::base::time::format_rfc3339_millis;
use crate::log::{self, Level};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Changed,
    Unchanged,
    Planned,
    Skipped,
    Deferred,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::Planned => "planned",
            Status::Skipped => "skipped",
            Status::Deferred => "deferred",
            Status::Failed => "failed",
        }
    }
}

/// What reconcile and status saw in AWS for one action.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Where AWS points now, as text.
    pub actual: Option<String>,
    /// status: the VHID's CARP state on this node.
    pub state: Option<String>,
    /// status: where the action would point (this node's ENI).
    pub desired: Option<String>,
    /// status: whether AWS points at this node.
    pub points_here: Option<bool>,
    /// status: points here exactly when this node is MASTER.
    pub in_sync: Option<bool>,
    /// The resource's last awsha writer, from its tags.
    pub last_writer: Option<Stamp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionReport {
    pub vhid: String,
    pub kind: &'static str,
    pub resource: String,
    pub target: String,
    pub status: Status,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub ms: u64,
    pub observed: Option<Observed>,
}

impl ActionReport {
    pub fn new(vhid: &str, kind: &'static str, resource: &str, target: String, status: Status) -> ActionReport {
        ActionReport {
            vhid: vhid.to_string(),
            kind,
            resource: resource.to_string(),
            target,
            status,
            reason: None,
            error: None,
            ms: 0,
            observed: None,
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> ActionReport {
        self.reason = Some(reason.into());
        self
    }

    pub fn failed(mut self, error: impl Into<String>) -> ActionReport {
        self.status = Status::Failed;
        self.error = Some(error.into());
        self
    }

    /// What AWS points at now, when observed.
    pub fn actual(&self) -> Option<&str> {
        self.observed.as_ref().and_then(|o| o.actual.as_deref())
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("vhid".into(), json!(self.vhid));
        o.insert("kind".into(), json!(self.kind));
        o.insert("resource".into(), json!(self.resource));
        o.insert("target".into(), json!(self.target));
        o.insert("status".into(), json!(self.status.as_str()));
        if let Some(r) = &self.reason {
            o.insert("reason".into(), json!(r));
        }
        if let Some(e) = &self.error {
            o.insert("error".into(), json!(e));
        }
        o.insert("ms".into(), json!(self.ms));
        if let Some(obs) = &self.observed {
            if let Some(state) = &obs.state {
                o.insert("state".into(), json!(state));
            }
            if let Some(desired) = &obs.desired {
                o.insert("desired".into(), json!(desired));
            }
            if let Some(actual) = &obs.actual {
                o.insert("actual".into(), json!(actual));
            }
            if let Some(w) = &obs.last_writer {
                o.insert(
                    "last_writer".into(),
                    json!({"instance": w.instance, "advbase": w.advbase, "advskew": w.advskew,
                           "at": format_rfc3339_millis(w.modified), "vhid": w.vhid}),
                );
            }
            if let Some(here) = obs.points_here {
                o.insert("points_here".into(), json!(here));
            }
            if let Some(in_sync) = obs.in_sync {
                o.insert("in_sync".into(), json!(in_sync));
            }
        }
        Value::Object(o)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitBrain {
    pub vhid: String,
    pub resource: String,
    pub by_instance: String,
    pub advbase: u32,
    pub advskew: u32,
    pub at: String,
    /// `reclaimed`, `deferred`, `failed` or `planned` (docs/contracts.md).
    pub resolution: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub level: Level,
    /// What the notice is about, the same from one run to the next while the condition lasts
    /// (`failed:wan@1:route:rtb-…`, `split_brain:wan@1:rtb-…`): the shim files a notice when a key
    /// appears and a "recovered" one when it goes, instead of one per run.
    pub key: String,
    /// The VHID the notice is about, when it is about one.
    pub vhid: Option<String>,
    pub message: String,
}

/// When the process started: the origin of a timeline's milliseconds.
static STARTED: OnceLock<std::time::Instant> = OnceLock::new();

/// Called first thing in `main`, so a timeline counts from the process's start.
pub fn mark_process_start() {
    STARTED.get_or_init(std::time::Instant::now);
}

/// What a failover did when, in milliseconds since the process started (docs/contracts.md §13): shared by
/// the command and its EC2 client, which adds each request sent and answered.
#[derive(Clone, Debug, Default)]
pub struct Timeline(Rc<RefCell<Vec<(u64, String)>>>);

impl Timeline {
    pub fn mark(&self, event: impl Into<String>) {
        let at = STARTED.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64;
        self.0.borrow_mut().push((at, event.into()));
    }

    pub fn events(&self) -> Vec<(u64, String)> {
        self.0.borrow().clone()
    }
}

/// A CARP VIP named by an awsha row, as reconcile and status report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VhidState {
    pub vhid: String,
    /// `MASTER`, `BACKUP`, `INIT` or `ABSENT`.
    pub state: String,
    /// status: the newest failover of this VHID in the history.
    pub last_failover: Option<LastFailover>,
}

/// A failover as the history remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastFailover {
    pub started: String,
    pub ms: u64,
    pub ok: bool,
    pub changed: usize,
    pub failed: usize,
}

/// One check of `awsha doctor`.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
    pub hint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One ENI-backed interface, for the GUI (`awsha interfaces`).
#[derive(Clone, Debug)]
pub struct EniInterface {
    pub interface: String,
    pub device: String,
    pub descr: String,
    pub eni: String,
    pub mac: String,
    pub subnet_id: Option<String>,
    pub subnet_cidr: Option<String>,
    pub ipv4s: Vec<String>,
    pub subnet_ipv6_cidrs: Vec<String>,
    pub ipv6s: Vec<String>,
}

/// A step of a failover plan: calls that run at the same time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanGroup {
    pub when: String,
    pub calls: Vec<String>,
}

/// What only one command reports, besides actions and notices.
#[derive(Clone, Debug, Default)]
pub enum Details {
    #[default]
    None,
    /// `validate`: every problem, one line each (empty when there is none).
    Problems(Vec<String>),
    /// `interfaces`: the ENI-backed interfaces, and the others with why they are not.
    Interfaces {
        enis: Vec<EniInterface>,
        /// `(interface, device, reason)`
        not_eni: Vec<(String, String, String)>,
    },
    /// `map-ip`: the mapped address and the local subnet it was mapped into.
    MappedIp { ip: String, subnet: String },
    /// `doctor`: every check.
    Checks(Vec<Check>),
    /// `failover --dry-run`: the calls it would make.
    Plan(Vec<PlanGroup>),
    /// `history`: the recorded runs, oldest first (printed as one JSON array).
    History(Vec<Value>),
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub command: &'static str,
    pub instance: Option<String>,
    pub actions: Vec<ActionReport>,
    pub split_brain: Vec<SplitBrain>,
    pub notices: Vec<Notice>,
    /// `reconcile` and `status`: every CARP VIP named by an awsha row, with its state.
    pub vhids: Option<Vec<VhidState>>,
    /// `failover`: what happened when.
    pub timeline: Option<Timeline>,
    /// Set for exit 2: usage, configuration or environment error; nothing changed in AWS.
    pub error: Option<String>,
    /// An API call that is not an action (CreateTags) failed, or doctor failed a check: exit 1
    /// like a failed action.
    pub call_failed: bool,
    pub details: Details,
    /// Lines for the human output that have no place in the JSON (headers, hints).
    pub text: Vec<String>,
    /// The command already put its actions in `text` (as a table).
    pub actions_in_text: bool,
}

/// A run that stopped before acting (exit 2): why, and this node's instance id when IMDS gave
/// it (a report carries `instance` whenever the run learnt it). Any error converts into one, so
/// command bodies use `?`.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub instance: Option<String>,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            error: e.into(),
            instance: None,
        }
    }
}

impl Failure {
    /// A failure after IMDS named this node: the report keeps its instance id.
    pub fn on(instance: &str, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            error: error.into(),
            instance: Some(instance.to_string()),
        }
    }
}

/// What a command returns: its report, or why it could not act.
pub type Outcome = Result<Report, Failure>;

impl Report {
    pub fn new(command: &'static str) -> Report {
        Report {
            command,
            ..Report::default()
        }
    }

    /// An exit-2 report. The error is one line whatever the input held, so logs and notices stay
    /// one entry per problem.
    pub fn fail(command: &'static str, error: impl Into<String>) -> Report {
        Report {
            command,
            error: Some(scrub(&error.into())),
            ..Report::default()
        }
    }

    /// The exit-2 report for a command that stopped with `failure`.
    pub fn from_failure(command: &'static str, failure: Failure) -> Report {
        let mut r = Report::fail(command, format!("{:#}", failure.error));
        r.instance = failure.instance;
        r
    }

    /// A notice about the run as a whole (`key` names the condition, e.g. `disabled`). Logged
    /// once, here, at its level.
    pub fn notice(&mut self, level: Level, key: impl Into<String>, message: impl Into<String>) {
        self.push_notice(level, key.into(), None, message.into());
    }

    /// A notice about one VHID; its key is `<what>:<vhid>[:<detail>]`. Logged once, here.
    pub fn vhid_notice(
        &mut self,
        level: Level,
        what: &str,
        vhid: &str,
        detail: Option<&str>,
        message: impl Into<String>,
    ) {
        let key = match detail {
            Some(d) => format!("{what}:{vhid}:{d}"),
            None => format!("{what}:{vhid}"),
        };
        self.push_notice(level, key, Some(vhid.to_string()), message.into());
    }

    fn push_notice(&mut self, level: Level, key: String, vhid: Option<String>, message: String) {
        log::log(level, &message);
        self.notices.push(Notice {
            level,
            key,
            vhid,
            message,
        });
    }

    /// A failed action becomes an error notice (every failed API action is a notice).
    pub fn notice_failed(&mut self, line: &ActionReport) {
        let msg = format!(
            "{} {}: {} {} {} failed: {}",
            self.command,
            line.vhid,
            line.kind,
            line.resource,
            line.target,
            line.error.as_deref().unwrap_or("")
        );
        let detail = format!("{}:{}", line.kind, line.resource);
        self.vhid_notice(Level::Error, "failed", &line.vhid, Some(&detail), msg);
    }

    /// Another run's part (one VHID of a reconcile) joins this report.
    pub fn absorb(&mut self, part: Report) {
        self.actions.extend(part.actions);
        self.split_brain.extend(part.split_brain);
        self.notices.extend(part.notices);
        self.call_failed |= part.call_failed;
    }

    /// 0 all done; 1 an AWS action failed; 2 nothing was changed because of bad input or
    /// environment.
    pub fn exit_code(&self) -> i32 {
        if self.error.is_some() {
            2
        } else if self.call_failed || self.actions.iter().any(|a| a.status == Status::Failed) {
            1
        } else {
            0
        }
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("command".into(), json!(self.command));
        o.insert("ok".into(), json!(self.exit_code() == 0));
        if let Some(i) = &self.instance {
            o.insert("instance".into(), json!(i));
        }
        if let Some(e) = &self.error {
            o.insert("error".into(), json!(e));
        }
        if let Some(v) = &self.vhids {
            o.insert(
                "vhids".into(),
                v.iter()
                    .map(|v| {
                        let mut o = json!({"vhid": v.vhid, "state": v.state});
                        if let Some(f) = &v.last_failover {
                            o["last_failover"] = json!({"started": f.started, "ms": f.ms, "ok": f.ok,
                                                        "changed": f.changed, "failed": f.failed});
                        }
                        o
                    })
                    .collect(),
            );
        }
        o.insert(
            "actions".into(),
            self.actions.iter().map(ActionReport::to_json).collect(),
        );
        o.insert(
            "split_brain".into(),
            self.split_brain
                .iter()
                .map(|s| {
                    json!({"vhid": s.vhid, "resource": s.resource, "by_instance": s.by_instance,
                           "advbase": s.advbase, "advskew": s.advskew, "at": s.at, "resolution": s.resolution})
                })
                .collect(),
        );
        o.insert(
            "notices".into(),
            self.notices
                .iter()
                .map(|n| {
                    let mut o = json!({"level": n.level.as_str(), "key": n.key, "message": n.message});
                    if let Some(v) = &n.vhid {
                        o["vhid"] = json!(v);
                    }
                    o
                })
                .collect(),
        );
        match &self.details {
            Details::None => {}
            Details::Problems(p) => {
                o.insert("problems".into(), json!(p));
            }
            Details::Interfaces { enis, not_eni } => {
                let enis: Vec<Value> = enis
                    .iter()
                    .map(|e| {
                        json!({"interface": e.interface, "device": e.device, "descr": e.descr,
                               "eni": e.eni, "mac": e.mac, "subnet_id": e.subnet_id,
                               "subnet_cidr": e.subnet_cidr, "ipv4s": e.ipv4s,
                               "subnet_ipv6_cidrs": e.subnet_ipv6_cidrs, "ipv6s": e.ipv6s})
                    })
                    .collect();
                let others: Vec<Value> = not_eni
                    .iter()
                    .map(|(i, d, r)| json!({"interface": i, "device": d, "reason": r}))
                    .collect();
                o.insert("interfaces".into(), json!(enis));
                o.insert("not_eni".into(), json!(others));
            }
            Details::MappedIp { ip, subnet } => {
                o.insert("ip".into(), json!(ip));
                o.insert("subnet".into(), json!(subnet));
            }
            Details::Checks(checks) => {
                o.insert(
                    "checks".into(),
                    checks
                        .iter()
                        .map(|c| json!({"name": c.name, "status": c.status.as_str(), "detail": c.detail, "hint": c.hint}))
                        .collect(),
                );
            }
            Details::History(_) => {}
            Details::Plan(groups) => {
                o.insert(
                    "plan".into(),
                    groups
                        .iter()
                        .map(|g| json!({"when": g.when, "calls": g.calls}))
                        .collect(),
                );
            }
        }
        if let Some(t) = &self.timeline {
            o.insert(
                "timeline".into(),
                t.events()
                    .into_iter()
                    .map(|(at, event)| json!({"at_ms": at, "event": event}))
                    .collect(),
            );
        }
        Value::Object(o)
    }

    /// What `--json` prints: the report object, or for `history` the array of recorded runs.
    pub fn to_json_output(&self) -> Value {
        match &self.details {
            Details::History(runs) if self.error.is_none() => Value::Array(runs.clone()),
            _ => self.to_json(),
        }
    }

    /// The operator's view: a header, one aligned line per action, split brains and notices.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.error {
            let _ = writeln!(out, "awsha {}: error: {e}", self.command);
            return out;
        }
        for line in &self.text {
            let _ = writeln!(out, "{line}");
        }
        if let Some(vhids) = self.vhids.as_ref().filter(|_| !self.actions_in_text) {
            for v in vhids {
                let _ = writeln!(out, "{:<12} {}", v.vhid, v.state);
            }
        }
        if !self.actions.is_empty() && !self.actions_in_text {
            let w_res = self.actions.iter().map(|a| a.resource.len()).max().unwrap_or(0);
            let w_tgt = self.actions.iter().map(|a| a.target.len()).max().unwrap_or(0);
            let w_vhid = self.actions.iter().map(|a| a.vhid.len()).max().unwrap_or(0);
            for a in &self.actions {
                let mut line = format!(
                    "  {:<w_vhid$}  {:<5}  {:<w_res$}  {:<w_tgt$}  {:<9} {:>5} ms",
                    a.vhid,
                    a.kind,
                    a.resource,
                    a.target,
                    a.status.as_str(),
                    a.ms
                );
                if let Some(r) = &a.reason {
                    let _ = write!(line, "  ({r})");
                }
                if let Some(e) = &a.error {
                    let _ = write!(line, "  {e}");
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        for s in &self.split_brain {
            let _ = writeln!(
                out,
                "split brain: {} {} changed by {} (advbase {} advskew {}) at {}: {}",
                s.vhid, s.resource, s.by_instance, s.advbase, s.advskew, s.at, s.resolution
            );
        }
        for n in &self.notices {
            let _ = writeln!(out, "{}: {}", n.level.as_str(), n.message);
        }
        let failed = self.actions.iter().filter(|a| a.status == Status::Failed).count();
        if failed > 0 {
            let _ = writeln!(out, "{failed} of {} actions failed", self.actions.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_fixed_fields_and_ok_follows_the_exit_code() {
        let mut r = Report::new("failover");
        r.instance = Some("i-0123456789abcdef0".into());
        r.actions.push(ActionReport::new(
            "wan@1",
            "ip",
            "eni-0aa",
            "10.0.1.10".into(),
            Status::Changed,
        ));
        let v = r.to_json();
        assert_eq!(v["ok"], true);
        assert_eq!(v["actions"][0]["status"], "changed");
        assert!(v["actions"][0]["ms"].is_u64());
        assert!(v["split_brain"].as_array().unwrap().is_empty());
        r.actions
            .push(ActionReport::new("wan@1", "route", "rtb-1", "x".into(), Status::Planned).failed("Boom: no"));
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.to_json()["ok"], false);
        assert_eq!(r.to_json()["actions"][1]["error"], "Boom: no");
    }

    #[test]
    fn notices_carry_a_key_that_outlives_the_run() {
        let mut r = Report::new("reconcile");
        let line = ActionReport::new("wan@1", "route", "rtb-1", "0.0.0.0/0 -> eni-1".into(), Status::Failed)
            .failed("RequestLimitExceeded: slow down (request id 1)");
        r.notice_failed(&line);
        r.notice(Level::Info, "disabled", "switched off");
        let v = r.to_json();
        assert_eq!(v["notices"][0]["key"], "failed:wan@1:route:rtb-1");
        assert_eq!(v["notices"][0]["vhid"], "wan@1");
        assert!(
            v["notices"][0]["message"]
                .as_str()
                .unwrap()
                .contains("RequestLimitExceeded")
        );
        assert_eq!(v["notices"][1]["key"], "disabled");
        assert!(v["notices"][1].get("vhid").is_none());
    }

    #[test]
    fn exit_2_report_has_error_and_no_instance() {
        let r = Report::fail("failover", "config.xml: malformed XML");
        assert_eq!(r.exit_code(), 2);
        let v = r.to_json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"], "config.xml: malformed XML");
        assert!(v.get("instance").is_none());
        assert!(r.to_text().contains("error: config.xml"));
    }
}
