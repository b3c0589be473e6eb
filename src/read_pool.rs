//! The read-pool rule both databases share: replicas serve reads; a master serves them only when no
//! replica can (and `--no-master-fallback` is not given). `--max-lag` means the same on both: a lag
//! at most the limit passes.

use crate::duration::format_duration;
use crate::report::{Status, Subcheck, Thresholds, Verdict};
use std::time::Duration;

/// How a read check treats lag and masters; built once from the check's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPolicy {
    /// `--max-lag`: a replica lagging more than this is out of the read pool (`None`: no limit).
    pub max_lag: Option<Duration>,
    /// Not `--no-master-fallback`: a master serves reads when no replica is healthy.
    pub master_fallback: bool,
}

impl ReadPolicy {
    /// `--max-lag` as the limit of a lag in seconds: the one declaration the decisions and the
    /// perfdata use.
    pub fn lag_thresholds(&self) -> Thresholds {
        Thresholds::crit_above(self.max_lag)
    }

    /// Whether a lag in seconds passes: at most `--max-lag`; an unknown lag (`None`, or negative
    /// as the servers show it) passes only when there is no limit.
    pub fn lag_passes(&self, lag_seconds: Option<i64>) -> bool {
        self.lag_passes_seconds(lag_seconds.map(|l| l as f64))
    }

    /// The same for a lag in (fractional) seconds, as a heartbeat measures it.
    pub fn lag_passes_seconds(&self, lag_seconds: Option<f64>) -> bool {
        self.lag_thresholds().status(lag_seconds) == Status::Passing
    }

    /// `, over --max-lag 30s` when the lag does not pass, for messages.
    pub fn over_limit_clause(&self) -> String {
        self.max_lag.map(|d| format!(", over --max-lag {}", format_duration(d))).unwrap_or_default()
    }
}

/// What the master knows or found out about one of its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaHealth {
    /// `host:port` of the replica.
    pub replica: String,
    /// Why it cannot serve reads; `None` when healthy.
    pub problem: Option<String>,
    /// The check could not ask it (connect, login, deadline): what it does is unknown, and it may
    /// well serve reads to clients that reach it.
    pub unprobed: bool,
}

impl ReplicaHealth {
    /// What the replica said of itself, or what its master said of it: `problem` when it cannot
    /// serve reads.
    pub fn judged(replica: impl Into<String>, problem: Option<String>) -> Self {
        ReplicaHealth { replica: replica.into(), problem, unprobed: false }
    }

    /// A replica the check could not ask, and why.
    pub fn unprobed(replica: impl Into<String>, why: impl Into<String>) -> Self {
        ReplicaHealth { replica: replica.into(), problem: Some(why.into()), unprobed: true }
    }

    /// Whether the replica can serve reads.
    pub fn is_healthy(&self) -> bool {
        self.problem.is_none()
    }

    /// A replica whose probe gave no result of its own (see [`crate::probe::Unfinished`]), for a
    /// probe set whose deadline was `limit`.
    /// One that ran out of time (or never started) could not be asked; one that sent more than any
    /// real answer did answer, with garbage: unhealthy, not unknown.
    pub fn unfinished(replica: &impl std::fmt::Display, why: crate::probe::Unfinished, limit: std::time::Duration) -> Self {
        match why {
            crate::probe::Unfinished::OverBudget(_) => Self::judged(replica.to_string(), Some(why.describe(limit))),
            _ => Self::unprobed(replica.to_string(), why.describe(limit)),
        }
    }

    /// The replica as a subcheck of its master's read verdict: passing when healthy.
    fn subcheck(&self) -> Subcheck {
        match &self.problem {
            None => Subcheck::passing(format!("{}: healthy", self.replica)),
            Some(p) => Subcheck::critical(format!("{}: {p}", self.replica)),
        }
    }
}

/// The `probes` fact: what each probed replica said.
pub fn probes_fact(probes: &[ReplicaHealth]) -> serde_json::Value {
    probes.iter().map(|p| serde_json::json!({"replica": p.replica, "healthy": p.is_healthy(), "problem": p.problem})).collect()
}

/// The read-pool verdict for a master that replicates from nothing and is trusted by the
/// kind-specific guards (Sentinel, `read_only`): it serves reads iff no replica is healthy.
/// `replicas` is what it learnt about each of its replicas.
pub fn master_verdict(target: &str, replicas: &[ReplicaHealth], policy: &ReadPolicy) -> Verdict {
    if !policy.master_fallback {
        return Verdict::new(
            format!("{target} is the master; --no-master-fallback keeps it out of the read pool"),
            [Subcheck::critical("role is master and master fallback is off")],
        );
    }
    let healthy = replicas.iter().filter(|r| r.is_healthy()).count();
    // The master's place in the read pool sums up its replicas: out when one of them is healthy.
    let pool = |status| Subcheck::headline(status).summing_up(replicas.iter().map(ReplicaHealth::subcheck));
    if replicas.is_empty() {
        Verdict::new(format!("{target} is a single master: it serves reads"), [Subcheck::passing("role is master with no replica")])
    } else if healthy == 0 {
        let verdict = Verdict::new(
            format!("{target} is the master and none of its {} replica(s) is healthy: it serves reads", replicas.len()),
            [pool(Status::Passing)],
        );
        // A replica it could not ask may be serving reads all the same: both would be in the pool.
        let unprobed: Vec<String> = replicas.iter().filter(|r| r.unprobed).map(|r| r.replica.clone()).collect();
        if unprobed.is_empty() {
            verdict
        } else {
            verdict.and(Subcheck::warning(format!(
                "could not probe {}: if clients reach it, it serves reads too (make the address it is listed under reachable \
                 from here: Redis replica-announce-ip/-port, MySQL report_host/report_port and the grant to list replicas)",
                unprobed.join(", ")
            )))
        }
    } else {
        Verdict::new(format!("{target} is the master; {healthy} healthy replica(s) serve reads"), [pool(Status::Critical)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, healthy: bool) -> ReplicaHealth {
        ReplicaHealth::judged(name, (!healthy).then(|| "link down".into()))
    }

    /// A replica the master could not ask leaves a doubt: the master still serves reads (none is
    /// known healthy), warning which replica and why, as it may be serving reads too.
    #[test]
    fn an_unprobed_replica_is_a_warning() {
        let policy = ReadPolicy { max_lag: None, master_fallback: true };
        let v = master_verdict("m:1", &[r("a", false), ReplicaHealth::unprobed("b:6029", "connection refused")], &policy);
        assert_eq!(v.status(), Status::Warning, "{v:?}");
        assert!(v.summary().contains("could not probe b:6029: if clients reach it"), "{}", v.summary());
        let v = master_verdict("m:1", &[r("a", true), ReplicaHealth::unprobed("b:6029", "refused")], &policy);
        assert_eq!(v.status(), Status::Critical, "a healthy replica serves reads: {v:?}");
    }

    /// The shared part of the read-pool table: replicas x fallback.
    #[test]
    fn master_serves_reads_only_when_no_replica_can() {
        let sets = [vec![], vec![r("a", false)], vec![r("a", false), r("b", true)], vec![r("a", true), r("b", true)]];
        for replicas in &sets {
            for fallback in [true, false] {
                let policy = ReadPolicy { max_lag: None, master_fallback: fallback };
                let v = master_verdict("m:1", replicas, &policy);
                let any_healthy = replicas.iter().any(ReplicaHealth::is_healthy);
                let expected = if fallback && !any_healthy { Status::Passing } else { Status::Critical };
                assert_eq!(v.status(), expected, "{replicas:?} fallback={fallback}: {v:?}");
                assert!(!v.reasons().is_empty());
            }
        }
        let v = master_verdict("m:1", &sets[2], &ReadPolicy { max_lag: None, master_fallback: true });
        assert_eq!(v.summary(), "m:1 is the master; 1 healthy replica(s) serve reads");
        assert_eq!(v.reasons(), ["a: link down", "b: healthy"]);
    }

    /// One meaning of --max-lag for both databases: lag <= max passes.
    #[test]
    fn lag_at_the_limit_passes() {
        let p = |max: Option<u64>| ReadPolicy { max_lag: max.map(Duration::from_secs), master_fallback: true };
        for (lag, max, ok) in [
            (Some(0), Some(0), true),
            (Some(1), Some(0), false),
            (Some(120), Some(120), true),
            (Some(121), Some(120), false),
            (None, Some(120), false),
            (None, None, true),
            (Some(9999), None, true),
        ] {
            assert_eq!(p(max).lag_passes(lag), ok, "lag {lag:?} max {max:?}");
        }
        let half = ReadPolicy { max_lag: Some(Duration::from_millis(2500)), master_fallback: true };
        assert!(half.lag_passes(Some(2)) && !half.lag_passes(Some(3)));
    }
}
