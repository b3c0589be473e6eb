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
    /// The word JSON output and Consul use: `passing`, `warning`, `critical`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    /// The word the monitoring-plugins put after the check name.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passing => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        }
    }

    /// How Consul reads a check's exit code: 0 passing, 1 warning, anything else (or killed by a
    /// signal, or at its timeout: `None`) critical.
    pub fn of_exit_code(code: Option<i32>) -> Status {
        match code {
            Some(0) => Status::Passing,
            Some(1) => Status::Warning,
            _ => Status::Critical,
        }
    }

    /// How Consul and HAProxy read an HTTP check's answer (serve-checks'): 200 passing, 429
    /// warning, anything else critical.
    pub fn of_http_status(status: u16) -> Status {
        match status {
            200 => Status::Passing,
            429 => Status::Warning,
            _ => Status::Critical,
        }
    }

    /// The status's HTTP answer: the inverse of [`Status::of_http_status`].
    pub fn http_status(self) -> u16 {
        match self {
            Status::Passing => 200,
            Status::Warning => 429,
            Status::Critical => 503,
        }
    }

    /// The pool rule: a node is in its service's pool unless its check is critical. Consul DNS
    /// answers with passing and warning instances, HAProxy keeps 200 and 429, keepalived gets
    /// warning as exit 0 (`--warning-exit-code 0`): a warning node serves.
    pub fn in_pool(self) -> bool {
        self != Status::Critical
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

/// A limit on a measured value, as a monitoring-plugins range (`lib/thresholds.h`): a value outside
/// the range alerts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Range {
    /// `N:`: alerts below N.
    AtLeast(f64),
    /// `N`: alerts outside 0..=N (above N, or negative: "unknown" in the servers' replies).
    UpTo(f64),
}

impl Range {
    /// Whether `value` is inside the range (does not alert).
    fn contains(self, value: f64) -> bool {
        match self {
            Range::AtLeast(min) => value >= min,
            Range::UpTo(max) => (0.0..=max).contains(&value),
        }
    }

    /// The range in plugin syntax: `2:`, `120`, `2.5`.
    fn render(self) -> String {
        let number = |n: f64| if n.fract() == 0.0 && n.abs() < 9e15 { format!("{}", n as i64) } else { Value::from(n).to_string() };
        match self {
            Range::AtLeast(min) => format!("{}:", number(min)),
            Range::UpTo(max) => number(max),
        }
    }
}

/// The warning and critical limits of one measured value, declared once: the perfdata shows them
/// and the check's status comes from them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Thresholds {
    warn: Option<Range>,
    crit: Option<Range>,
}

impl Thresholds {
    /// No limit: any value passes.
    pub fn none() -> Self {
        Thresholds::default()
    }

    /// Warning below `min` (`--min-replicas`); no limit when `min` is 0.
    pub fn warn_below(min: u32) -> Self {
        Thresholds { warn: (min > 0).then_some(Range::AtLeast(f64::from(min))), crit: None }
    }

    /// Critical above `max` (`--max-lag`); no limit when `None`.
    pub fn crit_above(max: Option<std::time::Duration>) -> Self {
        Thresholds { warn: None, crit: max.map(|d| Range::UpTo(d.as_secs_f64())) }
    }

    /// Critical above `max` of a count (`--max-lag-bytes`).
    pub fn crit_above_count(max: u64) -> Self {
        Thresholds { warn: None, crit: Some(Range::UpTo(max as f64)) }
    }

    /// The status of `value` against the limits. A value not measured (`None`) is as bad as the
    /// worst limit declared: a fact the decision needs and did not get never passes a limit.
    pub fn status(&self, value: Option<f64>) -> Status {
        let alerts = |range: Option<Range>| range.is_some_and(|r| !value.is_some_and(|v| r.contains(v)));
        if alerts(self.crit) {
            Status::Critical
        } else if alerts(self.warn) {
            Status::Warning
        } else {
            Status::Passing
        }
    }
}

/// One performance-data item, `label=value[unit];warn;crit`, with the limits its status comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Perfdata {
    label: &'static str,
    value: i64,
    unit: &'static str,
    thresholds: Thresholds,
}

impl Perfdata {
    /// The value's status against its thresholds.
    pub fn status(&self) -> Status {
        self.thresholds.status(Some(self.value as f64))
    }

    fn render(&self) -> String {
        let value = format!("{}={}{}", self.label, self.value, self.unit);
        let (warn, crit) = (self.thresholds.warn.map(Range::render), self.thresholds.crit.map(Range::render));
        let mut fields = vec![value.as_str(), warn.as_deref().unwrap_or(""), crit.as_deref().unwrap_or("")];
        while fields.len() > 1 && fields.last() == Some(&"") {
            fields.pop();
        }
        fields.join(";")
    }
}

/// One rule a check evaluated (monitoring-plugins' `mp_subcheck`): its status, the line that says
/// it, the value it measured, and the subchecks it sums up (each probed replica of a master).
#[derive(Clone, Debug, PartialEq)]
pub struct Subcheck {
    status: Status,
    line: Option<String>,
    perfdata: Option<Perfdata>,
    children: Vec<Subcheck>,
}

impl Subcheck {
    /// A rule with the given status, said by `line`.
    pub fn new(status: Status, line: impl Into<String>) -> Self {
        Subcheck { line: Some(line.into()), ..Self::headline(status) }
    }

    /// A rule that passed.
    pub fn passing(line: impl Into<String>) -> Self {
        Self::new(Status::Passing, line)
    }

    /// A rule that asks for a look.
    pub fn warning(line: impl Into<String>) -> Self {
        Self::new(Status::Warning, line)
    }

    /// A rule that takes the node out of the pool.
    pub fn critical(line: impl Into<String>) -> Self {
        Self::new(Status::Critical, line)
    }

    /// A rule with no line of its own: the verdict's summary says it.
    pub fn headline(status: Status) -> Self {
        Subcheck { status, line: None, perfdata: None, children: Vec::new() }
    }

    /// A measured value against its thresholds: its status is theirs (a value not measured, `None`,
    /// is as bad as the worst limit); shown as perfdata when measured; no line until [`Subcheck::saying`].
    pub fn measured(label: &'static str, value: Option<i64>, unit: &'static str, thresholds: Thresholds) -> Self {
        let perfdata = value.map(|value| Perfdata { label, value, unit, thresholds });
        let status = perfdata.as_ref().map_or_else(|| thresholds.status(None), Perfdata::status);
        Subcheck { status, perfdata, ..Self::headline(status) }
    }

    /// The same rule, said by `line`.
    pub fn saying(mut self, line: impl Into<String>) -> Self {
        self.line = Some(line.into());
        self
    }

    /// The same rule summing up `children`, shown after its own line. Its status stays its own:
    /// the rule decides what its children's states mean (a master is out of the read pool when
    /// one of its replicas is healthy).
    pub fn summing_up(mut self, children: impl IntoIterator<Item = Subcheck>) -> Self {
        self.children.extend(children);
        self
    }

    /// Passing, warning or critical.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The first line, its own or a child's, of a subcheck with `status`.
    fn first_line_of(&self, status: Status) -> Option<&str> {
        match (&self.line, self.status == status) {
            (Some(line), true) => Some(line),
            _ => self.children.iter().find_map(|c| c.first_line_of(status)),
        }
    }

    /// Its lines, then its children's, in order.
    fn lines<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.line.as_deref());
        self.children.iter().for_each(|c| c.lines(out));
    }

    /// Its perfdata, then its children's, in order.
    fn perfdata<'a>(&'a self, out: &mut Vec<&'a Perfdata>) {
        out.extend(self.perfdata.as_ref());
        self.children.iter().for_each(|c| c.perfdata(out));
    }
}

/// What a decision function concludes (monitoring-plugins' `mp_check`): a one-line summary and the
/// subchecks that decided. The status is the worst of the subchecks'.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    summary: String,
    subchecks: Vec<Subcheck>,
}

impl Verdict {
    /// A verdict summed up by `summary` (without the check name or status word), decided by `subchecks`.
    pub fn new(summary: impl Into<String>, subchecks: impl IntoIterator<Item = Subcheck>) -> Self {
        Verdict { summary: summary.into(), subchecks: subchecks.into_iter().collect() }
    }

    /// A critical verdict that its summary says all of: an error, a usage problem.
    pub fn failed(summary: impl Into<String>) -> Self {
        Self::new(summary, [Subcheck::headline(Status::Critical)])
    }

    /// Adds a subcheck after the others.
    pub fn and(mut self, subcheck: Subcheck) -> Self {
        self.subchecks.push(subcheck);
        self
    }

    /// Replaces the summary line (the subchecks stay).
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// The worst status of the subchecks; critical when there is none (a verdict that decided
    /// nothing fails closed).
    pub fn status(&self) -> Status {
        self.subchecks.iter().map(Subcheck::status).max().unwrap_or(Status::Critical)
    }

    /// The one-line summary. A warning's says why: the first warning rule's line follows the
    /// summary unless the summary already says it (a pager shows the first line only).
    pub fn summary(&self) -> std::borrow::Cow<'_, str> {
        if self.status() != Status::Warning {
            return std::borrow::Cow::Borrowed(&self.summary);
        }
        match self.subchecks.iter().find_map(|s| s.first_line_of(Status::Warning)) {
            Some(why) if !self.summary.contains(why) => std::borrow::Cow::Owned(format!("{}; {why}", self.summary)),
            _ => std::borrow::Cow::Borrowed(&self.summary),
        }
    }

    /// The subchecks' lines (the rules that decided, in words), in order.
    pub fn reasons(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.subchecks.iter().for_each(|s| s.lines(&mut out));
        out
    }

    /// The subchecks' measured values, in order.
    pub fn perfdata(&self) -> Vec<&Perfdata> {
        let mut out = Vec::new();
        self.subchecks.iter().for_each(|s| s.perfdata(&mut out));
        out
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

    /// A fact by name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
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
    verdict: Verdict,
    facts: Facts,
    /// Lines the text output shows instead of the facts (one per node, for a check of many): JSON
    /// keeps the facts.
    table: Vec<String>,
}

impl Outcome {
    /// The verdict and the observed values behind it.
    pub fn new(verdict: Verdict, facts: Facts) -> Self {
        Outcome { verdict, facts, table: Vec::new() }
    }

    /// The same, shown in text as `table` (a line each) instead of its facts.
    pub fn with_table(mut self, table: Vec<String>) -> Self {
        self.table = table;
        self
    }

    /// An outcome with no facts (errors, usage problems).
    pub fn bare(verdict: Verdict) -> Self {
        Self::new(verdict, Facts::new())
    }

    /// The decision.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
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
    check: &'static str,
    /// `host:port` or socket path of the server checked.
    target: String,
    outcome: Outcome,
    /// Advice that does not change the status (e.g. a password on the command line).
    notes: Vec<String>,
    warning_exit_code: u8,
    /// The text output's cap: [`MAX_OUTPUT_BYTES`], none at a terminal.
    text_limit: usize,
}

/// Consul keeps 4 KiB of check output; we stay under it.
pub const MAX_OUTPUT_BYTES: usize = 4000;

impl Report {
    /// The facts behind the verdict.
    pub fn facts(&self) -> &Facts {
        &self.outcome.facts
    }

    /// The report of check `check` (`redis-slave`) on `target` (`host:port`, a socket path), with
    /// no notes and warnings exiting 1.
    pub fn new(check: &'static str, target: impl Into<String>, outcome: Outcome) -> Self {
        Report { check, target: target.into(), outcome, notes: Vec::new(), warning_exit_code: 1, text_limit: MAX_OUTPUT_BYTES }
    }

    /// Adds advice that does not change the status (a password on the command line).
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }

    /// The exit code of a warning (`--warning-exit-code`).
    pub fn with_warning_exit_code(mut self, code: u8) -> Self {
        self.warning_exit_code = code;
        self
    }

    /// Passing, warning or critical.
    pub fn status(&self) -> Status {
        self.outcome.verdict.status()
    }

    /// The process exit code for this report.
    pub fn exit_code(&self) -> i32 {
        self.status().exit_code(self.warning_exit_code)
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
        let mut first = format!("{} {}: {}", self.check.to_uppercase(), v.status().label(), one_line(&v.summary()));
        let perfdata = v.perfdata();
        if !perfdata.is_empty() {
            let perf: Vec<String> = perfdata.iter().map(|p| p.render()).collect();
            let _ = write!(first, " | {}", perf.join(" "));
        }
        // Long lines are shortened rather than dropped: the status line and the deciding reasons,
        // which come first, always fit.
        let mut lines = vec![shorten(first, MAX_FIRST_LINE)];
        lines.extend(v.reasons().into_iter().map(|r| shorten(format!("- {}", one_line(r)), MAX_LINE)));
        if self.outcome.table.is_empty() {
            lines.extend(self.outcome.facts.0.iter().map(|(k, val)| shorten(format!("{k}: {}", one_line(&text_value(val))), MAX_LINE)));
        } else {
            lines.extend(self.outcome.table.iter().map(|l| shorten(one_line(l), MAX_LINE)));
        }
        lines.extend(self.notes.iter().map(|n| shorten(format!("note: {}", one_line(n)), MAX_LINE)));
        fit_lines(lines, self.text_limit)
    }

    /// No cap on the text output's length: a person at a terminal reads all of it (Consul keeps
    /// 4 KiB, and runs checks with no terminal).
    pub fn uncapped(mut self) -> Self {
        self.text_limit = usize::MAX;
        self
    }

    /// The JSON object of the README: check, status, exit_code, summary, target, reasons, facts,
    /// perfdata, notes. Under [`MAX_OUTPUT_BYTES`] and always valid: long lists are summarised with
    /// a count and long strings shortened, facts first, the deciding reasons last.
    pub fn render_json(&self) -> String {
        let v = &self.outcome.verdict;
        let perfdata: Map<String, Value> = v.perfdata().iter().map(|p| (p.label.to_string(), Value::from(p.value))).collect();
        let mut obj = serde_json::json!({
            "check": self.check,
            "status": v.status(),
            "exit_code": self.exit_code(),
            "summary": v.summary(),
            "target": self.target,
            "reasons": v.reasons(),
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
            obj["summary"] = Value::from(shorten(v.summary().into_owned(), 1000));
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
        let lag = Subcheck::measured("lag", Some(3), "s", Thresholds::crit_above(Some(std::time::Duration::from_secs(120))));
        let verdict = Verdict::new("replica of 10.0.0.2:6029, link up", [Subcheck::new(status, "link is up"), lag]);
        Report::new("redis-slave", "127.0.0.1:6029", Outcome::new(verdict, facts))
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
        let huge = Report { outcome: Outcome::bare(Verdict::failed("y".repeat(9000))), ..report(Status::Critical) };
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
        r.outcome.verdict.subchecks =
            vec![Subcheck::critical("the deciding reason ".to_string() + &"z".repeat(3000)), Subcheck::critical("second")];
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

    fn perfdata(label: &'static str, value: i64, unit: &'static str, thresholds: Thresholds) -> String {
        Subcheck::measured(label, Some(value), unit, thresholds).perfdata.unwrap().render()
    }

    #[test]
    fn perfdata_shows_its_thresholds() {
        let secs = |ms| Some(std::time::Duration::from_millis(ms));
        assert_eq!(perfdata("replicas", 3, "", Thresholds::warn_below(2)), "replicas=3;2:");
        assert_eq!(perfdata("replicas", 3, "", Thresholds::warn_below(0)), "replicas=3");
        assert_eq!(perfdata("lag", 3, "s", Thresholds::crit_above(secs(120_000))), "lag=3s;;120");
        assert_eq!(perfdata("lag", 3, "s", Thresholds::crit_above(secs(2500))), "lag=3s;;2.5");
        assert_eq!(perfdata("lag", 0, "s", Thresholds::crit_above(None)), "lag=0s");
        assert_eq!(Subcheck::measured("lag", None, "s", Thresholds::none()).perfdata, None, "no value, no perfdata");
    }

    /// The limits that the perfdata shows are the ones that decide: at the limit passes, past it
    /// alerts, a negative lag (a server's "unknown") and a value not measured alert too.
    #[test]
    fn thresholds_compute_the_status() {
        let max = |ms| Thresholds::crit_above(Some(std::time::Duration::from_millis(ms)));
        for (thresholds, value, expected) in [
            (Thresholds::warn_below(2), Some(1), Status::Warning),
            (Thresholds::warn_below(2), Some(2), Status::Passing),
            (Thresholds::warn_below(2), None, Status::Warning),
            (Thresholds::warn_below(0), Some(0), Status::Passing),
            (max(5000), Some(5), Status::Passing),
            (max(5000), Some(6), Status::Critical),
            (max(2500), Some(3), Status::Critical),
            (max(0), Some(0), Status::Passing),
            (max(5000), Some(-1), Status::Critical),
            (max(5000), None, Status::Critical),
            (Thresholds::none(), None, Status::Passing),
            (Thresholds::none(), Some(-1), Status::Passing),
        ] {
            let sub = Subcheck::measured("x", value, "", thresholds);
            assert_eq!(sub.status(), expected, "{thresholds:?} {value:?}");
            assert_eq!(sub.perfdata.as_ref().map(Perfdata::status), value.map(|_| expected));
        }
    }

    /// The status is the worst subcheck's; a subcheck summing up others keeps its own status; a
    /// verdict with no subcheck fails closed; lines and perfdata come out in order, children after
    /// their parent.
    #[test]
    fn the_worst_subcheck_decides() {
        let v = Verdict::new("s", [Subcheck::passing("a"), Subcheck::warning("b")]);
        assert_eq!(v.status(), Status::Warning);
        assert_eq!(v.clone().and(Subcheck::critical("c")).status(), Status::Critical);
        let pool = Subcheck::headline(Status::Passing).summing_up([Subcheck::critical("r1: down"), Subcheck::critical("r2: down")]);
        let v = Verdict::new("none healthy", [pool, Subcheck::measured("n", Some(0), "", Thresholds::none())]);
        assert_eq!(v.status(), Status::Passing);
        assert_eq!(v.reasons(), ["r1: down", "r2: down"]);
        assert_eq!(v.perfdata().len(), 1);
        assert_eq!(Verdict::new("nothing decided", []).status(), Status::Critical);
        assert_eq!(Verdict::failed("x").status(), Status::Critical);
        assert!(Verdict::failed("x").reasons().is_empty());
    }
}
