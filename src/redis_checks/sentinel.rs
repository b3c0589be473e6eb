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
    /// Talk to the Sentinels over TLS (verifying them against the system roots or
    /// --sentinel-tls-ca). The server's --tls options do not apply to the Sentinels.
    #[arg(long)]
    pub sentinel_tls: bool,
    /// CA certificate (PEM) to verify the Sentinels with; implies --sentinel-tls.
    #[arg(long, value_name = "PATH")]
    pub sentinel_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for the Sentinels' mutual TLS; implies --sentinel-tls.
    #[arg(long, value_name = "PATH", requires = "sentinel_tls_key")]
    pub sentinel_tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "PATH", requires = "sentinel_tls_cert")]
    pub sentinel_tls_key: Option<PathBuf>,
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

impl SentinelArgs {
    /// How to reach the Sentinels: TLS only with the --sentinel-tls options, whatever the server's.
    pub fn tls(&self) -> TlsArgs {
        TlsArgs {
            tls: self.sentinel_tls,
            tls_ca: self.sentinel_tls_ca.clone(),
            tls_cert: self.sentinel_tls_cert.clone(),
            tls_key: self.sentinel_tls_key.clone(),
        }
    }
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
    /// What the partition rule needs of `down-after-milliseconds` (with `--fault-after`, or the floor
    /// without it).
    pub needs_down_after: Option<Duration>,
}

impl Guard {
    /// Asks the Sentinels about the master at `address`, when `--sentinel` is given. `info` is
    /// what the node itself reported: its replicas' acknowledgements tell an isolation from a
    /// Sentinel outage.
    pub fn consult(args: &SentinelArgs, address: &Address, info: &ReplicationInfo, deadline: &Deadline) -> Result<Option<Guard>> {
        if args.sentinels.is_empty() {
            return Ok(None);
        }
        let me = match (&args.announce, address) {
            (Some(a), _) => a.to_string(),
            (None, Address::Tcp { .. }) => address.to_string(),
            (None, Address::Socket(_)) => bail!("--sentinel with --socket needs --announce HOST:PORT (how the Sentinels name this node)"),
        };
        let password = args.sentinel_password_file.as_deref().map(read_password_file).transpose()?;
        let login = Login { user: None, password, source: super::client::Credentials::Sentinel };
        let name = args.master_name.as_deref().unwrap_or_default();
        let replies = same_node_as_me(&me, ask(&args.sentinels, name, &args.tls(), &login, deadline.for_probes()));
        let attached = Attachment::of(info, args.replica_ack_max_lag);
        let finding = judge(&me, &replies, &attached);
        let timing_warning = down_after_warning(&replies, args.replica_ack_max_lag, args.fault_after);
        let needs_down_after = Some(partition_rule_needs(args.replica_ack_max_lag, args.fault_after.unwrap_or_default()));
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
/// address and port as `me` is read as naming `me`, in `get-master-addr-by-name` and in the master
/// a `SENTINEL MASTER` reply watches. Only names are resolved; two IP addresses are compared as they are.
fn same_node_as_me(me: &str, replies: Vec<SentinelReply>) -> Vec<SentinelReply> {
    use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
    let resolve = |a: &str| -> Vec<SocketAddr> {
        match parse_host_port(a) {
            Ok(Address::Tcp { host, port }) if host.parse::<IpAddr>().is_err() => {
                (host.as_str(), port).to_socket_addrs().map(|i| i.collect()).unwrap_or_default()
            }
            Ok(Address::Tcp { host, port }) => host.parse().map(|ip| vec![SocketAddr::new(ip, port)]).unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let is_ip = |x: &str| parse_host_port(x).is_ok_and(|p| matches!(p, Address::Tcp { host, .. } if host.parse::<IpAddr>().is_ok()));
    let mut mine: Option<Vec<SocketAddr>> = None;
    let mut read_as_me = |a: &mut String| {
        let same_or_both_addresses = a.eq_ignore_ascii_case(me) || (is_ip(a) && is_ip(me));
        if !same_or_both_addresses {
            let me_addrs = mine.get_or_insert_with(|| resolve(me));
            if resolve(a).iter().any(|x| me_addrs.contains(x)) {
                *a = me.to_string();
            }
        }
    };
    replies
        .into_iter()
        .map(|mut r| {
            if let SentinelAnswer::Names(a) = &mut r.answer {
                read_as_me(a);
            }
            if let Some(watched) = r.view.as_mut().and_then(|v| v.master.as_mut()) {
                read_as_me(watched);
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
    /// An answer that shows the guard is set up wrong, not that the Sentinel is cut off: a TLS
    /// failure, a refused Sentinel password, a plain-text connection closed by a TLS port, a Redis
    /// server that does not know `SENTINEL`. In words, with what to check.
    Misconfigured(String),
}

/// One Sentinel's address and answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelReply {
    /// `host:port` of the Sentinel.
    pub sentinel: String,
    /// What it said.
    pub answer: SentinelAnswer,
    /// What it is doing about that master (`SENTINEL MASTER`), when it told.
    pub view: Option<SentinelView>,
}

impl SentinelReply {
    /// Its failure detection for the master, when it told.
    pub fn timing(&self) -> Option<SentinelTiming> {
        self.view.as_ref()?.timing
    }
}

/// What one Sentinel's `SENTINEL MASTER <name>` says: which node it watches under the name, what it
/// is doing about it, its configuration epoch and how fast it acts.
///
/// Measured on Redis 7.0 (three Sentinels, `SENTINEL FAILOVER` of a live master, sampled every 5 ms):
/// the Sentinel that runs the failover shows `failover_in_progress` (with `force_failover`) on the old
/// master's `ip`/`port` within 2 ms of the command, 230 ms before the replica is promoted; about 0.9 s
/// after the promotion it names the promoted replica in `get-master-addr-by-name` with the new
/// `config-epoch` while `ip`/`port` still show the old master; the other Sentinels name the new
/// master about 0.1 s later. A master that stops answering shows `s_down`, then `o_down` on every
/// Sentinel once a quorum agrees, then `failover_in_progress` on the candidates. The old master
/// itself says `role:master` for seconds after all of that.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentinelView {
    /// `ip:port`: the master it watches under the name (during a failover, still the old one).
    pub master: Option<String>,
    /// `flags` (`master`, `s_down`, `o_down`, `failover_in_progress`, ...), at most [`MAX_FLAGS`].
    pub flags: Vec<String>,
    /// `config-epoch`: the failover that made the master it names master (higher is newer).
    pub config_epoch: Option<u64>,
    /// `down-after-milliseconds` and `quorum`, when both are told.
    pub timing: Option<SentinelTiming>,
}

/// Sentinel knows fewer than 20 flags; more is not a Sentinel talking.
pub const MAX_FLAGS: usize = 32;

impl SentinelView {
    /// Reads a `SENTINEL MASTER` reply (field/value pairs: a flat array in RESP2, a map in RESP3);
    /// `None` when it is neither.
    pub fn from_reply(reply: &redis::Value) -> Option<SentinelView> {
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
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
        let master = match (field("ip"), number("port")) {
            (Some(ip), Some(port)) => parse_host_port(&format!("{ip}:{port}")).ok().map(|a| a.to_string()),
            _ => None,
        };
        let flags = field("flags").map(|f| f.split(',').filter(|x| !x.is_empty()).take(MAX_FLAGS).map(str::to_string).collect());
        let timing = match (number("down-after-milliseconds"), number("quorum")) {
            (Some(ms), Some(quorum)) => Some(SentinelTiming { down_after: Duration::from_millis(ms), quorum }),
            _ => None,
        };
        Some(SentinelView { master, flags: flags.unwrap_or_default(), config_epoch: number("config-epoch"), timing })
    }

    /// Whether it shows `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// What it is doing to replace the master it watches, in words: `failover_in_progress` (it runs
    /// a failover), `o_down` (a quorum agrees the master is down: a failover follows).
    pub fn replacing(&self) -> Option<&'static str> {
        if self.has("failover_in_progress") {
            Some("is failing it over (failover_in_progress)")
        } else if self.has("o_down") {
            Some("holds it objectively down (o_down), a failover follows")
        } else {
            None
        }
    }
}

/// How fast a Sentinel acts on a master it cannot reach: from `SENTINEL MASTER <name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentinelTiming {
    /// `down-after-milliseconds`: how long the master must be silent before it is down.
    pub down_after: Duration,
    /// `quorum`: how many Sentinels must agree it is down.
    pub quorum: u64,
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
/// write service off an isolated master; `None` when they do not (or nothing is known). Without
/// `--fault-after` the caller's own delay is unknown and counted as zero: the floor every caller
/// needs (`--replica-ack-max-lag` + 1 s) is still checked.
pub fn down_after_warning(replies: &[SentinelReply], ack_max_lag: Duration, fault_after: Option<Duration>) -> Option<String> {
    let needed = partition_rule_needs(ack_max_lag, fault_after.unwrap_or_default());
    let (sentinel, shortest) =
        replies.iter().filter_map(|r| Some((r.sentinel.as_str(), r.timing()?.down_after))).min_by_key(|(_, d)| *d)?;
    let rule = match fault_after {
        Some(f) => format!("--replica-ack-max-lag {} + 1s + --fault-after {}", format_duration(ack_max_lag), format_duration(f)),
        None => format!(
            "--replica-ack-max-lag {} + 1s, before the caller's own delay: give --fault-after to count it",
            format_duration(ack_max_lag)
        ),
    };
    (shortest < needed).then(|| {
        format!(
            "Sentinel {sentinel} has down-after-milliseconds {}, shorter than the {} the partition rule needs \
             ({rule}): a cut-off master would keep taking writes after the majority promotes another node; set \
             down-after-milliseconds to at least {}",
            shortest.as_millis(),
            format_duration(needed),
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

/// Judges the Sentinels' answers for the master that Sentinel knows as `me` (`host:port`). In order:
///
/// - a reachable Sentinel is replacing `me` (its `SENTINEL MASTER` watches `me` with
///   `failover_in_progress` or `o_down`): critical, from the first moment of a failover, before
///   the promotion, whatever the others still name (they learn of it about a second later);
/// - a reachable Sentinel names another node at a newer `config-epoch` than every Sentinel that
///   names `me`: a failover made that node master and the others have not heard yet: critical;
/// - a majority of the given Sentinels names `me`: passing (warning if any other is unreachable,
///   disagrees, sees `me` subjectively down, or does not say what it is doing about `me`);
/// - otherwise, any reachable Sentinel names another node: critical (a returning old master);
/// - otherwise no majority can be reached (or knows the name): if no replica is still attached,
///   the node is cut off from the Sentinels and its replicas, the side that is promoting another
///   node: critical. If replicas still acknowledge, it is a Sentinel outage, not an isolation:
///   warning, since unreachable Sentinels alone must not take a healthy master out.
pub fn judge(me: &str, replies: &[SentinelReply], attached: &Attachment) -> GuardFinding {
    let total = replies.len();
    let majority = total / 2 + 1;
    let is_me = |a: &str| a.eq_ignore_ascii_case(me);
    let names_me = |r: &&SentinelReply| matches!(&r.answer, SentinelAnswer::Names(a) if is_me(a));
    let for_me = replies.iter().filter(names_me).count();
    let tally = format!("{for_me} of {total} Sentinels name this node ({me}) master");
    let watching_me: Vec<(&str, &SentinelView)> = replies
        .iter()
        .filter_map(|r| Some((r.sentinel.as_str(), r.view.as_ref().filter(|v| v.master.as_deref().is_some_and(is_me))?)))
        .collect();
    let replacing: Vec<String> = watching_me.iter().filter_map(|(s, v)| Some(format!("{s} {}", v.replacing()?))).collect();
    if !replacing.is_empty() {
        return GuardFinding::vetoes(
            "Sentinel is replacing it",
            format!("Sentinel is replacing this master: {}; {tally}", replacing.join(", ")),
        );
    }
    let epoch_naming_me = replies.iter().filter(names_me).map(|r| r.view.as_ref().and_then(|v| v.config_epoch)).collect::<Vec<_>>();
    let newer = replies.iter().find_map(|r| match (&r.answer, r.view.as_ref().and_then(|v| v.config_epoch)) {
        (SentinelAnswer::Names(a), Some(e)) if !is_me(a) && epoch_naming_me.iter().all(|m| m.is_some_and(|m| m < e)) => {
            Some((r.sentinel.as_str(), a, e))
        }
        _ => None,
    });
    if let (Some((sentinel, other, epoch)), true) = (newer, for_me > 0) {
        let mine = epoch_naming_me.iter().flatten().max().copied().unwrap_or_default();
        return GuardFinding::vetoes(
            "Sentinel names another node",
            format!(
                "Sentinel {sentinel} names {other} master at config epoch {epoch}, newer than the epoch {mine} of those naming this \
                 node: a failover made {other} master; {tally}"
            ),
        );
    }
    let others: Vec<String> = replies
        .iter()
        .filter_map(|r| match &r.answer {
            SentinelAnswer::Names(a) if !is_me(a) => Some(format!("{} names {a}", r.sentinel)),
            _ => None,
        })
        .collect();
    // `sentinel: error` for each Sentinel whose answer `pick` reads an error from.
    let errors = |pick: fn(&SentinelAnswer) -> Option<&String>| -> Vec<String> {
        replies.iter().filter_map(|r| Some(format!("{}: {}", r.sentinel, pick(&r.answer)?))).collect()
    };
    let unreachable = errors(|a| match a {
        SentinelAnswer::Unreachable(e) => Some(e),
        _ => None,
    });
    let unknown: Vec<&str> = replies.iter().filter(|r| r.answer == SentinelAnswer::UnknownMaster).map(|r| r.sentinel.as_str()).collect();
    let misconfigured = errors(|a| match a {
        SentinelAnswer::Misconfigured(e) => Some(e),
        _ => None,
    });
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
    if !misconfigured.is_empty() {
        problems.push(format!("set up wrong: {}", misconfigured.join("; ")));
    }
    let silent: Vec<&str> = replies.iter().filter(names_me).filter(|r| r.view.is_none()).map(|r| r.sentinel.as_str()).collect();
    if !silent.is_empty() {
        problems.push(format!("did not say whether it is failing this master over (SENTINEL MASTER): {}", silent.join(", ")));
    }
    let down: Vec<&str> = watching_me.iter().filter(|(_, v)| v.has("s_down")).map(|(s, _)| *s).collect();
    if !down.is_empty() {
        problems.push(format!("cannot reach this master (s_down): {}", down.join(", ")));
    }
    if for_me >= majority {
        if problems.is_empty() {
            GuardFinding::confirms(tally)
        } else {
            GuardFinding::doubts(format!("{tally}; {}", problems.join("; ")))
        }
    } else if !others.is_empty() {
        GuardFinding::vetoes(
            "Sentinel names another node",
            format!("Sentinel says another node is master ({}); {tally}", problems.join("; ")),
        )
    } else if !unknown.is_empty() || !misconfigured.is_empty() {
        // Sentinels that answer and monitor no such master, or that the check cannot talk to as
        // configured (TLS, password, not a Sentinel), are not a partition: the guard is set up
        // wrong (a --master-name typo, a Sentinel set up for another group, TLS on one side only)
        // and cannot confirm this node, so it fails closed, saying so.
        let mut what = Vec::new();
        if !unknown.is_empty() {
            what.push(format!(
                "Sentinel {} answered but monitors no master named in --master-name: check --master-name and the Sentinels' \
                 `sentinel monitor` lines",
                unknown.join(", ")
            ));
        }
        if !misconfigured.is_empty() {
            what.push(format!("the check cannot talk to the Sentinels as configured: {}", misconfigured.join("; ")));
        }
        let clause = if misconfigured.is_empty() {
            "the Sentinels do not monitor that master name (a configuration error)"
        } else {
            "the check cannot talk to the Sentinels as configured (a configuration error)"
        };
        GuardFinding::vetoes(clause, format!("configuration error: {}; {tally}", what.join("; ")))
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
            let (answer, view) = ask_one(s, &name, &tls, &login, deadline);
            SentinelReply { sentinel: s.to_string(), answer, view }
        },
        move |s, why| SentinelReply { sentinel: s.to_string(), answer: SentinelAnswer::Unreachable(why.describe(limit)), view: None },
    )
}

/// Asks one Sentinel which node is master (`SENTINEL get-master-addr-by-name`), then what it is doing
/// about that master (`SENTINEL MASTER`, on the same connection: its flags, epoch and timing). Two
/// requests, not a pipeline: the client reads every reply of a pipeline even after one timed out,
/// which would double a silent Sentinel's cost. A Sentinel that names a master and then does not say
/// what it is doing about it is judged without that (see [`judge`]).
fn ask_one(
    sentinel: &Address,
    master_name: &str,
    tls: &TlsArgs,
    login: &Login,
    deadline: &Deadline,
) -> (SentinelAnswer, Option<SentinelView>) {
    let result = (|| -> Result<(SentinelAnswer, Option<SentinelView>)> {
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
        let view = session
            .request::<redis::Value>(&cmd, &format!("SENTINEL MASTER on {sentinel}"))
            .ok()
            .and_then(|v| SentinelView::from_reply(&v));
        Ok((answer, view))
    })();
    result.unwrap_or_else(|e| (failed(e), None))
}

/// A failed exchange with a Sentinel, as an answer: set up wrong when the failure shows the guard's
/// configuration is at fault (see [`SentinelAnswer::Misconfigured`]), unreachable otherwise.
fn failed(e: anyhow::Error) -> SentinelAnswer {
    use crate::edge::{Cause, EdgeError};
    let words = format!("{e:#}");
    let Some(edge) = e.downcast_ref::<EdgeError>() else { return SentinelAnswer::Unreachable(words) };
    let misconfigured = match &edge.cause {
        // Garbage is a broken or hostile peer, not a setting: it fails its own probe only.
        Cause::Tls(_) => true,
        Cause::Server { code, text } => {
            matches!(code.as_str(), "WRONGPASS" | "NOAUTH" | "NOPERM")
                || text.starts_with("ERR unknown command")
                || text.contains("without any password configured")
        }
        // Closed before any answer on plain text: the hint says a TLS port does that.
        Cause::Closed => edge.hint.is_some(),
        _ => false,
    };
    if misconfigured {
        SentinelAnswer::Misconfigured(words)
    } else {
        SentinelAnswer::Unreachable(words)
    }
}

/// The Sentinels' answers as a fact.
pub fn facts(replies: &[SentinelReply]) -> serde_json::Value {
    replies
        .iter()
        .map(|r| {
            let mut fact = match &r.answer {
                SentinelAnswer::Names(a) => json!({"sentinel": r.sentinel, "master": a}),
                SentinelAnswer::UnknownMaster => json!({"sentinel": r.sentinel, "master": null, "error": "unknown master name"}),
                SentinelAnswer::Unreachable(e) => json!({"sentinel": r.sentinel, "master": null, "error": e}),
                SentinelAnswer::Misconfigured(e) => {
                    json!({"sentinel": r.sentinel, "master": null, "error": e, "configuration_error": true})
                }
            };
            if let Some(v) = &r.view {
                // During a failover the leader names the promoted replica but still watches the old master.
                if let (Some(watched), SentinelAnswer::Names(named)) = (&v.master, &r.answer) {
                    if !watched.eq_ignore_ascii_case(named) {
                        fact["watching"] = watched.as_str().into();
                    }
                }
                fact["flags"] = v.flags.join(",").into();
                if let Some(epoch) = v.config_epoch {
                    fact["config_epoch"] = epoch.into();
                }
                if let Some(t) = v.timing {
                    fact["down_after_ms"] = (t.down_after.as_millis() as u64).into();
                    fact["quorum"] = t.quorum.into();
                }
            }
            fact
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Sentinel's answer; one that names a master also says it watches that master, quietly,
    /// at config epoch 1 (as a settled Sentinel does).
    fn reply(i: usize, answer: SentinelAnswer) -> SentinelReply {
        let view = match &answer {
            SentinelAnswer::Names(a) => Some(watching(a, "master", 1)),
            _ => None,
        };
        SentinelReply { sentinel: format!("10.0.0.{i}:26379"), answer, view }
    }
    fn watching(master: &str, flags: &str, epoch: u64) -> SentinelView {
        SentinelView {
            master: Some(master.into()),
            flags: flags.split(',').map(str::to_string).collect(),
            config_epoch: Some(epoch),
            timing: None,
        }
    }
    fn with_view(mut r: SentinelReply, view: Option<SentinelView>) -> SentinelReply {
        r.view = view;
        r
    }
    fn names(a: &str) -> SentinelAnswer {
        SentinelAnswer::Names(a.into())
    }
    fn down() -> SentinelAnswer {
        SentinelAnswer::Unreachable("connection refused".into())
    }
    fn set_up_wrong() -> SentinelAnswer {
        SentinelAnswer::Misconfigured("TLS: invalid peer certificate: UnknownIssuer".into())
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
        let kinds = [names(ME), names(OTHER), SentinelAnswer::UnknownMaster, down(), set_up_wrong()];
        for a in &kinds {
            for b in &kinds {
                for c in &kinds {
                    for attached in [ATTACHED, ALONE] {
                        let replies = [reply(1, a.clone()), reply(2, b.clone()), reply(3, c.clone())];
                        let me = replies.iter().filter(|r| r.answer == names(ME)).count();
                        let other = replies.iter().filter(|r| r.answer == names(OTHER)).count();
                        let unknown =
                            replies.iter().filter(|r| r.answer == SentinelAnswer::UnknownMaster || r.answer == set_up_wrong()).count();
                        let expected = if me == 3 {
                            Status::Passing
                        } else if me >= 2 {
                            Status::Warning
                        } else if other >= 1 || unknown >= 1 || attached.acknowledging == 0 {
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

    /// Sentinels that answer but monitor no master of that name (a `--master-name` typo) are a
    /// configuration error, critical and named as such, never a partition or an outage.
    #[test]
    fn an_unknown_master_name_is_a_configuration_error() {
        let unknown = || SentinelAnswer::UnknownMaster;
        for attached in [ATTACHED, ALONE] {
            let got = judge(ME, &[reply(1, unknown()), reply(2, unknown()), reply(3, down())], &attached);
            assert_eq!(got.veto(), Some("the Sentinels do not monitor that master name (a configuration error)"), "{got:?}");
            assert!(got.reason.starts_with("configuration error: Sentinel 10.0.0.1:26379, 10.0.0.2:26379 answered"), "{}", got.reason);
            assert!(!got.reason.contains("cut off") && !got.reason.contains("outage"), "{}", got.reason);
        }
    }

    /// Sentinels the check cannot talk to as configured (TLS, password, not a Sentinel) are a
    /// configuration error too, whether or not replicas acknowledge, and never a partition.
    #[test]
    fn a_guard_set_up_wrong_is_a_configuration_error() {
        for attached in [ATTACHED, ALONE] {
            let got = judge(ME, &[reply(1, set_up_wrong()), reply(2, set_up_wrong()), reply(3, names(ME))], &attached);
            assert_eq!(got.veto(), Some("the check cannot talk to the Sentinels as configured (a configuration error)"), "{got:?}");
            assert!(got.reason.contains("10.0.0.1:26379: TLS: invalid peer certificate"), "{}", got.reason);
            assert!(!got.reason.contains("cut off") && !got.reason.contains("outage"), "{}", got.reason);
        }
        // One such Sentinel beside a majority naming this node: a warning naming it.
        let got = judge(ME, &[reply(1, set_up_wrong()), reply(2, names(ME)), reply(3, names(ME))], &ALONE);
        assert_eq!(got.status, Status::Warning);
        assert!(got.reason.contains("set up wrong: 10.0.0.1:26379"), "{}", got.reason);
    }

    /// A real `SENTINEL MASTER` reply (Redis 7.0, RESP2, shortened; the failover leader's, 2 ms
    /// after `SENTINEL FAILOVER`), and the same as a RESP3 map.
    #[test]
    fn sentinel_view_from_real_replies() {
        use redis::Value as V;
        let fields = [
            ("name", "labmaster"),
            ("ip", "127.0.0.1"),
            ("port", "41017"),
            ("flags", "master,failover_in_progress,force_failover"),
            ("down-after-milliseconds", "2000"),
            ("config-epoch", "3"),
            ("quorum", "2"),
            ("failover-timeout", "4000"),
        ];
        let bulk = |s: &str| V::BulkString(s.as_bytes().to_vec());
        let flat = V::Array(fields.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect());
        let view = SentinelView::from_reply(&flat).unwrap();
        assert_eq!(view.timing, Some(SentinelTiming { down_after: Duration::from_millis(2000), quorum: 2 }));
        assert_eq!((view.master.as_deref(), view.config_epoch), (Some("127.0.0.1:41017"), Some(3)));
        assert_eq!(view.flags, ["master", "failover_in_progress", "force_failover"]);
        assert_eq!(view.replacing(), Some("is failing it over (failover_in_progress)"));
        let map = V::Map(fields.iter().map(|(k, v)| (bulk(k), bulk(v))).collect());
        assert_eq!(SentinelView::from_reply(&map), Some(view));
        let partial = SentinelView::from_reply(&V::Array(vec![bulk("quorum"), bulk("2")])).unwrap();
        assert_eq!(partial, SentinelView::default(), "no down-after: no timing, and nothing else told");
        assert_eq!(SentinelView::from_reply(&V::Nil), None);
        let odd = SentinelView::from_reply(&V::Array(vec![bulk("down-after-milliseconds"), bulk("x"), bulk("quorum")])).unwrap();
        assert_eq!(odd.timing, None);
        let many = V::Array(vec![bulk("flags"), bulk(&"x,".repeat(10_000))]);
        assert_eq!(SentinelView::from_reply(&many).unwrap().flags.len(), MAX_FLAGS, "flags are bounded");
        let down = SentinelView { flags: vec!["s_down".into(), "o_down".into(), "master".into()], ..SentinelView::default() };
        assert_eq!(down.replacing(), Some("holds it objectively down (o_down), a failover follows"));
        assert_eq!(SentinelView { flags: vec!["s_down".into()], ..down }.replacing(), None);
    }

    /// What the Sentinels said at each step of a measured `SENTINEL FAILOVER` of a live master (see
    /// [`SentinelView`]): the old master is critical from the first step, before the promotion; the
    /// promoted replica becomes the one writer once the Sentinels name it.
    #[test]
    fn a_live_failover_takes_the_old_master_out_from_its_first_step() {
        let (old, new) = (ME, OTHER);
        let quiet = |i, a: &str, e| with_view(reply(i, names(a)), Some(watching(a, "master", e)));
        let leader = |a: &str, flags: &str, e| with_view(reply(1, names(a)), Some(watching(old, flags, e)));
        let steps = [
            ("steady", [quiet(1, old, 1), quiet(2, old, 1), quiet(3, old, 1)], Status::Passing, Status::Critical),
            (
                "the leader starts (2 ms)",
                [leader(old, "master,failover_in_progress,force_failover", 1), quiet(2, old, 1), quiet(3, old, 1)],
                Status::Critical,
                Status::Critical,
            ),
            (
                "the leader names the promoted replica (0.9 s after the promotion)",
                [leader(new, "master,failover_in_progress,force_failover", 2), quiet(2, old, 1), quiet(3, old, 1)],
                Status::Critical,
                Status::Critical,
            ),
            (
                "the others follow",
                [leader(new, "master,failover_in_progress,force_failover", 2), quiet(2, new, 2), quiet(3, new, 2)],
                Status::Critical,
                Status::Passing,
            ),
            ("done", [quiet(1, new, 2), quiet(2, new, 2), quiet(3, new, 2)], Status::Critical, Status::Passing),
        ];
        for (step, replies, old_status, new_status) in steps {
            let got = judge(old, &replies, &ATTACHED);
            assert_eq!(got.status, old_status, "{step}: old master {got:?}");
            let got = judge(new, &replies, &ATTACHED);
            assert_eq!(got.status, new_status, "{step}: promoted replica {got:?}");
        }
        let got = judge(old, &[leader(old, "master,failover_in_progress", 1), quiet(2, old, 1), quiet(3, old, 1)], &ATTACHED);
        assert_eq!(got.veto(), Some("Sentinel is replacing it"));
        assert!(got.reason.starts_with("Sentinel is replacing this master: 10.0.0.1:26379 is failing it over"), "{}", got.reason);
    }

    /// A quorum holding this master down (a master that stalled past down-after and woke up) is
    /// critical; one Sentinel that cannot reach it only warns.
    #[test]
    fn a_master_held_down_is_critical_and_one_unreachable_view_warns() {
        let view = |i, flags: &str| with_view(reply(i, names(ME)), Some(watching(ME, flags, 1)));
        let got = judge(ME, &[view(1, "s_down,o_down,master"), view(2, "master"), view(3, "master")], &ATTACHED);
        assert_eq!((got.status, got.veto()), (Status::Critical, Some("Sentinel is replacing it")), "{got:?}");
        assert!(got.reason.contains("10.0.0.1:26379 holds it objectively down (o_down)"), "{}", got.reason);
        let got = judge(ME, &[view(1, "s_down,master"), view(2, "master"), view(3, "master")], &ATTACHED);
        assert_eq!(got.status, Status::Warning, "{got:?}");
        assert!(got.reason.contains("cannot reach this master (s_down): 10.0.0.1:26379"), "{}", got.reason);
        // A Sentinel failing over another node does not take this one out.
        let other = with_view(reply(1, names(OTHER)), Some(watching(OTHER, "master,failover_in_progress", 1)));
        assert_eq!(judge(ME, &[other, view(2, "master"), view(3, "master")], &ATTACHED).status, Status::Warning);
    }

    /// A newer config epoch wins as Sentinel's own protocol says; an older or unknown one does not
    /// overrule the majority.
    #[test]
    fn a_newer_epoch_naming_another_node_overrules_the_majority() {
        let at = |i, a: &str, e| with_view(reply(i, names(a)), Some(watching(a, "master", e)));
        let got = judge(ME, &[at(1, OTHER, 5), at(2, ME, 4), at(3, ME, 4)], &ATTACHED);
        assert_eq!(got.status, Status::Critical, "{got:?}");
        assert!(got.reason.contains("names 10.0.0.3:6029 master at config epoch 5, newer than the epoch 4"), "{}", got.reason);
        assert_eq!(judge(ME, &[at(1, OTHER, 3), at(2, ME, 4), at(3, ME, 4)], &ATTACHED).status, Status::Warning, "a stale Sentinel");
        assert_eq!(judge(ME, &[at(1, OTHER, 4), at(2, ME, 4), at(3, ME, 4)], &ATTACHED).status, Status::Warning, "same epoch");
        let unknown_epoch = with_view(reply(2, names(ME)), Some(SentinelView { master: Some(ME.into()), ..SentinelView::default() }));
        assert_eq!(judge(ME, &[at(1, OTHER, 5), unknown_epoch, at(3, ME, 4)], &ATTACHED).status, Status::Warning);
    }

    /// A Sentinel that names this node but does not say what it is doing about it leaves a doubt.
    #[test]
    fn a_sentinel_that_hides_its_failover_state_warns() {
        let silent = with_view(reply(2, names(ME)), None);
        let got = judge(ME, &[reply(1, names(ME)), silent, reply(3, names(ME))], &ATTACHED);
        assert_eq!(got.status, Status::Warning, "{got:?}");
        assert!(got.reason.contains("did not say whether it is failing this master over (SENTINEL MASTER): 10.0.0.2:26379"));
    }

    /// The rule: down-after must be at least --replica-ack-max-lag + 1 s + --fault-after; the
    /// shortest Sentinel is named; without --fault-after the floor (--replica-ack-max-lag + 1 s) is
    /// still checked; nothing is said without timings.
    #[test]
    fn down_after_against_the_partition_rule() {
        let timed = |i: usize, ms: u64| SentinelReply {
            view: Some(SentinelView {
                timing: Some(SentinelTiming { down_after: Duration::from_millis(ms), quorum: 2 }),
                ..SentinelView::default()
            }),
            ..reply(i, names(ME))
        };
        let replies = [timed(1, 5000), timed(2, 2000), reply(3, down())];
        let w = down_after_warning(&replies, LIMIT, Some(Duration::from_secs(2))).unwrap();
        assert!(w.contains("10.0.0.2:26379 has down-after-milliseconds 2000") && w.contains("at least 5000"), "{w}");
        let w = down_after_warning(&replies, LIMIT, None).unwrap();
        assert!(w.contains("down-after-milliseconds 2000, shorter than the 3s") && w.contains("give --fault-after"), "{w}");
        assert_eq!(down_after_warning(&[timed(1, 3000)], LIMIT, None), None, "3000 is the floor");
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
