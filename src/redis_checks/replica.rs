//! `check-redis-slave`: should this Redis be in the read pool?

use super::info::{ReplicationInfo, Role};
use super::sentinel::{GuardFinding, SentinelArgs};
use super::RedisTarget;
use crate::cli::Common;
use crate::cli::{Address, ServerArgs};
use crate::deadline::Deadline;
use crate::duration::parse_duration;
use crate::read_pool::{master_verdict, ReadPolicy, ReplicaHealth};
use crate::report::{Outcome, Status, Subcheck, Thresholds, Verdict};
use crate::runner::Check;
use anyhow::{Context, Result};
use clap::Parser;
use std::time::Duration;

/// Command line of `check-redis-slave`.
#[derive(Parser, Debug)]
#[command(
    name = "check-redis-slave",
    version,
    about = "Passing (0) iff this Redis should serve reads: a healthy replica, or a master with no healthy replica.",
    after_help = "Exit codes: 0 passing, 1 warning, 2 critical. Drop-in call: check-redis-slave 6029 [PASSWORD]"
)]
pub struct Args {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// Most seconds since a replica last heard from its master (number or duration: 30, 30s); a
    /// lag at most this passes. Keep it above the master's repl-ping-replica-period (10s by default).
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub max_lag: Option<Duration>,
    /// Keep a master out of the read pool even when no replica is healthy.
    #[arg(long)]
    pub no_master_fallback: bool,
    /// Most bytes a replica may be behind its master's replication stream (1048576, 512k, 16MB: K,
    /// M and G are 1024-based). A replica asks its master within the deadline (unknown is
    /// critical); a master compares each replica's acknowledged offset with its own.
    #[arg(long, value_name = "BYTES", value_parser = crate::cli::parse_bytes)]
    pub max_lag_bytes: Option<u64>,
    /// With --sentinel: a node that says master while the Sentinels name another (a returning old
    /// master, with stale data) is out of the read pool too.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sentinel: SentinelArgs,
}

/// Seconds as the read-pool rule takes them (Redis shows -1 for "unknown").
fn seconds(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// How far behind its master's replication stream a replica is, against `--max-lag-bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteLag {
    /// `--max-lag-bytes`.
    pub limit: u64,
    /// The master's offset minus what the replica processed; why it is unknown otherwise (a
    /// replica's master that could not be asked).
    pub behind: Result<u64, String>,
}

/// Decides from the facts (and the Sentinels' view, for a master) whether the node belongs in the read pool.
pub fn decide(target: &str, info: &ReplicationInfo, policy: &ReadPolicy, guard: Option<&GuardFinding>) -> Verdict {
    decide_with_probes(target, info, policy, guard, &[], None)
}

/// The same, for a master, with what its replicas said of themselves (`probes`): a replica the
/// master lists `state=online` within the lag limit is healthy only if it says so too (a replica
/// still loading the RDB the master has finished sending is listed online, but serves no reads).
pub fn decide_with_probes(
    target: &str,
    info: &ReplicationInfo,
    policy: &ReadPolicy,
    guard: Option<&GuardFinding>,
    probes: &[ReplicaHealth],
    bytes: Option<&ByteLag>,
) -> Verdict {
    match &info.role {
        Role::Replica(link) => {
            let lag_text = seconds(link.last_io_seconds_ago).map(|l| format!("{l}s")).unwrap_or_else(|| "unknown".into());
            let lag = Subcheck::measured("lag", link.last_io_seconds_ago, "s", policy.lag_thresholds());
            let head = format!("{target} replica of {}", link.master);
            if info.loading {
                Verdict::new(format!("{head}, loading its dataset"), [Subcheck::critical("loading:1: reads are refused until loaded"), lag])
            } else if !link.link_up {
                let since = link.link_down_since_seconds.map(|s| format!(" for {s}s")).unwrap_or_default();
                let why = if link.sync_in_progress { " (initial sync in progress)" } else { "" };
                let rule = format!("master_link_status is down{since}: the replica cannot follow {}", link.master);
                Verdict::new(format!("{head}, link down{since}{why}"), [Subcheck::critical(rule), lag])
            } else if link.sync_in_progress {
                let rule = Subcheck::critical("master_sync_in_progress:1: the dataset is not complete yet");
                Verdict::new(format!("{head}, initial sync in progress"), [rule, lag])
            } else if lag.status() != Status::Passing {
                let over = policy.over_limit_clause();
                Verdict::new(
                    format!("{head}, link up, lag {lag_text}{over}"),
                    [lag.saying(format!("master_last_io_seconds_ago is {lag_text}{over}"))],
                )
            } else {
                let rule = Subcheck::passing("master_link_status is up, no sync in progress");
                match bytes {
                    None => Verdict::new(format!("{head}, link up, lag {lag_text}"), [rule, lag]),
                    Some(ByteLag { behind: Err(why), limit }) => Verdict::new(
                        format!("{head}, link up, but how far behind is unknown: {why}"),
                        [
                            rule,
                            Subcheck::critical(format!("cannot tell the bytes behind {} (--max-lag-bytes {limit}): {why}", link.master)),
                            lag,
                        ],
                    ),
                    Some(ByteLag { behind: Ok(n), limit }) => {
                        let measured = Subcheck::measured("lag_bytes", i64::try_from(*n).ok(), "B", Thresholds::crit_above_count(*limit));
                        if measured.status() == Status::Passing {
                            Verdict::new(format!("{head}, link up, lag {lag_text}, {n} bytes behind"), [rule, lag, measured])
                        } else {
                            let line = format!("{n} bytes behind {}, over --max-lag-bytes {limit}", link.master);
                            Verdict::new(
                                format!("{head}, link up, lag {lag_text}, but {n} bytes behind, over --max-lag-bytes {limit}"),
                                [rule, lag, measured.saying(line)],
                            )
                        }
                    }
                }
            }
        }
        Role::Master => {
            let online = Subcheck::measured("replicas_online", Some(info.online_replicas().count() as i64), "", Thresholds::none());
            if let Some((g, clause)) = guard.and_then(|g| Some((g, g.veto()?))) {
                return Verdict::new(format!("{target} says master, but {clause}: its data is stale"), [g.subcheck(), online]);
            }
            let replicas: Vec<ReplicaHealth> = master_view(info, policy, bytes.map(|b| b.limit))
                .into_iter()
                .map(|mut r| {
                    if r.is_healthy() {
                        if let Some(probe) = probes.iter().find(|p| p.replica == r.replica && !p.is_healthy()) {
                            r.problem = probe.problem.as_ref().map(|problem| format!("listed online, but {problem}"));
                            r.unprobed = probe.unprobed;
                        }
                    }
                    r
                })
                .collect();
            master_verdict(target, &replicas, policy).and(online)
        }
    }
}

/// The replicas as the master lists them: online, within the lag limit and (with
/// `--max-lag-bytes`, `max_bytes`) within that many bytes of its own offset by their last
/// acknowledgement, or why not.
pub fn master_view(info: &ReplicationInfo, policy: &ReadPolicy, max_bytes: Option<u64>) -> Vec<ReplicaHealth> {
    info.replicas
        .iter()
        .map(|r| {
            let lag = seconds(r.lag_seconds);
            let behind = match (info.repl_offset, r.offset) {
                (Some(own), Some(acked)) => Some(own.saturating_sub(acked).max(0) as u64),
                _ => None,
            };
            let problem = if !r.is_online() {
                Some(format!("state={}", r.state))
            } else if !policy.lag_passes(r.lag_seconds) {
                Some(format!("lag {}{}", lag.map(|l| format!("{l}s")).unwrap_or_else(|| "unknown".into()), policy.over_limit_clause()))
            } else if let Some(limit) = max_bytes {
                match behind {
                    None => Some(format!("its offset is unknown (--max-lag-bytes {limit})")),
                    Some(n) if n > limit => Some(format!("{n} bytes behind, over --max-lag-bytes {limit}")),
                    Some(_) => None,
                }
            } else {
                None
            };
            ReplicaHealth::judged(r.address.clone(), problem)
        })
        .collect()
}

/// Memory one replica probe may use: a connection and an INFO reply of a few KiB.
pub const REPLICA_PROBE_BUDGET: usize = 2 << 20;

/// Asks each replica the master lists as healthy what it says of itself (INFO, the same login and
/// TLS), in parallel within `deadline`: healthy only if its own read check would pass.
pub fn probe_replicas(
    master: &ReplicationInfo,
    target: &RedisTarget,
    policy: ReadPolicy,
    max_bytes: Option<u64>,
    deadline: Deadline,
) -> Vec<ReplicaHealth> {
    let addresses: Vec<Address> = master_view(master, &policy, max_bytes)
        .into_iter()
        .filter(ReplicaHealth::is_healthy)
        .filter_map(|r| crate::cli::parse_host_port(&r.replica).ok())
        .collect();
    let (tls, login) = (target.tls.clone(), target.login.clone());
    let limit = deadline.limit();
    crate::probe::probe_all(
        addresses,
        deadline,
        REPLICA_PROBE_BUDGET,
        move |addr: &Address, deadline: &Deadline| {
            let asked = super::client::Session::open(addr, &tls, &login, deadline).and_then(|mut s| s.replication_info());
            let text = match asked {
                Ok(text) => text,
                Err(e) => return ReplicaHealth::unprobed(addr.to_string(), format!("{e:#}")),
            };
            let problem = (|| -> Result<Option<String>> {
                let info = ReplicationInfo::parse(&text).with_context(|| format!("cannot read INFO replication from {addr}"))?;
                if info.role == Role::Master {
                    return Ok(Some("it says it is a master".into()));
                }
                let v = decide(&addr.to_string(), &info, &policy, None);
                Ok((v.status() != Status::Passing).then(|| format!("it says: {}", v.summary())))
            })()
            .unwrap_or_else(|e| Some(format!("{e:#}")));
            ReplicaHealth::judged(addr.to_string(), problem)
        },
        move |addr, why| ReplicaHealth::unfinished(addr, why, limit),
    )
}

/// How many bytes of its master's replication stream the replica `link` has not processed: the
/// master's `master_repl_offset` (asked now, with the same login and TLS, within `deadline`) minus
/// the replica's `slave_repl_offset` (read just before). Unknown, in words, when either is.
fn bytes_behind(link: &super::info::MasterLink, target: &RedisTarget, deadline: Deadline) -> Result<u64, String> {
    let processed = link.processed_offset.ok_or("the replica did not report slave_repl_offset")?;
    let master = crate::cli::parse_host_port(&link.master).map_err(|e| format!("its master {}: {e}", link.master))?;
    let (tls, login) = (target.tls.clone(), target.login.clone());
    let limit = deadline.limit();
    let mut answers = crate::probe::probe_all(
        vec![master],
        deadline,
        REPLICA_PROBE_BUDGET,
        move |addr: &Address, deadline: &Deadline| -> Result<i64, String> {
            let mut session = super::client::Session::open(addr, &tls, &login, deadline).map_err(|e| format!("{e:#}"))?;
            let text = session.replication_info().map_err(|e| format!("{e:#}"))?;
            let info = ReplicationInfo::parse(&text).map_err(|e| format!("cannot read INFO replication from {addr}: {e:#}"))?;
            if info.role != Role::Master {
                return Err(format!("its master {addr} says it is not a master"));
            }
            info.repl_offset.ok_or_else(|| format!("its master {addr} did not report master_repl_offset"))
        },
        move |addr, why| Err(format!("its master {addr}: {}", why.describe(limit))),
    );
    let own = answers.pop().unwrap_or_else(|| Err("no answer".into()))?;
    Ok(own.saturating_sub(processed).max(0) as u64)
}

/// The `check-redis-slave` check.
pub struct RedisReplica;

impl Check for RedisReplica {
    const NAME: &'static str = "redis-slave";
    type Args = Args;
    type Target = RedisTarget;

    fn common(args: &Args) -> Common<'_> {
        args.server.common(super::DEFAULT_PORT)
    }

    fn resolve(args: &Args) -> Result<RedisTarget> {
        RedisTarget::resolve(&args.server)
    }

    fn describe(target: &RedisTarget) -> String {
        target.address.to_string()
    }

    fn evaluate(args: &Args, target: &RedisTarget, deadline: &Deadline) -> Result<Outcome> {
        let seen = super::observe(target, &args.sentinel, deadline)?;
        let policy = ReadPolicy { max_lag: args.max_lag, master_fallback: !args.no_master_fallback };
        let probes = match seen.info.role {
            Role::Master if policy.master_fallback => probe_replicas(&seen.info, target, policy, args.max_lag_bytes, deadline.for_probes()),
            _ => Vec::new(),
        };
        let bytes = args.max_lag_bytes.map(|limit| ByteLag {
            limit,
            behind: match &seen.info.role {
                Role::Replica(link) if link.link_up => bytes_behind(link, target, deadline.for_probes()),
                _ => Ok(0),
            },
        });
        let guard = seen.guard.as_ref().map(|g| &g.finding);
        let verdict = decide_with_probes(&target.address.to_string(), &seen.info, &policy, guard, &probes, bytes.as_ref());
        let mut facts = seen.facts(target);
        if !probes.is_empty() {
            facts.set("probes", crate::read_pool::probes_fact(&probes));
        }
        if let Some(d) = args.max_lag {
            facts.set("max_lag_seconds", crate::report::seconds_value(d));
        }
        Ok(Outcome::new(verdict, facts))
    }
}

#[cfg(test)]
mod tests {
    use super::super::info::samples::*;
    use super::*;
    use crate::report::Status;
    use std::time::Duration;

    fn info(text: &str) -> ReplicationInfo {
        ReplicationInfo::parse(text).unwrap()
    }
    fn policy(max_lag: Option<Duration>, master_fallback: bool) -> ReadPolicy {
        ReadPolicy { max_lag, master_fallback }
    }

    /// Every replica state x lag limit x loading, and every master state x lag limit x fallback.
    #[test]
    fn decision_table() {
        let limits = [None, Some(Duration::from_secs(0)), Some(Duration::from_secs(1)), Some(Duration::from_secs(10))];
        for text in [REPLICA_UP, REPLICA_LINK_DOWN, REPLICA_SYNCING] {
            for loading in [false, true] {
                for max in limits {
                    for fallback in [true, false] {
                        let mut i = info(text);
                        i.loading = loading;
                        let link = i.link().cloned().unwrap();
                        let p = policy(max, fallback);
                        let ok = !loading && link.link_up && !link.sync_in_progress && p.lag_passes(link.last_io_seconds_ago);
                        let v = decide("t:1", &i, &p, None);
                        assert_eq!(v.status() == Status::Passing, ok, "{text:?} loading={loading} max={max:?}: {v:?}");
                        assert_ne!(v.status(), Status::Warning, "a node in the wrong role is never a warning");
                    }
                }
            }
        }
        let guards = [None, Some(Status::Passing), Some(Status::Warning), Some(Status::Critical)];
        for text in [MASTER_TWO_REPLICAS, MASTER_ALONE] {
            for max in limits {
                for fallback in [true, false] {
                    for g in guards {
                        let i = info(text);
                        let p = policy(max, fallback);
                        let any_healthy = i.online_replicas().any(|r| p.lag_passes(r.lag_seconds));
                        let finding = g.map(|status| match status {
                            Status::Passing => GuardFinding::confirms("sentinels"),
                            Status::Warning => GuardFinding::doubts("sentinels"),
                            Status::Critical => GuardFinding::vetoes("Sentinel names another node", "sentinels"),
                        });
                        let v = decide("t:1", &i, &p, finding.as_ref());
                        let expected =
                            if fallback && !any_healthy && g != Some(Status::Critical) { Status::Passing } else { Status::Critical };
                        assert_eq!(v.status(), expected, "{text:?} max={max:?} fallback={fallback} guard={g:?}: {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn replica_states_say_why() {
        let v = decide("10.0.0.3:6029", &info(REPLICA_UP), &policy(Some(Duration::from_secs(120)), true), None);
        assert_eq!(v.summary(), "10.0.0.3:6029 replica of 127.0.0.1:41000, link up, lag 0s");
        let v = decide("r:1", &info(REPLICA_LINK_DOWN), &policy(None, true), None);
        assert_eq!(v.summary(), "r:1 replica of 127.0.0.1:41000, link down for 1s");
        let v = decide("r:1", &info(REPLICA_SYNCING), &policy(None, true), None);
        assert!(v.summary().contains("initial sync in progress"), "{}", v.summary());
        let lagging = REPLICA_UP.replace("master_last_io_seconds_ago:0", "master_last_io_seconds_ago:9");
        let v = decide("r:1", &info(&lagging), &policy(Some(Duration::from_secs(5)), true), None);
        assert_eq!(v.summary(), "r:1 replica of 127.0.0.1:41000, link up, lag 9s, over --max-lag 5s");
        let v = decide("r:1", &info(&lagging), &policy(Some(Duration::from_secs(9)), true), None);
        assert_eq!(v.status(), Status::Passing, "lag at the limit passes: {v:?}");
    }

    #[test]
    fn lagging_replicas_send_reads_back_to_the_master() {
        let lagging = MASTER_TWO_REPLICAS.replace("lag=0", "lag=5").replace("lag=1", "lag=7");
        let v = decide("m:1", &info(&lagging), &policy(Some(Duration::from_secs(2)), true), None);
        assert_eq!(v.status(), Status::Passing, "{v:?}");
        let v = decide("m:1", &info(&lagging), &policy(Some(Duration::from_secs(5)), true), None);
        assert_eq!(v.status(), Status::Critical);
        assert_eq!(v.reasons(), ["127.0.0.1:41001: lag 7s, over --max-lag 5s", "127.0.0.1:41002: healthy"]);
        let v = decide("m:1", &info(&lagging), &policy(None, true), None);
        assert!(v.reasons().iter().all(|r| r.ends_with("healthy")), "{v:?}");
    }

    /// The whole text: the lag limit shows in the perfdata and decides; a master's replicas are
    /// its lines, each with what it said.
    #[test]
    fn the_output_carries_the_limit_that_decided() {
        let render = |v: Verdict| crate::report::Report::new("redis-slave", "t", Outcome::bare(v)).render_text();
        let lagging = REPLICA_UP.replace("master_last_io_seconds_ago:0", "master_last_io_seconds_ago:9");
        assert_eq!(
            render(decide("r:1", &info(&lagging), &policy(Some(Duration::from_millis(8500)), true), None)),
            "REDIS-SLAVE CRITICAL: r:1 replica of 127.0.0.1:41000, link up, lag 9s, over --max-lag 8500ms | lag=9s;;8.5\n\
             - master_last_io_seconds_ago is 9s, over --max-lag 8500ms\n"
        );
        let listed = master_view(&info(MASTER_TWO_REPLICAS), &policy(None, true), None);
        let probes = [ReplicaHealth { problem: Some("it says: loading".into()), ..listed[0].clone() }, listed[1].clone()];
        assert_eq!(
            render(decide_with_probes("m:1", &info(MASTER_TWO_REPLICAS), &policy(None, true), None, &probes, None)),
            "REDIS-SLAVE CRITICAL: m:1 is the master; 1 healthy replica(s) serve reads | replicas_online=2\n\
             - 127.0.0.1:41001: listed online, but it says: loading\n\
             - 127.0.0.1:41002: healthy\n"
        );
    }

    /// A replica the master lists online serves reads only if it says so itself: a replica still
    /// loading the RDB (listed online by the master) leaves the master serving reads.
    #[test]
    fn probes_confirm_what_the_master_lists() {
        let master = info(MASTER_TWO_REPLICAS);
        let p = policy(None, true);
        let listed = master_view(&master, &p, None);
        assert!(listed.len() == 2 && listed.iter().all(ReplicaHealth::is_healthy), "{listed:?}");
        assert_eq!(decide_with_probes("m:1", &master, &p, None, &[], None).status(), Status::Critical, "master view alone");
        let loading =
            |r: &ReplicaHealth| ReplicaHealth::judged(r.replica.clone(), Some("it says: link down (initial sync in progress)".into()));
        let both_loading: Vec<ReplicaHealth> = listed.iter().map(loading).collect();
        let v = decide_with_probes("m:1", &master, &p, None, &both_loading, None);
        assert_eq!(v.status(), Status::Passing, "no replica serves: the master does: {v:?}");
        assert!(v.reasons().iter().any(|r| r.contains("listed online, but it says")), "{v:?}");
        let one_ok = vec![loading(&listed[0]), ReplicaHealth::judged(listed[1].replica.clone(), None)];
        assert_eq!(decide_with_probes("m:1", &master, &p, None, &one_ok, None).status(), Status::Critical);
    }

    /// `--max-lag-bytes` on a replica: within, over, unknown; on a master, from the offsets it lists.
    #[test]
    fn bytes_behind_decide() {
        let replica = info(REPLICA_UP);
        let p = policy(None, true);
        let with = |behind: Result<u64, String>| decide_with_probes("r:1", &replica, &p, None, &[], Some(&ByteLag { limit: 1000, behind }));
        let v = with(Ok(1000));
        assert_eq!((v.status(), v.summary().ends_with("1000 bytes behind")), (Status::Passing, true), "{}", v.summary());
        let v = with(Ok(1001));
        assert_eq!(v.status(), Status::Critical);
        assert!(v.summary().ends_with("but 1001 bytes behind, over --max-lag-bytes 1000"), "{}", v.summary());
        let v = with(Err("its master 10.0.0.2:6029: timed out".into()));
        assert_eq!(v.status(), Status::Critical);
        assert!(v.summary().contains("how far behind is unknown: its master 10.0.0.2:6029: timed out"), "{}", v.summary());
        let master = info("role:master\r\nloading:0\r\nmaster_repl_offset:5000\r\nslave0:ip=a,port=1,state=online,offset=4500,lag=0\r\nslave1:ip=b,port=1,state=online,offset=3000,lag=0\r\n");
        let view = master_view(&master, &p, Some(1000));
        assert_eq!(view[0].problem, None);
        assert_eq!(view[1].problem.as_deref(), Some("2000 bytes behind, over --max-lag-bytes 1000"));
        assert!(master_view(&master, &p, None).iter().all(ReplicaHealth::is_healthy));
    }
}
