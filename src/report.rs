//! The one place that owns check status, exit codes and output formats.
//!
//! Checks produce an [`Outcome`] (a [`Verdict`] plus the facts behind it); this module turns it into
//! the monitoring-plugins text line or the JSON object, and into Consul's exit code.

use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Consul/keepalived health of a check run, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Exit 0: the node belongs in the service's pool.
    Passing,
    /// Exit 1 (or `--warning-exit-code`): still in the pool for Consul DNS, but something needs a look.
    Warning,
    /// Exit 2: the node is out of the pool.
    Critical,
}

impl Status {
    /// The word the monitoring-plugins put after the check name.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passing => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        }
    }

    /// Consul's exit code for this status; warning maps to `warning_exit_code`.
    pub fn exit_code(self, warning_exit_code: u8) -> i32 {
        match self {
            Status::Passing => 0,
            Status::Warning => i32::from(warning_exit_code),
            Status::Critical => 2,
        }
    }
}

/// What a decision function concludes: a status, a one-line summary and the rules that decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Passing, warning or critical.
    pub status: Status,
    /// One line for the operator, without the check name or status word.
    pub summary: String,
    /// Each rule that decided, worst first, in words.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// A verdict with the given status and summary and no reasons yet.
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Verdict { status, summary: summary.into(), reasons: Vec::new() }
    }

    /// A passing verdict.
    pub fn passing(summary: impl Into<String>) -> Self {
        Self::new(Status::Passing, summary)
    }

    /// A critical verdict.
    pub fn critical(summary: impl Into<String>) -> Self {
        Self::new(Status::Critical, summary)
    }

    /// Adds a reason (a rule that decided).
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reasons.push(reason.into());
        self
    }

    /// Makes the status `status` if that is worse (never better), adding the reason.
    pub fn worsen_to(mut self, status: Status, reason: impl Into<String>) -> Self {
        self.status = self.status.max(status);
        self.reasons.push(reason.into());
        self
    }

    /// Replaces the summary line (the status and reasons stay).
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Adds every reason of `reasons`, in order.
    pub fn because_all(mut self, reasons: impl IntoIterator<Item = String>) -> Self {
        self.reasons.extend(reasons);
        self
    }
}

/// One performance-data item, `label=value[unit];warn;crit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Perfdata {
    /// The metric name.
    pub label: &'static str,
    /// The measured value.
    pub value: i64,
    /// Unit of measure (`s` or empty).
    pub unit: &'static str,
    /// Warning range in monitoring-plugins syntax, if any.
    pub warn: Option<String>,
    /// Critical range in monitoring-plugins syntax, if any.
    pub crit: Option<String>,
}

impl Perfdata {
    /// A perfdata item with no thresholds.
    pub fn new(label: &'static str, value: i64, unit: &'static str) -> Self {
        Perfdata { label, value, unit, warn: None, crit: None }
    }

    /// A count that warns below `min` (`label=3;2:`); no threshold when `min` is 0.
    pub fn count_with_min(label: &'static str, value: i64, min: u32) -> Self {
        Perfdata { warn: (min > 0).then(|| format!("{min}:")), ..Self::new(label, value, "") }
    }

    /// A replication lag in seconds, critical above `max_lag` when one is set (`lag=3s;;120`).
    pub fn lag(lag_seconds: i64, max_lag: Option<std::time::Duration>) -> Self {
        Perfdata { crit: max_lag.map(|d| seconds_value(d).to_string()), ..Self::new("lag", lag_seconds, "s") }
    }

    fn render(&self) -> String {
        let value = format!("{}={}{}", self.label, self.value, self.unit);
        let mut fields = vec![value.as_str(), self.warn.as_deref().unwrap_or(""), self.crit.as_deref().unwrap_or("")];
        while fields.len() > 1 && fields.last() == Some(&"") {
            fields.pop();
        }
        fields.join(";")
    }
}

/// Observed values that led to a verdict, kept in the order they are shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts(Vec<(String, Value)>);

impl Facts {
    /// No facts yet.
    pub fn new() -> Self {
        Facts(Vec::new())
    }

    /// Adds or replaces a fact.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
        self
    }

    fn to_json(&self) -> Value {
        Value::Object(self.0.iter().cloned().collect::<Map<String, Value>>())
    }
}

/// What a check hands back: the verdict and what it saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The decision.
    pub verdict: Verdict,
    /// The observed values behind it.
    pub facts: Facts,
    /// Numbers for graphs.
    pub perfdata: Vec<Perfdata>,
}

impl Outcome {
    /// An outcome with no facts (errors, usage problems).
    pub fn bare(verdict: Verdict) -> Self {
        Outcome { verdict, facts: Facts::new(), perfdata: Vec::new() }
    }
}

/// Output format chosen with `--format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// monitoring-plugins style text.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// A finished check run, ready to print.
#[derive(Clone, Debug)]
pub struct Report {
    /// Check name, e.g. `redis-slave`.
    pub check: &'static str,
    /// `host:port` or socket path of the server checked.
    pub target: String,
    /// The verdict, facts and perfdata.
    pub outcome: Outcome,
    /// Advice that does not change the status (e.g. a password on the command line).
    pub notes: Vec<String>,
    /// Exit code used for a warning.
    pub warning_exit_code: u8,
}

/// Consul keeps 4 KiB of check output; we stay under it.
pub const MAX_OUTPUT_BYTES: usize = 4000;

impl Report {
    /// The process exit code for this report.
    pub fn exit_code(&self) -> i32 {
        self.outcome.verdict.status.exit_code(self.warning_exit_code)
    }

    /// Renders the report in the chosen format, newline-terminated.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.render_text(),
            Format::Json => self.render_json(),
        }
    }

    /// monitoring-plugins text: status line with perfdata, then reasons, facts and notes.
    pub fn render_text(&self) -> String {
        let v = &self.outcome.verdict;
        let mut first = format!("{} {}: {}", self.check.to_uppercase(), v.status.label(), one_line(&v.summary));
        if !self.outcome.perfdata.is_empty() {
            let perf: Vec<String> = self.outcome.perfdata.iter().map(Perfdata::render).collect();
            let _ = write!(first, " | {}", perf.join(" "));
        }
        // Long lines are shortened rather than dropped: the status line and the deciding reasons,
        // which come first, always fit.
        let mut lines = vec![shorten(first, MAX_FIRST_LINE)];
        lines.extend(v.reasons.iter().map(|r| shorten(format!("- {}", one_line(r)), MAX_LINE)));
        lines.extend(self.outcome.facts.0.iter().map(|(k, val)| shorten(format!("{k}: {}", one_line(&text_value(val))), MAX_LINE)));
        lines.extend(self.notes.iter().map(|n| shorten(format!("note: {}", one_line(n)), MAX_LINE)));
        fit_lines(lines, MAX_OUTPUT_BYTES)
    }

    /// The JSON object of the README: check, status, exit_code, summary, target, reasons, facts,
    /// perfdata, notes. Under [`MAX_OUTPUT_BYTES`] and always valid: long lists are summarised with
    /// a count and long strings shortened, facts first, the deciding reasons last.
    pub fn render_json(&self) -> String {
        let v = &self.outcome.verdict;
        let perfdata: Map<String, Value> = self.outcome.perfdata.iter().map(|p| (p.label.to_string(), Value::from(p.value))).collect();
        let mut obj = serde_json::json!({
            "check": self.check,
            "status": v.status,
            "exit_code": self.exit_code(),
            "summary": v.summary,
            "target": self.target,
            "reasons": v.reasons,
            "facts": self.outcome.facts.to_json(),
            "perfdata": perfdata,
            "notes": self.notes,
        });
        let fits = |o: &Value| o.to_string().len() < MAX_OUTPUT_BYTES;
        let steps: [(&str, usize, usize); 4] = [("facts", 5, 200), ("facts", 2, 80), ("reasons", 3, 300), ("notes", 1, 200)];
        for (field, items, chars) in steps {
            if fits(&obj) {
                break;
            }
            summarise(&mut obj[field], items, chars);
        }
        if !fits(&obj) {
            obj["facts"] = serde_json::json!({"omitted": "the facts do not fit in 4 KiB"});
            obj["summary"] = Value::from(shorten(v.summary.clone(), 1000));
            obj["target"] = Value::from(shorten(self.target.clone(), 200));
            obj["notes"] = Value::Array(Vec::new());
        }
        if !fits(&obj) {
            obj["reasons"] = Value::Array(Vec::new());
        }
        format!("{obj}\n")
    }
}

/// Seconds as a JSON number: whole seconds as an integer (`30`), otherwise fractional (`2.5`).
pub fn seconds_value(d: std::time::Duration) -> Value {
    if d.subsec_nanos() == 0 {
        Value::from(d.as_secs())
    } else {
        Value::from(d.as_secs_f64())
    }
}

/// Longest status line kept whole.
const MAX_FIRST_LINE: usize = 1500;
/// Longest reason, fact or note line kept whole.
const MAX_LINE: usize = 500;

/// Cuts `line` to at most `max` bytes (on a character boundary), marking the cut.
fn shorten(line: String, max: usize) -> String {
    if line.len() <= max {
        return line;
    }
    let mut cut = max.saturating_sub(4);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ...", &line[..cut])
}

/// Shortens a JSON value in place: arrays beyond `items` become the first ones plus a count,
/// strings beyond `chars` bytes are cut, recursively.
fn summarise(v: &mut Value, items: usize, chars: usize) {
    match v {
        Value::String(s) if s.len() > chars => *s = shorten(std::mem::take(s), chars),
        Value::Array(list) => {
            if list.len() > items {
                let more = list.len() - items;
                list.truncate(items);
                list.push(Value::from(format!("... and {more} more")));
            }
            list.iter_mut().for_each(|x| summarise(x, items, chars));
        }
        Value::Object(map) => map.values_mut().for_each(|x| summarise(x, items, chars)),
        _ => {}
    }
}

/// Keeps a value on one output line (servers may send anything).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Human rendering of a fact value: strings bare, lists joined, objects as `k=v`.
fn text_value(v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) => items.iter().map(text_value).collect::<Vec<_>>().join("; "),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", text_value(v))).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Joins lines, dropping trailing ones (with a marker) to stay under `limit` bytes.
fn fit_lines(lines: Vec<String>, limit: usize) -> String {
    let mut out = String::new();
    let total = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let marker = format!("... ({} more lines cut)\n", total - i);
        if out.len() + line.len() + 1 + marker.len() > limit {
            if i == 0 {
                let mut cut = limit.saturating_sub(marker.len() + 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(&line[..cut]);
                out.push('\n');
            }
            out.push_str(&marker);
            return out;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status) -> Report {
        let mut facts = Facts::new();
        facts.set("role", "slave").set("lag_seconds", 3).set("replicas", Value::Array(vec![]));
        Report {
            check: "redis-slave",
            target: "127.0.0.1:6029".into(),
            outcome: Outcome {
                verdict: Verdict::new(status, "replica of 10.0.0.2:6029, link up").because("link is up"),
                facts,
                perfdata: vec![Perfdata { label: "lag", value: 3, unit: "s", warn: None, crit: Some("120".into()) }],
            },
            notes: vec![],
            warning_exit_code: 1,
        }
    }

    #[test]
    fn exit_codes_follow_consul() {
        assert_eq!(Status::Passing.exit_code(1), 0);
        assert_eq!(Status::Warning.exit_code(1), 1);
        assert_eq!(Status::Warning.exit_code(0), 0);
        assert_eq!(Status::Critical.exit_code(0), 2);
    }

    #[test]
    fn text_has_plugin_status_line_and_facts() {
        let text = report(Status::Passing).render_text();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("REDIS-SLAVE OK: replica of 10.0.0.2:6029, link up | lag=3s;;120"));
        assert_eq!(lines.next(), Some("- link is up"));
        assert_eq!(lines.next(), Some("role: slave"));
        assert_eq!(lines.next(), Some("lag_seconds: 3"));
        assert_eq!(lines.next(), Some("replicas: none"));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn json_has_the_spec_fields() {
        let v: Value = serde_json::from_str(&report(Status::Warning).render_json()).unwrap();
        assert_eq!(v["check"], "redis-slave");
        assert_eq!(v["status"], "warning");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["target"], "127.0.0.1:6029");
        assert_eq!(v["reasons"][0], "link is up");
        assert_eq!(v["facts"]["lag_seconds"], 3);
        assert_eq!(v["perfdata"]["lag"], 3);
    }

    #[test]
    fn text_stays_under_consul_limit_and_on_its_lines() {
        let mut r = report(Status::Critical);
        for i in 0..500 {
            r.outcome.facts.set(&format!("fact{i}"), "x".repeat(40) + "\r\nINJECTED");
        }
        let text = r.render_text();
        assert!(text.len() <= MAX_OUTPUT_BYTES, "{} bytes", text.len());
        assert!(text.starts_with("REDIS-SLAVE CRITICAL: "));
        assert!(text.trim_end().ends_with("more lines cut)"));
        assert!(!text.lines().any(|l| l.starts_with("INJECTED")));
        let huge = Report { outcome: Outcome::bare(Verdict::critical("y".repeat(9000))), ..report(Status::Critical) };
        assert!(huge.render_text().len() <= MAX_OUTPUT_BYTES);
    }

    /// Thousands of replicas or Sentinels, huge reasons: text keeps the deciding reason (shortened),
    /// JSON stays valid and under the cap, with a count of what was left out.
    #[test]
    fn long_lists_are_summarised_in_both_formats() {
        let mut r = report(Status::Critical);
        r.outcome.facts.set(
            "connected_replicas",
            Value::Array((0..5000).map(|i| Value::from(format!("10.0.{}.{}:6029", i / 256, i % 256))).collect()),
        );
        r.outcome.verdict.reasons = vec!["the deciding reason ".to_string() + &"z".repeat(3000), "second".into()];
        let text = r.render_text();
        assert!(text.len() <= MAX_OUTPUT_BYTES);
        assert!(text.lines().nth(1).unwrap().starts_with("- the deciding reason zzz") && text.contains(" ..."), "{text}");
        let json = r.render_json();
        assert!(json.len() <= MAX_OUTPUT_BYTES, "{} bytes", json.len());
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["status"], "critical");
        assert!(v["reasons"][0].as_str().unwrap().starts_with("the deciding reason"), "{json}");
        assert!(v["facts"]["connected_replicas"].to_string().contains("more"), "{json}");
        r.outcome.verdict.summary = "s".repeat(20_000);
        r.target = "t".repeat(20_000);
        let json = r.render_json();
        assert!(json.len() <= MAX_OUTPUT_BYTES && serde_json::from_str::<Value>(&json).is_ok(), "{} bytes", json.len());
    }

    #[test]
    fn perfdata_thresholds() {
        assert_eq!(Perfdata::count_with_min("replicas", 3, 2).render(), "replicas=3;2:");
        assert_eq!(Perfdata::count_with_min("replicas", 3, 0).render(), "replicas=3");
        assert_eq!(Perfdata::lag(3, Some(std::time::Duration::from_secs(120))).render(), "lag=3s;;120");
        assert_eq!(Perfdata::lag(3, Some(std::time::Duration::from_millis(2500))).render(), "lag=3s;;2.5");
        assert_eq!(Perfdata::lag(0, None).render(), "lag=0s");
    }

    #[test]
    fn worsen_to_never_improves_a_verdict() {
        let v = Verdict::critical("x").worsen_to(Status::Warning, "w");
        assert_eq!(v.status, Status::Critical);
        assert_eq!(v.reasons, vec!["w".to_string()]);
    }
}
