//! The split-brain guard: asks the Sentinels which node is master, and judges their answers.

use super::client::{Login, Session};
use super::info::ReplicationInfo;
use crate::cli::{parse_host_port, Address, TlsArgs};
use crate::credentials::read_password_file;
use crate::deadline::Deadline;
use crate::duration::{format_duration, parse_duration};
use crate::probe::probe_all;
use crate::report::{Facts, Status, Subcheck};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// The split-brain guard's options, shared by both Redis checks.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SentinelArgs {
    /// A Sentinel to ask which node is master (repeat for each): the split-brain guard.
    #[arg(long = "sentinel", value_name = "HOST:PORT", value_parser = parse_host_port, requires = "master_name")]
    pub sentinels: Vec<Address>,
    /// The master name the Sentinels monitor.
    #[arg(long, value_name = "NAME", requires = "sentinels")]
    pub master_name: Option<String>,
    /// How the Sentinels name this node [default: --host:--port].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub announce: Option<Address>,
    /// File with the Sentinels' password (their `requirepass`), if they need one.
    #[arg(long, value_name = "PATH")]
    pub sentinel_password_file: Option<PathBuf>,
    /// A replica counts as still attached only if it acknowledged within this (its `lag` in INFO;
    /// replicas acknowledge every second). A master that reaches no Sentinel majority and has no
    /// such replica is cut off and being replaced: critical.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub replica_ack_max_lag: Duration,
    /// How long the caller takes to stop sending writes here once this check fails (keepalived:
    /// fall x interval). With it, warning when a Sentinel's down-after-milliseconds is shorter than
    /// the partition rule needs (--replica-ack-max-lag + 1s + this).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub fault_after: Option<Duration>,
}

/// What the Sentinels were asked and what the guard concluded.
#[derive(Clone, Debug)]
pub struct Guard {
    /// How the Sentinels name this node.
    pub me: String,
    /// Every Sentinel's answer.
    pub replies: Vec<SentinelReply>,
    /// The conclusion.
    pub finding: GuardFinding,
    /// Why the Sentinels' timing defeats the partition rule, when it does (`--fault-after`).
    pub timing_warning: Option<String>,
    /// What the partition rule needs of `down-after-milliseconds`, when `--fault-after` is given.
    pub needs_down_after: Option<Duration>,
}

impl Guard {
    /// Asks the Sentinels about the master at `address`, when `--sentinel` is given. `info` is
    /// what the node itself reported: its replicas' acknowledgements tell an isolation from a
    /// Sentinel outage.
    pub fn consult(
        args: &SentinelArgs,
        address: &Address,
        tls: &TlsArgs,
        info: &ReplicationInfo,
        deadline: &Deadline,
    ) -> Result<Option<Guard>> {
        if args.sentinels.is_empty() {
            return Ok(None);
        }
        let me = match (&args.announce, address) {
            (Some(a), _) => a.to_string(),
            (None, Address::Tcp { .. }) => address.to_string(),
            (None, Address::Socket(_)) => bail!("--sentinel with --socket needs --announce HOST:PORT (how the Sentinels name this node)"),
        };
        let login = Login { user: None, password: args.sentinel_password_file.as_deref().map(read_password_file).transpose()? };
        let name = args.master_name.as_deref().unwrap_or_default();
        let replies = same_node_as_me(&me, ask(&args.sentinels, name, tls, &login, deadline.for_probes()));
        let attached = Attachment::of(info, args.replica_ack_max_lag);
        let finding = judge(&me, &replies, &attached);
        let timing_warning = down_after_warning(&replies, args.replica_ack_max_lag, args.fault_after);
        let needs_down_after = args.fault_after.map(|f| partition_rule_needs(args.replica_ack_max_lag, f));
        Ok(Some(Guard { me, replies, finding, timing_warning, needs_down_after }))
    }

    /// The finding, worsened to warning when the Sentinels' timing defeats the partition rule.
    pub fn finding(&self) -> GuardFinding {
        let f = &self.finding;
        match (&self.timing_warning, f.veto) {
            (None, _) => f.clone(),
            (Some(why), Some(clause)) => GuardFinding::vetoes(clause, format!("{}; {why}", f.reason)),
            (Some(why), None) => GuardFinding::doubts(format!("{}; {why}", f.reason)),
        }
    }

    /// Adds the Sentinels' answers to the facts.
    pub fn add_facts(&self, facts: &mut Facts) {
        facts.set("sentinels", self::facts(&self.replies)).set("announce", self.me.as_str());
        if let Some(needed) = self.needs_down_after {
            facts.set("partition_rule_needs_down_after_ms", needed.as_millis() as u64);
        }
    }
}

/// Sentinels with `announce-hostnames` answer with a name where this node is known by an address (or
/// the other way round, and it can switch after a failover): an answer that resolves to the same
/// address and port as `me` is read as naming `me`. Only names are resolved; two IP addresses are
/// compared as they are.
fn same_node_as_me(me: &str, replies: Vec<SentinelReply>) -> Vec<SentinelReply> {
    use std::net::ToSocketAddrs;
    let resolve = |a: &str| -> Vec<std::net::SocketAddr> {
        match parse_host_port(a) {
            Ok(Address::Tcp { host, port }) if host.parse::<std::net::IpAddr>().is_err() => {
                (host.as_str(), port).to_socket_addrs().map(|i| i.collect()).unwrap_or_default()
            }
            Ok(Address::Tcp { host, port }) => host.parse().map(|ip| vec![std::net::SocketAddr::new(ip, port)]).unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let mut mine: Option<Vec<std::net::SocketAddr>> = None;
    replies
        .into_iter()
        .map(|mut r| {
            if let SentinelAnswer::Names(a) = &r.answer {
                let both_ips = [a.as_str(), me].iter().all(|x| {
                    parse_host_port(x).is_ok_and(|p| matches!(p, Address::Tcp { host, .. } if host.parse::<std::net::IpAddr>().is_ok()))
                });
                if !a.eq_ignore_ascii_case(me) && !both_ips {
                    let me_addrs = mine.get_or_insert_with(|| resolve(me));
                    if resolve(a).iter().any(|x| me_addrs.contains(x)) {
                        r.answer = SentinelAnswer::Names(me.to_string());
                    }
                }
            }
            r
        })
        .collect()
}

/// What one Sentinel said about the master name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SentinelAnswer {
    /// `SENTINEL get-master-addr-by-name` gave this `host:port`.
    Names(String),
    /// The Sentinel does not monitor that master name (nil reply).
    UnknownMaster,
    /// No answer: the error, in words.
    Unreachable(String),
}

/// One Sentinel's address and answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelReply {
    /// `host:port` of the Sentinel.
    pub sentinel: String,
    /// What it said.
    pub answer: SentinelAnswer,
    /// Its failure detection for that master (`SENTINEL MASTER`), when it told.
    pub timing: Option<SentinelTiming>,
}

/// How fast a Sentinel acts on a master it cannot reach: from `SENTINEL MASTER <name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentinelTiming {
    /// `down-after-milliseconds`: how long the master must be silent before it is down.
    pub down_after: Duration,
    /// `quorum`: how many Sentinels must agree it is down.
    pub quorum: u64,
}

impl SentinelTiming {
    /// Reads `down-after-milliseconds` and `quorum` from a `SENTINEL MASTER` reply (field/value
    /// pairs: a flat array in RESP2, a map in RESP3); `None` when either is missing.
    pub fn from_reply(reply: &redis::Value) -> Option<SentinelTiming> {
        use redis::Value as V;
        let text = |v: &V| match v {
            V::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            V::SimpleString(s) => Some(s.clone()),
            V::Int(i) => Some(i.to_string()),
            _ => None,
        };
        let pairs: Vec<(String, String)> = match reply {
            V::Array(items) => items.chunks(2).filter_map(|p| Some((text(p.first()?)?, text(p.get(1)?)?))).collect(),
            V::Map(items) => items.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
            _ => return None,
        };
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse::<u64>().ok());
        Some(SentinelTiming { down_after: Duration::from_millis(field("down-after-milliseconds")?), quorum: field("quorum")? })
    }
}

/// How long an isolated master can keep taking writes after it is cut off: the partition rule
/// needs `--replica-ack-max-lag` for its replicas' acknowledgements to age, 1 s more (Redis counts
/// `lag` in whole seconds), then the caller's own delay (`--fault-after`: keepalived's fall ×
/// interval) before it stops sending writes here. Sentinel's `down-after-milliseconds` must be at
/// least that, or the majority promotes another node while this one still takes writes.
pub fn partition_rule_needs(ack_max_lag: Duration, fault_after: Duration) -> Duration {
    ack_max_lag + Duration::from_secs(1) + fault_after
}

/// The warning when the Sentinels detect a failure faster than the partition rule can take the
/// write service off an isolated master; `None` when they do not (or nothing is known).
pub fn down_after_warning(replies: &[SentinelReply], ack_max_lag: Duration, fault_after: Option<Duration>) -> Option<String> {
    let fault_after = fault_after?;
    let needed = partition_rule_needs(ack_max_lag, fault_after);
    let (sentinel, shortest) = replies.iter().filter_map(|r| Some((r.sentinel.as_str(), r.timing?.down_after))).min_by_key(|(_, d)| *d)?;
    (shortest < needed).then(|| {
        format!(
            "Sentinel {sentinel} has down-after-milliseconds {}, shorter than the {} the partition rule needs \
             (--replica-ack-max-lag {} + 1s + --fault-after {}): a cut-off master would keep taking writes after the \
             majority promotes another node; set down-after-milliseconds to at least {}",
            shortest.as_millis(),
            format_duration(needed),
            format_duration(ack_max_lag),
            format_duration(fault_after),
            needed.as_millis()
        )
    })
}

/// How many of a master's replicas are still attached: listed online and acknowledging recently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Replicas with `state=online` and `lag` within the limit.
    pub acknowledging: usize,
    /// `--replica-ack-max-lag`.
    pub ack_limit: Duration,
}

impl Attachment {
    /// Counts the replicas of `info` that acknowledged within `ack_limit`. Redis keeps a silent
    /// replica `state=online` until `repl-timeout` (60 s); its `lag` (seconds since its last
    /// acknowledgement, normally 0-1) is what shows the link is gone, as `min-replicas-max-lag` uses it.
    pub fn of(info: &ReplicationInfo, ack_limit: Duration) -> Attachment {
        let acknowledging =
            info.online_replicas().filter(|r| r.lag_seconds.is_some_and(|lag| lag >= 0 && lag as f64 <= ack_limit.as_secs_f64())).count();
        Attachment { acknowledging, ack_limit }
    }
}

/// What the guard concludes, a subcheck of the write and read checks: how far the Sentinels let
/// this node be the write master, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardFinding {
    status: Status,
    /// When the Sentinels overrule the node (critical): what is wrong, in a few words.
    veto: Option<&'static str>,
    /// The rule that decided, in words.
    reason: String,
}

impl GuardFinding {
    /// A majority names this node and every Sentinel agrees: passing.
    pub fn confirms(reason: impl Into<String>) -> Self {
        GuardFinding { status: Status::Passing, veto: None, reason: reason.into() }
    }

    /// The node may stay master, but something needs a look: warning.
    pub fn doubts(reason: impl Into<String>) -> Self {
        GuardFinding { status: Status::Warning, veto: None, reason: reason.into() }
    }

    /// The Sentinels overrule the node: critical; `clause` says what is wrong in a few words, for
    /// the summary line (`Sentinel names another node`).
    pub fn vetoes(clause: &'static str, reason: impl Into<String>) -> Self {
        GuardFinding { status: Status::Critical, veto: Some(clause), reason: reason.into() }
    }

    /// What is wrong in a few words, when the Sentinels overrule the node.
    pub fn veto(&self) -> Option<&'static str> {
        self.veto
    }

    /// The finding as a subcheck of a verdict.
    pub fn subcheck(&self) -> Subcheck {
        Subcheck::new(self.status, self.reason.clone())
    }
}

/// Judges the Sentinels' answers for the master that Sentinel knows as `me` (`host:port`).
///
/// - a majority of the given Sentinels names `me`: passing (warning if any other is unreachable or disagrees);
/// - otherwise, any reachable Sentinel names another node: critical (a returning old master);
/// - otherwise no majority can be reached (or knows the name): if no replica is still attached,
///   the node is cut off from the Sentinels and its replicas, the side that is promoting another
///   node: critical. If replicas still acknowledge, it is a Sentinel outage, not an isolation:
///   warning, since unreachable Sentinels alone must not take a healthy master out.
pub fn judge(me: &str, replies: &[SentinelReply], attached: &Attachment) -> GuardFinding {
    let total = replies.len();
    let majority = total / 2 + 1;
    let names_me = |r: &&SentinelReply| matches!(&r.answer, SentinelAnswer::Names(a) if a.eq_ignore_ascii_case(me));
    let for_me = replies.iter().filter(names_me).count();
    let others: Vec<String> = replies
        .iter()
        .filter_map(|r| match &r.answer {
            SentinelAnswer::Names(a) if !a.eq_ignore_ascii_case(me) => Some(format!("{} names {a}", r.sentinel)),
            _ => None,
        })
        .collect();
    let unreachable: Vec<String> = replies
        .iter()
        .filter_map(|r| match &r.answer {
            SentinelAnswer::Unreachable(e) => Some(format!("{}: {e}", r.sentinel)),
            _ => None,
        })
        .collect();
    let unknown: Vec<&str> = replies.iter().filter(|r| r.answer == SentinelAnswer::UnknownMaster).map(|r| r.sentinel.as_str()).collect();
    let mut problems = Vec::new();
    if !others.is_empty() {
        problems.push(others.join(", "));
    }
    if !unreachable.is_empty() {
        problems.push(format!("unreachable: {}", unreachable.join("; ")));
    }
    if !unknown.is_empty() {
        problems.push(format!("not monitoring this master name: {}", unknown.join(", ")));
    }
    let tally = format!("{for_me} of {total} Sentinels name this node ({me}) master");
    if for_me >= majority {
        if for_me == total {
            GuardFinding::confirms(tally)
        } else {
            GuardFinding::doubts(format!("{tally}; {}", problems.join("; ")))
        }
    } else if !others.is_empty() {
        GuardFinding::vetoes(
            "Sentinel names another node",
            format!("Sentinel says another node is master ({}); {tally}", problems.join("; ")),
        )
    } else if attached.acknowledging == 0 {
        GuardFinding::vetoes(
            "it is cut off from the Sentinel majority and from its replicas",
            format!(
                "cut off: {tally} (a majority is {majority}) and no replica acknowledged within --replica-ack-max-lag {}: \
                 the other side is replacing this node; {}",
                format_duration(attached.ack_limit),
                problems.join("; ")
            ),
        )
    } else {
        GuardFinding::doubts(format!(
            "Sentinel cannot confirm this node: {tally} (a majority is {majority}), but {} replica(s) still acknowledge: \
                 a Sentinel outage, not an isolation; {}",
            attached.acknowledging,
            problems.join("; ")
        ))
    }
}

/// Memory one Sentinel probe may use: its connection and an answer of a few hundred bytes (a TLS
/// session included) need well under 1 MiB. A Sentinel that sends more is counted as unreachable.
pub const SENTINEL_PROBE_BUDGET: usize = 2 << 20;

/// Asks every Sentinel, in parallel and all within `deadline`, which node is master of `master_name`.
pub fn ask(sentinels: &[Address], master_name: &str, tls: &TlsArgs, login: &Login, deadline: Deadline) -> Vec<SentinelReply> {
    let (name, tls, login) = (master_name.to_string(), tls.clone(), login.clone());
    let limit = deadline.limit();
    probe_all(
        sentinels.to_vec(),
        deadline,
        SENTINEL_PROBE_BUDGET,
        move |s: &Address, deadline: &Deadline| {
            let (answer, timing) = ask_one(s, &name, &tls, &login, deadline);
            SentinelReply { sentinel: s.to_string(), answer, timing }
        },
        move |s, why| SentinelReply { sentinel: s.to_string(), answer: SentinelAnswer::Unreachable(why.describe(limit)), timing: None },
    )
}

/// Asks one Sentinel which node is master (`SENTINEL get-master-addr-by-name`), then how fast it
/// detects a failure (`SENTINEL MASTER`, on the same connection; its failure only costs the timing).
/// Two requests, not a pipeline: the client reads every reply of a pipeline even after one timed
/// out, which would double a silent Sentinel's cost.
fn ask_one(
    sentinel: &Address,
    master_name: &str,
    tls: &TlsArgs,
    login: &Login,
    deadline: &Deadline,
) -> (SentinelAnswer, Option<SentinelTiming>) {
    let result = (|| -> Result<(SentinelAnswer, Option<SentinelTiming>)> {
        let mut session = Session::open(sentinel, tls, login, deadline)?;
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name").arg(master_name);
        let reply: Option<Vec<String>> = session.request(&cmd, &format!("SENTINEL get-master-addr-by-name on {sentinel}"))?;
        let answer = match reply.as_deref() {
            None => return Ok((SentinelAnswer::UnknownMaster, None)),
            Some([host, port]) => match crate::cli::parse_host_port(&format!("{host}:{port}")) {
                Ok(addr) => SentinelAnswer::Names(addr.to_string()),
                Err(e) => bail!("odd reply from {sentinel}: {e}"),
            },
            Some(other) => bail!("odd reply from {sentinel}: {} items", other.len()),
        };
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTER").arg(master_name);
        let timing = session
            .request::<redis::Value>(&cmd, &format!("SENTINEL MASTER on {sentinel}"))
            .ok()
            .and_then(|v| SentinelTiming::from_reply(&v));
        Ok((answer, timing))
    })();
    result.unwrap_or_else(|e| (SentinelAnswer::Unreachable(format!("{e:#}")), None))
}

/// The Sentinels' answers as a fact.
pub fn facts(replies: &[SentinelReply]) -> serde_json::Value {
    replies
        .iter()
        .map(|r| match &r.answer {
            SentinelAnswer::Names(a) => match r.timing {
                Some(t) => {
                    json!({"sentinel": r.sentinel, "master": a, "down_after_ms": t.down_after.as_millis() as u64, "quorum": t.quorum})
                }
                None => json!({"sentinel": r.sentinel, "master": a}),
            },
            SentinelAnswer::UnknownMaster => json!({"sentinel": r.sentinel, "master": null, "error": "unknown master name"}),
            SentinelAnswer::Unreachable(e) => json!({"sentinel": r.sentinel, "master": null, "error": e}),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(i: usize, answer: SentinelAnswer) -> SentinelReply {
        SentinelReply { sentinel: format!("10.0.0.{i}:26379"), answer, timing: None }
    }
    fn names(a: &str) -> SentinelAnswer {
        SentinelAnswer::Names(a.into())
    }
    fn down() -> SentinelAnswer {
        SentinelAnswer::Unreachable("connection refused".into())
    }
    const ME: &str = "10.0.0.2:6029";
    const OTHER: &str = "10.0.0.3:6029";
    const LIMIT: Duration = Duration::from_secs(2);
    const ATTACHED: Attachment = Attachment { acknowledging: 1, ack_limit: LIMIT };
    const ALONE: Attachment = Attachment { acknowledging: 0, ack_limit: LIMIT };

    /// Every combination of three Sentinels' answers, with and without an attached replica,
    /// against the rule in words.
    #[test]
    fn whole_table_for_three_sentinels() {
        let kinds = [names(ME), names(OTHER), SentinelAnswer::UnknownMaster, down()];
        for a in &kinds {
            for b in &kinds {
                for c in &kinds {
                    for attached in [ATTACHED, ALONE] {
                        let replies = [reply(1, a.clone()), reply(2, b.clone()), reply(3, c.clone())];
                        let me = replies.iter().filter(|r| r.answer == names(ME)).count();
                        let other = replies.iter().filter(|r| r.answer == names(OTHER)).count();
                        let expected = if me == 3 {
                            Status::Passing
                        } else if me >= 2 {
                            Status::Warning
                        } else if other >= 1 || attached.acknowledging == 0 {
                            Status::Critical
                        } else {
                            Status::Warning
                        };
                        let got = judge(ME, &replies, &attached);
                        assert_eq!(got.status, expected, "{replies:?} {attached:?} -> {got:?}");
                        assert_eq!(got.status == Status::Critical, got.veto().is_some());
                    }
                }
            }
        }
    }

    /// The partition policy: the isolated master's own Sentinel still names it, the other two
    /// are out of reach. With its replicas gone silent it is being replaced; with replicas still
    /// acknowledging it is a Sentinel outage.
    #[test]
    fn isolated_master_fails_but_a_sentinel_outage_only_warns() {
        let isolated = [reply(1, names(ME)), reply(2, down()), reply(3, down())];
        let got = judge(ME, &isolated, &ALONE);
        assert_eq!(got.status, Status::Critical);
        assert!(got.reason.starts_with("cut off: 1 of 3 Sentinels") && got.reason.contains("--replica-ack-max-lag 2s"), "{}", got.reason);
        let got = judge(ME, &isolated, &ATTACHED);
        assert_eq!(got.status, Status::Warning);
        assert!(got.reason.contains("a Sentinel outage, not an isolation"), "{}", got.reason);
    }

    /// Replicas listed online but silent longer than the limit are not attached.
    #[test]
    fn attachment_counts_recent_acknowledgements_only() {
        let info = |lags: &str| ReplicationInfo::parse(&format!("role:master\r\nloading:0\r\n{lags}")).unwrap();
        let two = info("slave0:ip=a,port=1,state=online,offset=1,lag=0\r\nslave1:ip=b,port=1,state=online,offset=1,lag=2\r\n");
        assert_eq!(Attachment::of(&two, LIMIT).acknowledging, 2);
        assert_eq!(Attachment::of(&two, Duration::from_secs(1)).acknowledging, 1);
        let silent = info("slave0:ip=a,port=1,state=online,offset=1,lag=7\r\nslave1:ip=b,port=1,state=wait_bgsave,offset=0,lag=0\r\n");
        assert_eq!(Attachment::of(&silent, LIMIT).acknowledging, 0);
        assert_eq!(Attachment::of(&info(""), LIMIT).acknowledging, 0);
    }

    #[test]
    fn returning_old_master_is_critical_and_says_who() {
        let got = judge(ME, &[reply(1, names(OTHER)), reply(2, names(OTHER)), reply(3, down())], &ATTACHED);
        assert_eq!(got.status, Status::Critical);
        assert!(got.reason.contains(OTHER) && got.reason.contains("0 of 3"), "{}", got.reason);
    }

    #[test]
    fn unreachable_sentinels_alone_only_warn() {
        let got = judge(ME, &[reply(1, down()), reply(2, down()), reply(3, down())], &ATTACHED);
        assert_eq!(got.status, Status::Warning);
        assert!(got.reason.contains("unreachable"), "{}", got.reason);
    }

    /// `announce-hostnames`: a Sentinel that names this node by host name names this node.
    #[test]
    fn host_names_resolving_to_this_node_count_as_this_node() {
        let replies = vec![reply(1, names("localhost:6029")), reply(2, names("127.0.0.1:6029")), reply(3, names("localhost:6030"))];
        let got = same_node_as_me("127.0.0.1:6029", replies);
        assert_eq!(got[0].answer, names("127.0.0.1:6029"), "localhost resolves to 127.0.0.1");
        assert_eq!(got[2].answer, names("localhost:6030"), "another port is another node");
        let got = same_node_as_me("localhost:6029", vec![reply(1, names("127.0.0.1:6029")), reply(2, names("10.0.0.3:6029"))]);
        assert_eq!((got[0].answer.clone(), got[1].answer.clone()), (names("localhost:6029"), names("10.0.0.3:6029")));
    }

    /// A real `SENTINEL MASTER` reply (Redis 7.0, RESP2, shortened), and the same as a RESP3 map.
    #[test]
    fn sentinel_timing_from_real_replies() {
        use redis::Value as V;
        let fields = [
            ("name", "labmaster"),
            ("ip", "127.0.0.1"),
            ("port", "41017"),
            ("flags", "master"),
            ("down-after-milliseconds", "2000"),
            ("quorum", "2"),
            ("failover-timeout", "4000"),
        ];
        let bulk = |s: &str| V::BulkString(s.as_bytes().to_vec());
        let flat = V::Array(fields.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect());
        let timing = SentinelTiming::from_reply(&flat).unwrap();
        assert_eq!(timing, SentinelTiming { down_after: Duration::from_millis(2000), quorum: 2 });
        let map = V::Map(fields.iter().map(|(k, v)| (bulk(k), bulk(v))).collect());
        assert_eq!(SentinelTiming::from_reply(&map), Some(timing));
        assert_eq!(SentinelTiming::from_reply(&V::Array(vec![bulk("quorum"), bulk("2")])), None, "no down-after");
        assert_eq!(SentinelTiming::from_reply(&V::Nil), None);
        assert_eq!(SentinelTiming::from_reply(&V::Array(vec![bulk("down-after-milliseconds"), bulk("x"), bulk("quorum")])), None);
    }

    /// The rule: down-after must be at least --replica-ack-max-lag + 1 s + --fault-after; the
    /// shortest Sentinel is named; nothing is said without --fault-after or without timings.
    #[test]
    fn down_after_against_the_partition_rule() {
        let timed = |i: usize, ms: u64| SentinelReply {
            timing: Some(SentinelTiming { down_after: Duration::from_millis(ms), quorum: 2 }),
            ..reply(i, names(ME))
        };
        let replies = [timed(1, 5000), timed(2, 2000), reply(3, down())];
        let w = down_after_warning(&replies, LIMIT, Some(Duration::from_secs(2))).unwrap();
        assert!(w.contains("10.0.0.2:26379 has down-after-milliseconds 2000") && w.contains("at least 5000"), "{w}");
        assert_eq!(down_after_warning(&replies, LIMIT, None), None);
        assert_eq!(down_after_warning(&[timed(1, 5000)], LIMIT, Some(Duration::from_secs(2))), None, "5000 is enough");
        assert!(down_after_warning(&[timed(1, 4999)], LIMIT, Some(Duration::from_secs(2))).is_some());
        assert_eq!(down_after_warning(&[reply(1, names(ME))], LIMIT, Some(Duration::from_secs(2))), None, "no timing known");
        assert_eq!(partition_rule_needs(LIMIT, Duration::from_secs(2)), Duration::from_secs(5));
    }

    #[test]
    fn single_sentinel_and_case_insensitive_hosts() {
        assert_eq!(judge("Host:1", &[reply(1, names("host:1"))], &ALONE).status, Status::Passing);
        assert_eq!(judge(ME, &[reply(1, names(OTHER))], &ATTACHED).status, Status::Critical);
        assert_eq!(judge(ME, &[reply(1, down()), reply(2, names(ME))], &ATTACHED).status, Status::Warning);
    }
}
