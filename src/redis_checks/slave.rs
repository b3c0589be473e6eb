//! `check-redis-slave`: should this Redis be in the read pool?

use super::info::ReplicationInfo;
use super::lag_within;
use super::sentinel::{GuardFinding, SentinelArgs};
use crate::cli::ServerArgs;
use crate::duration::{format_duration, parse_duration};
use crate::report::{Outcome, Perfdata, Status, Verdict};
use crate::runner::{Check, Run};
use anyhow::Result;
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
    /// Most seconds since a replica last heard from its master (number or duration: 30, 30s);
    /// keep it above the master's repl-ping-replica-period (10s by default).
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub max_lag: Option<Duration>,
    /// Keep a master out of the read pool even when no replica is healthy.
    #[arg(long)]
    pub no_master_fallback: bool,
    /// With --sentinel: a node that says master while the Sentinels name another (a returning old
    /// master, with stale data) is out of the read pool too.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sentinel: SentinelArgs,
}

/// Decides from the facts (and the Sentinels' view, for a master) whether the node belongs in the read pool.
pub fn decide(target: &str, info: &ReplicationInfo, max_lag: Option<Duration>, master_fallback: bool, guard: Option<&GuardFinding>) -> Verdict {
    let limit = max_lag.map(|d| format!(", over --max-lag {}", format_duration(d))).unwrap_or_default();
    match &info.link {
        Some(link) => {
            let lag = link.last_io_seconds_ago;
            let lag_text = lag.map(|l| format!("{l}s")).unwrap_or_else(|| "unknown".into());
            let head = format!("{target} replica of {}", link.master);
            if info.loading {
                Verdict::critical(format!("{head}, loading its dataset")).because("loading:1: reads are refused until loaded")
            } else if !link.link_up {
                let since = link
                    .link_down_since_seconds
                    .filter(|s| *s >= 0)
                    .map(|s| format!(" for {s}s"))
                    .unwrap_or_default();
                let why = if link.sync_in_progress { " (initial sync in progress)" } else { "" };
                Verdict::critical(format!("{head}, link down{since}{why}"))
                    .because(format!("master_link_status is down{since}: the replica cannot follow {}", link.master))
            } else if link.sync_in_progress {
                Verdict::critical(format!("{head}, initial sync in progress"))
                    .because("master_sync_in_progress:1: the dataset is not complete yet")
            } else if !lag_within(lag, max_lag) {
                Verdict::critical(format!("{head}, link up, lag {lag_text}{limit}"))
                    .because(format!("master_last_io_seconds_ago is {lag_text}{limit}"))
            } else {
                Verdict::passing(format!("{head}, link up, lag {lag_text}"))
                    .because("master_link_status is up, no sync in progress")
            }
        }
        None => {
            let healthy: Vec<&str> = info
                .online_replicas()
                .filter(|r| lag_within(r.lag_seconds, max_lag))
                .map(|r| r.address.as_str())
                .collect();
            if let Some(g) = guard.filter(|g| g.status == Status::Critical) {
                Verdict::critical(format!("{target} says master, but Sentinel names another node: its data is stale"))
                    .because(g.reason.clone())
            } else if !master_fallback {
                Verdict::critical(format!("{target} is the master; --no-master-fallback keeps it out of the read pool"))
                    .because("role is master and master fallback is off")
            } else if healthy.is_empty() {
                let listed = info.replicas.len();
                Verdict::passing(format!("{target} is the master and no replica is healthy: it serves reads"))
                    .because(format!("role is master; {listed} replica(s) listed, none online{}", lag_clause(max_lag)))
            } else {
                Verdict::critical(format!("{target} is the master; {} healthy replica(s) serve reads", healthy.len()))
                    .because(format!("healthy replicas: {}", healthy.join(", ")))
            }
        }
    }
}

fn lag_clause(max_lag: Option<Duration>) -> String {
    max_lag.map(|d| format!(" within --max-lag {}", format_duration(d))).unwrap_or_default()
}

/// The `check-redis-slave` check.
pub struct RedisSlave;

impl Check for RedisSlave {
    const NAME: &'static str = "redis-slave";
    const DEFAULT_PORT: u16 = super::DEFAULT_PORT;
    type Args = Args;

    fn server(args: &Args) -> &ServerArgs {
        &args.server
    }

    fn evaluate(args: &Args, run: &Run) -> Result<Outcome> {
        let (address, info, guard, mut facts) = super::observe_guarded(&args.server, &args.sentinel, run)?;
        let verdict = decide(&address.to_string(), &info, args.max_lag, !args.no_master_fallback, guard.as_ref().map(|g| &g.finding));
        if let Some(d) = args.max_lag {
            facts.set("max_lag_seconds", crate::report::seconds_value(d));
        }
        let perfdata = match &info.link {
            Some(link) => link
                .last_io_seconds_ago
                .map(|lag| {
                    let mut p = Perfdata::new("lag", lag, "s");
                    p.crit = args.max_lag.map(|d| crate::report::seconds_value(d).to_string());
                    p
                })
                .into_iter()
                .collect(),
            None => vec![Perfdata::new("replicas_online", info.online_replicas().count() as i64, "")],
        };
        Ok(Outcome { verdict, facts, perfdata })
    }
}

#[cfg(test)]
mod tests {
    use super::super::info::samples::*;
    use super::*;
    use crate::report::Status;

    fn info(text: &str) -> ReplicationInfo {
        ReplicationInfo::parse(text).unwrap()
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
                        let link = i.link.clone().unwrap();
                        let ok = !loading && link.link_up && !link.sync_in_progress && lag_within(link.last_io_seconds_ago, max);
                        let v = decide("t:1", &i, max, fallback, None);
                        assert_eq!(v.status == Status::Passing, ok, "{text:?} loading={loading} max={max:?}: {v:?}");
                        assert_ne!(v.status, Status::Warning, "a node in the wrong role is never a warning");
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
                        let any_healthy = i.online_replicas().any(|r| lag_within(r.lag_seconds, max));
                        let finding = g.map(|status| GuardFinding { status, reason: "sentinels".into() });
                        let v = decide("t:1", &i, max, fallback, finding.as_ref());
                        let expected = if fallback && !any_healthy && g != Some(Status::Critical) { Status::Passing } else { Status::Critical };
                        assert_eq!(v.status, expected, "{text:?} max={max:?} fallback={fallback} guard={g:?}: {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn replica_states_say_why() {
        let v = decide("10.0.0.3:6029", &info(REPLICA_UP), Some(Duration::from_secs(120)), true, None);
        assert_eq!(v.summary, "10.0.0.3:6029 replica of 127.0.0.1:41000, link up, lag 0s");
        let v = decide("r:1", &info(REPLICA_LINK_DOWN), None, true, None);
        assert_eq!(v.summary, "r:1 replica of 127.0.0.1:41000, link down for 1s");
        let v = decide("r:1", &info(REPLICA_SYNCING), None, true, None);
        assert!(v.summary.contains("initial sync in progress"), "{}", v.summary);
        let lagging = REPLICA_UP.replace("master_last_io_seconds_ago:0", "master_last_io_seconds_ago:9");
        let v = decide("r:1", &info(&lagging), Some(Duration::from_secs(5)), true, None);
        assert_eq!(v.summary, "r:1 replica of 127.0.0.1:41000, link up, lag 9s, over --max-lag 5s");
    }

    #[test]
    fn lagging_replicas_send_reads_back_to_the_master() {
        let lagging = MASTER_TWO_REPLICAS.replace("lag=0", "lag=5").replace("lag=1", "lag=7");
        let v = decide("m:1", &info(&lagging), Some(Duration::from_secs(2)), true, None);
        assert_eq!(v.status, Status::Passing, "{v:?}");
        let v = decide("m:1", &info(&lagging), Some(Duration::from_secs(5)), true, None);
        assert_eq!(v.status, Status::Critical);
        assert_eq!(v.reasons[0], "healthy replicas: 127.0.0.1:41002");
        let v = decide("m:1", &info(&lagging), None, true, None);
        assert!(v.reasons[0].contains("127.0.0.1:41001") && v.reasons[0].contains("127.0.0.1:41002"));
    }
}
