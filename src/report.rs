//! The outcome of a run: the JSON report of design.md §3.1 (the shim and monitoring read it) and
//! the same facts as text for an operator.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

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
    /// Extra fields some commands add (status: `actual`, `in_sync`, `last_writer`).
    pub extra: Map<String, Value>,
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
            extra: Map::new(),
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
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
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
    /// `reclaimed`, `deferred`, `failed` or `planned` (design.md §10.1).
    pub resolution: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// `error`, `warning` or `info`.
    pub level: &'static str,
    /// What the notice is about, the same from one run to the next while the condition lasts
    /// (`failed:wan@1:route:rtb-…`, `split_brain:wan@1:rtb-…`): the shim files a notice when a key
    /// appears and a "recovered" one when it goes, instead of one per run.
    pub key: String,
    /// The VHID the notice is about, when it is about one.
    pub vhid: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub command: &'static str,
    pub instance: Option<String>,
    pub actions: Vec<ActionReport>,
    pub split_brain: Vec<SplitBrain>,
    pub notices: Vec<Notice>,
    /// `reconcile` and `status`: every CARP VIP named by an awsha row, with its state.
    pub vhids: Option<Vec<(String, String)>>,
    /// Set for exit 2: usage, configuration or environment error; nothing changed in AWS.
    pub error: Option<String>,
    /// An API call that is not an action (CreateTags) failed: exit 1 like a failed action.
    pub call_failed: bool,
    /// Command-specific fields (validate's `problems`, interfaces' `interfaces`, …).
    pub extra: Map<String, Value>,
    /// Lines for the human output that have no place in the JSON (headers, hints).
    pub text: Vec<String>,
    /// The command already put its actions in `text` (as a table).
    pub actions_in_text: bool,
}

impl Report {
    pub fn new(command: &'static str) -> Report {
        Report {
            command,
            ..Report::default()
        }
    }

    /// An exit-2 report. The error is one line whatever the input held (control characters
    /// become `?`), so logs and notices stay one entry per problem.
    pub fn fail(command: &'static str, error: impl Into<String>) -> Report {
        let error = error
            .into()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        Report {
            command,
            error: Some(error),
            ..Report::default()
        }
    }

    /// A notice about the run as a whole (`key` names the condition, e.g. `disabled`).
    pub fn notice(&mut self, level: &'static str, key: impl Into<String>, message: impl Into<String>) {
        self.notices.push(Notice {
            level,
            key: key.into(),
            vhid: None,
            message: message.into(),
        });
    }

    /// A notice about one VHID; its key is `<what>:<vhid>[:<detail>]`.
    pub fn vhid_notice(
        &mut self,
        level: &'static str,
        what: &str,
        vhid: &str,
        detail: Option<&str>,
        message: impl Into<String>,
    ) {
        let key = match detail {
            Some(d) => format!("{what}:{vhid}:{d}"),
            None => format!("{what}:{vhid}"),
        };
        self.notices.push(Notice {
            level,
            key,
            vhid: Some(vhid.to_string()),
            message: message.into(),
        });
    }

    /// A failed action becomes an error notice and a log line (design.md: every failed API
    /// action is a notice).
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
        crate::log::error(&msg);
        let detail = format!("{}:{}", line.kind, line.resource);
        self.vhid_notice("error", "failed", &line.vhid, Some(&detail), msg);
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
                    .map(|(vhid, state)| json!({"vhid": vhid, "state": state}))
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
                    let mut o = json!({"level": n.level, "key": n.key, "message": n.message});
                    if let Some(v) = &n.vhid {
                        o["vhid"] = json!(v);
                    }
                    o
                })
                .collect(),
        );
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        Value::Object(o)
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
            for (vhid, state) in vhids {
                let _ = writeln!(out, "{vhid:<12} {state}");
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
            let _ = writeln!(out, "{}: {}", n.level, n.message);
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
        r.notice("info", "disabled", "switched off");
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
