//! `check-redis-master`: is this Redis the writable master?

use super::info::{ReplicationInfo, Role};
use super::sentinel::{GuardFinding, SentinelArgs};
use super::RedisTarget;
use crate::cli::Common;
use crate::cli::ServerArgs;
use crate::deadline::Deadline;
use crate::report::{Outcome, Subcheck, Verdict};
use crate::runner::Check;
use crate::write_pool::ReplicaCount;
use anyhow::Result;
use clap::Parser;

/// Command line of `check-redis-master`.
#[derive(Parser, Debug)]
#[command(
    name = "check-redis-master",
    version,
    about = "Passing (0) iff this Redis is the writable master; critical (2) otherwise.",
    after_help = "Exit codes: 0 passing, 1 warning, 2 critical. Drop-in call: check-redis-master 6029 [PASSWORD]"
)]
pub struct Args {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sentinel: SentinelArgs,
    /// Warning while fewer than N replicas are online.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_replicas: u32,
}

/// Decides from the facts: master, not loading, not contradicted by Sentinel, enough replicas.
/// `replicas_online` (warning below `--min-replicas`) is measured whatever the role.
pub fn decide(target: &str, info: &ReplicationInfo, guard: Option<&GuardFinding>, min_replicas: u32) -> Verdict {
    let online = info.online_replicas().count();
    let count = ReplicaCount { label: "replicas_online", counted: "online", count: online, min: min_replicas };
    let replicas = count.measured();
    if let Role::Replica(link) = &info.role {
        let state = if link.link_up { "up" } else { "down" };
        return Verdict::new(
            format!("{target} is a replica of {}, not the master", link.master),
            [Subcheck::critical(format!("role is slave (link to {} {state})", link.master)), replicas],
        );
    }
    if info.loading {
        return Verdict::new(
            format!("{target} is master but still loading its dataset"),
            [Subcheck::critical("loading:1: commands are refused until the dataset is loaded"), replicas],
        );
    }
    if let Some((g, clause)) = guard.and_then(|g| Some((g, g.veto()?))) {
        return Verdict::new(format!("{target} says master, but {clause}"), [g.subcheck(), replicas]);
    }
    let replicas = count.decided();
    let verdict = Verdict::new(format!("{target} is master, {online} replica(s) online"), [Subcheck::passing("role is master")]);
    match guard {
        Some(g) => verdict.and(g.subcheck()).and(replicas),
        None => verdict.and(replicas),
    }
}

/// The `check-redis-master` check.
pub struct RedisMaster;

impl Check for RedisMaster {
    const NAME: &'static str = "redis-master";
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
        // The write check also warns when the Sentinels' down-after defeats the partition rule.
        let finding = seen.guard.as_ref().map(|g| g.finding());
        let verdict = decide(&target.address.to_string(), &seen.info, finding.as_ref(), args.min_replicas);
        Ok(Outcome::new(verdict, seen.facts(target)))
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
    fn guard(status: Status) -> GuardFinding {
        let reason = format!("sentinels say {status:?}");
        match status {
            Status::Passing => GuardFinding::confirms(reason),
            Status::Warning => GuardFinding::doubts(reason),
            Status::Critical => GuardFinding::vetoes("Sentinel names another node", reason),
        }
    }

    /// The whole table: role x loading x guard x min-replicas.
    #[test]
    fn decision_table() {
        let guards = [None, Some(Status::Passing), Some(Status::Warning), Some(Status::Critical)];
        for text in [MASTER_TWO_REPLICAS, MASTER_ALONE, REPLICA_UP, REPLICA_LINK_DOWN, REPLICA_SYNCING] {
            for loading in [false, true] {
                for g in guards {
                    for min in [0, 1, 2, 3] {
                        let mut i = info(text);
                        i.loading = loading;
                        let gf = g.map(guard);
                        let v = decide("t:1", &i, gf.as_ref(), min);
                        let online = i.online_replicas().count() as u32;
                        let expected = if i.role != Role::Master || loading || g == Some(Status::Critical) {
                            Status::Critical
                        } else if g == Some(Status::Warning) || online < min {
                            Status::Warning
                        } else {
                            Status::Passing
                        };
                        assert_eq!(v.status(), expected, "{text:?} loading={loading} guard={g:?} min={min}: {v:?}");
                        assert!(!v.reasons().is_empty());
                        assert_eq!(v.perfdata().len(), 1, "replicas_online is measured in every state: {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn summaries_say_why() {
        let v = decide("10.0.0.3:6029", &info(REPLICA_UP), None, 0);
        assert_eq!(v.summary(), "10.0.0.3:6029 is a replica of 127.0.0.1:41000, not the master");
        let v = decide("10.0.0.2:6029", &info(MASTER_TWO_REPLICAS), None, 3);
        assert_eq!(v.status(), Status::Warning);
        assert!(v.reasons().iter().any(|r| r.contains("fewer than --min-replicas 3")), "{v:?}");
        let v = decide("10.0.0.2:6029", &info(MASTER_ALONE), Some(&guard(Status::Critical)), 0);
        assert!(v.summary().contains("Sentinel names another node"));
    }

    /// The whole text as Consul stores it: the limit that decided is the one the perfdata shows,
    /// and the line that explains it follows the guard's.
    #[test]
    fn the_output_carries_the_limit_that_decided() {
        let render = |v: Verdict| crate::report::Report::new("redis-master", "m:1", Outcome::bare(v)).render_text();
        let text = render(decide("m:1", &info(MASTER_TWO_REPLICAS), Some(&guard(Status::Passing)), 3));
        assert_eq!(
            text,
            "REDIS-MASTER WARNING: m:1 is master, 2 replica(s) online; 2 replica(s) online, fewer than --min-replicas 3 | replicas_online=2;3:\n\
             - role is master\n\
             - sentinels say Passing\n\
             - 2 replica(s) online, fewer than --min-replicas 3\n"
        );
        let text = render(decide("m:1", &info(MASTER_TWO_REPLICAS), Some(&guard(Status::Critical)), 3));
        assert_eq!(
            text,
            "REDIS-MASTER CRITICAL: m:1 says master, but Sentinel names another node | replicas_online=2;3:\n- sentinels say Critical\n"
        );
    }
}
