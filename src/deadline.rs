//! The one deadline that bounds a whole check run, and the record of which steps are under way
//! so that the watchdog can say what timed out.

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The run's time budget: every connect, query and probe takes its socket timeouts from here.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: Instant,
    limit: Duration,
}

/// Below this, a step is not started: it could not finish anyway.
const MIN_STEP: Duration = Duration::from_millis(1);

/// Socket timeouts end this much before the deadline, so that the step's own, precise error
/// ("did not answer the MySQL handshake") is reported before the watchdog's generic one.
const IO_MARGIN: Duration = Duration::from_millis(100);

impl Deadline {
    /// A deadline `limit` from now.
    pub fn new(limit: Duration) -> Self {
        Self::starting_at(Instant::now(), limit)
    }

    /// A deadline `limit` after `start`.
    pub fn starting_at(start: Instant, limit: Duration) -> Self {
        Deadline { start, limit }
    }

    /// Time left, zero when passed.
    pub fn left(&self) -> Duration {
        self.limit.saturating_sub(self.start.elapsed())
    }

    /// The deadline for probing other servers (Sentinels, replicas): it ends a quarter of the budget
    /// (at least 100 ms) early, so a probe that never answers leaves the check time to decide from
    /// the others instead of being cut off by the watchdog.
    pub fn for_probes(&self) -> Deadline {
        let keep = (self.limit / 4).max(Duration::from_millis(100));
        Deadline { start: self.start, limit: self.limit.saturating_sub(keep) }
    }

    /// The whole budget (what `--timeout` said).
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Socket timeout for `step` (the time left, less a small margin), or an error naming the step
    /// when no time is left.
    pub fn remaining(&self, step: &str) -> Result<Duration> {
        let left = self.left().saturating_sub(IO_MARGIN);
        if left < MIN_STEP {
            bail!("{step}: no time left of the {} deadline", crate::duration::format_duration(self.limit));
        }
        Ok(left)
    }
}

static STEPS: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
static NEXT_STEP: AtomicU64 = AtomicU64::new(0);

/// A step under way (e.g. `INFO on 10.0.0.2:6029`); it is forgotten when dropped.
#[must_use = "the step ends when this guard is dropped"]
pub struct Step(u64);

impl Step {
    /// Records that `what` has started.
    pub fn begin(what: impl Into<String>) -> Step {
        let id = NEXT_STEP.fetch_add(1, Ordering::Relaxed);
        let what = what.into();
        crate::memory::note_step(&what);
        STEPS.lock().unwrap_or_else(|e| e.into_inner()).push((id, what));
        Step(id)
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        STEPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

/// The steps under way right now, oldest first.
pub fn steps_under_way() -> Vec<String> {
    STEPS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, s)| s.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_while_under_way() {
        let a = Step::begin("connect to a:1");
        {
            let _b = Step::begin("INFO on b:2");
            let now = steps_under_way();
            assert!(now.contains(&"connect to a:1".to_string()) && now.contains(&"INFO on b:2".to_string()));
        }
        assert!(!steps_under_way().contains(&"INFO on b:2".to_string()));
        drop(a);
        assert!(!steps_under_way().contains(&"connect to a:1".to_string()));
    }

    #[test]
    fn probes_end_early_enough_to_decide() {
        let d = Deadline::new(Duration::from_secs(1));
        assert_eq!(d.for_probes().limit(), Duration::from_millis(750));
        assert_eq!(Deadline::new(Duration::from_millis(200)).for_probes().limit(), Duration::from_millis(100));
        assert_eq!(Deadline::new(Duration::from_millis(50)).for_probes().limit(), Duration::ZERO);
    }

    #[test]
    fn remaining_names_the_step_when_spent() {
        let d = Deadline::new(Duration::ZERO);
        let err = d.remaining("INFO on x:1").unwrap_err().to_string();
        assert!(err.contains("INFO on x:1") && err.contains("deadline"), "{err}");
        let d = Deadline::new(Duration::from_secs(5));
        let io = d.remaining("x").unwrap();
        assert!(io > Duration::from_secs(4) && io < d.left(), "socket timeouts end before the deadline");
    }
}
