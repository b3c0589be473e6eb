//! The split-brain guard: asks the Sentinels which node is master, and judges their answers.

use super::client::{Login, Session};
use super::info::ReplicationInfo;
use crate::cli::{parse_host_port, Address, TlsArgs};
use crate::credentials::read_password_file;
use crate::deadline::Deadline;
use crate::duration::{format_duration, parse_duration};
use crate::probe::probe_all;
use crate::report::{Facts, Status};
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
        Ok(Some(Guard { me, replies, finding }))
    }

    /// Adds the Sentinels' answers to the facts.
    pub fn add_facts(&self, facts: &mut Facts) {
        facts.set("sentinels", self::facts(&self.replies)).set("announce", self.me.as_str());
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

/// What the guard concludes: how far the Sentinels let this node be the write master, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardFinding {
    /// Passing when a majority names this node and every Sentinel agrees.
    pub status: Status,
    /// For a critical finding, what is wrong in a few words, for the summary line
    /// (`Sentinel names another node`); empty otherwise.
    pub clause: String,
    /// The rule that decided, in words.
    pub reason: String,
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
    let finding = |status, clause: &str, reason: String| GuardFinding { status, clause: clause.into(), reason };
    if for_me >= majority {
        if for_me == total {
            finding(Status::Passing, "", tally)
        } else {
            finding(Status::Warning, "", format!("{tally}; {}", problems.join("; ")))
        }
    } else if !others.is_empty() {
        finding(
            Status::Critical,
            "Sentinel names another node",
            format!("Sentinel says another node is master ({}); {tally}", problems.join("; ")),
        )
    } else if attached.acknowledging == 0 {
        finding(
            Status::Critical,
            "it is cut off from the Sentinel majority and from its replicas",
            format!(
                "cut off: {tally} (a majority is {majority}) and no replica acknowledged within --replica-ack-max-lag {}: \
                 the other side is replacing this node; {}",
                format_duration(attached.ack_limit),
                problems.join("; ")
            ),
        )
    } else {
        finding(
            Status::Warning,
            "",
            format!(
                "Sentinel cannot confirm this node: {tally} (a majority is {majority}), but {} replica(s) still acknowledge: \
                 a Sentinel outage, not an isolation; {}",
                attached.acknowledging,
                problems.join("; ")
            ),
        )
    }
}

/// Asks every Sentinel, in parallel and all within `deadline`, which node is master of `master_name`.
pub fn ask(sentinels: &[Address], master_name: &str, tls: &TlsArgs, login: &Login, deadline: Deadline) -> Vec<SentinelReply> {
    let (name, tls, login) = (master_name.to_string(), tls.clone(), login.clone());
    let limit = crate::duration::format_duration(deadline.limit());
    probe_all(
        sentinels.to_vec(),
        deadline,
        move |s: &Address, deadline: &Deadline| SentinelReply {
            sentinel: s.to_string(),
            answer: ask_one(s, &name, &tls, &login, deadline),
        },
        move |s| SentinelReply {
            sentinel: s.to_string(),
            answer: SentinelAnswer::Unreachable(format!("no answer within the {limit} probe deadline")),
        },
    )
}

fn ask_one(sentinel: &Address, master_name: &str, tls: &TlsArgs, login: &Login, deadline: &Deadline) -> SentinelAnswer {
    let result = (|| -> Result<SentinelAnswer> {
        let mut session = Session::open(sentinel, tls, login, deadline)?;
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name").arg(master_name);
        let reply: Option<Vec<String>> = session.request(&cmd, &format!("SENTINEL get-master-addr-by-name on {sentinel}"))?;
        match reply.as_deref() {
            None => Ok(SentinelAnswer::UnknownMaster),
            Some([host, port]) => match crate::cli::parse_host_port(&format!("{host}:{port}")) {
                Ok(addr) => Ok(SentinelAnswer::Names(addr.to_string())),
                Err(e) => bail!("odd reply from {sentinel}: {e}"),
            },
            Some(other) => bail!("odd reply from {sentinel}: {} items", other.len()),
        }
    })();
    result.unwrap_or_else(|e| SentinelAnswer::Unreachable(format!("{e:#}")))
}

/// The Sentinels' answers as a fact.
pub fn facts(replies: &[SentinelReply]) -> serde_json::Value {
    replies
        .iter()
        .map(|r| match &r.answer {
            SentinelAnswer::Names(a) => json!({"sentinel": r.sentinel, "master": a}),
            SentinelAnswer::UnknownMaster => json!({"sentinel": r.sentinel, "master": null, "error": "unknown master name"}),
            SentinelAnswer::Unreachable(e) => json!({"sentinel": r.sentinel, "master": null, "error": e}),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(i: usize, answer: SentinelAnswer) -> SentinelReply {
        SentinelReply { sentinel: format!("10.0.0.{i}:26379"), answer }
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
                        assert_eq!(got.status == Status::Critical, !got.clause.is_empty());
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

    #[test]
    fn single_sentinel_and_case_insensitive_hosts() {
        assert_eq!(judge("Host:1", &[reply(1, names("host:1"))], &ALONE).status, Status::Passing);
        assert_eq!(judge(ME, &[reply(1, names(OTHER))], &ATTACHED).status, Status::Critical);
        assert_eq!(judge(ME, &[reply(1, down()), reply(2, names(ME))], &ATTACHED).status, Status::Warning);
    }
}
