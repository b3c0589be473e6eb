//! The split-brain guard: asks the Sentinels which node is master, and judges their answers.

use super::client::{Login, Session};
use crate::cli::{parse_host_port, Address, TlsArgs};
use crate::credentials::read_password_file;
use crate::deadline::Deadline;
use crate::probe::probe_all;
use crate::report::{Facts, Status};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::PathBuf;

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
    /// Asks the Sentinels about the node at `address`, when `--sentinel` is given.
    pub fn consult(args: &SentinelArgs, address: &Address, tls: &TlsArgs, deadline: &Deadline) -> Result<Option<Guard>> {
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
        let replies = ask(&args.sentinels, name, tls, &login, deadline.for_probes());
        let finding = judge(&me, &replies);
        Ok(Some(Guard { me, replies, finding }))
    }

    /// Adds the Sentinels' answers to the facts.
    pub fn add_facts(&self, facts: &mut Facts) {
        facts.set("sentinels", self::facts(&self.replies)).set("announce", self.me.as_str());
    }
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

/// What the guard concludes: how far the Sentinels let this node be the write master, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardFinding {
    /// Passing when a majority names this node and every Sentinel agrees.
    pub status: Status,
    /// The rule that decided, in words.
    pub reason: String,
}

/// Judges the Sentinels' answers for the node that Sentinel knows as `me` (`host:port`).
///
/// - a majority of the given Sentinels names `me`: passing (warning if any other is unreachable or disagrees);
/// - otherwise, any reachable Sentinel names another node: critical (a returning old master);
/// - otherwise (Sentinels unreachable or unaware of the name): warning, since unreachable Sentinels alone
///   must not take a healthy master out.
pub fn judge(me: &str, replies: &[SentinelReply]) -> GuardFinding {
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
            GuardFinding { status: Status::Passing, reason: tally }
        } else {
            GuardFinding { status: Status::Warning, reason: format!("{tally}; {}", problems.join("; ")) }
        }
    } else if !others.is_empty() {
        GuardFinding {
            status: Status::Critical,
            reason: format!("Sentinel says another node is master ({}); {tally}", problems.join("; ")),
        }
    } else {
        GuardFinding {
            status: Status::Warning,
            reason: format!("Sentinel cannot confirm this node: {tally} (a majority is {majority}); {}", problems.join("; ")),
        }
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

    /// Every combination of three Sentinels' answers, against the rule in words.
    #[test]
    fn whole_table_for_three_sentinels() {
        let kinds = [names(ME), names(OTHER), SentinelAnswer::UnknownMaster, down()];
        for a in &kinds {
            for b in &kinds {
                for c in &kinds {
                    let replies = [reply(1, a.clone()), reply(2, b.clone()), reply(3, c.clone())];
                    let me = replies.iter().filter(|r| r.answer == names(ME)).count();
                    let other = replies.iter().filter(|r| r.answer == names(OTHER)).count();
                    let expected = if me == 3 {
                        Status::Passing
                    } else if me >= 2 {
                        Status::Warning
                    } else if other >= 1 {
                        Status::Critical
                    } else {
                        Status::Warning
                    };
                    let got = judge(ME, &replies);
                    assert_eq!(got.status, expected, "{replies:?} -> {got:?}");
                }
            }
        }
    }

    #[test]
    fn returning_old_master_is_critical_and_says_who() {
        let got = judge(ME, &[reply(1, names(OTHER)), reply(2, names(OTHER)), reply(3, down())]);
        assert_eq!(got.status, Status::Critical);
        assert!(got.reason.contains(OTHER) && got.reason.contains("0 of 3"), "{}", got.reason);
    }

    #[test]
    fn unreachable_sentinels_alone_only_warn() {
        let got = judge(ME, &[reply(1, down()), reply(2, down()), reply(3, down())]);
        assert_eq!(got.status, Status::Warning);
        assert!(got.reason.contains("unreachable"), "{}", got.reason);
    }

    #[test]
    fn single_sentinel_and_case_insensitive_hosts() {
        assert_eq!(judge("Host:1", &[reply(1, names("host:1"))]).status, Status::Passing);
        assert_eq!(judge(ME, &[reply(1, names(OTHER))]).status, Status::Critical);
        assert_eq!(judge(ME, &[reply(1, down()), reply(2, names(ME))]).status, Status::Warning);
    }
}
