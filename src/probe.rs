//! Probing other servers (Sentinels, a master's replicas) in parallel: a bounded number at once,
//! and one deadline for the whole set. A probe that has not finished by then counts as unanswered,
//! whatever it is blocked on, so one slow server cannot make the check miss its own deadline.

use crate::deadline::Deadline;
use crate::duration::format_duration;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most probes in flight at once: a master listing thousands of replicas does not open thousands
/// of connections.
pub const MAX_IN_FLIGHT: usize = 4;

/// How often the prober looks for a probe that passed its memory budget while it waits.
const POLL: Duration = Duration::from_millis(5);

/// How long past the deadline the prober still takes a probe's own report (its read timeout fires
/// at the deadline); the run's own margin is 250 ms.
const GRACE: Duration = Duration::from_millis(20);

/// Why a probe has no result of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// It had not finished when the deadline passed.
    TimedOut,
    /// Its peer sent more than any real answer, past the probe's memory budget (in bytes): that
    /// probe alone failed, and the rest of the check goes on.
    OverBudget(usize),
    /// It never started: every worker was stopped by a peer that sent too much.
    NotStarted,
}

impl Unfinished {
    /// In words, for a probe with `limit` as its deadline.
    pub fn describe(self, limit: Duration) -> String {
        match self {
            Unfinished::TimedOut => format!("no answer within the {} probe deadline", format_duration(limit)),
            Unfinished::OverBudget(bytes) => {
                format!("its answer is far larger than any real one (over the probe's {} MiB): not used", bytes >> 20)
            }
            Unfinished::NotStarted => "not probed: every probe worker was stopped by a peer that sent too much".into(),
        }
    }
}

/// One worker's state, as the prober sees it.
struct Worker {
    /// The index of the item it is probing (`usize::MAX`: none).
    current: AtomicUsize,
    /// Raised by the allocator when the worker passed its budget (it is stopped for good).
    over: Arc<AtomicBool>,
}

/// Runs `probe` on every item, at most [`MAX_IN_FLIGHT`] at once, each worker within `budget` bytes
/// of memory, and returns the results in the items' order. Items whose probe has no result get
/// `unfinished(item, why)`: not finished by `deadline`, over the budget, or never started.
pub fn probe_all<I, R>(
    items: Vec<I>,
    deadline: Deadline,
    budget: usize,
    probe: impl Fn(&I, &Deadline) -> R + Send + Sync + 'static,
    unfinished: impl Fn(&I, Unfinished) -> R,
) -> Vec<R>
where
    I: Clone + Send + 'static,
    R: Send + 'static,
{
    let total = items.len();
    let queue: Arc<Mutex<VecDeque<(usize, I)>>> = Arc::new(Mutex::new(items.iter().cloned().enumerate().collect()));
    let probe = Arc::new(probe);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    let mut workers = Vec::new();
    for _ in 0..total.min(MAX_IN_FLIGHT) {
        let worker = Arc::new(Worker { current: AtomicUsize::new(usize::MAX), over: Arc::new(AtomicBool::new(false)) });
        workers.push(Arc::clone(&worker));
        let (queue, probe, tx) = (Arc::clone(&queue), Arc::clone(&probe), tx.clone());
        // Detached on purpose: a probe stuck past the deadline is abandoned, not waited for.
        std::thread::spawn(move || {
            crate::memory::budget_this_thread(budget, Arc::clone(&worker.over));
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some((index, item)) = next else { break };
                if deadline.left().is_zero() {
                    break;
                }
                worker.current.store(index, Ordering::SeqCst);
                crate::memory::restart_thread_budget();
                let result = probe(&item, &deadline);
                worker.current.store(usize::MAX, Ordering::SeqCst);
                if tx.send((index, result)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
    let mut stopped = vec![false; workers.len()];
    let mut received = 0;
    // A probe whose own read times out at the deadline reports in its own words (naming its step)
    // a moment later: wait that moment too.
    let stop_at = std::time::Instant::now() + deadline.left() + GRACE;
    while received < total {
        let left = stop_at.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left.min(POLL)) {
            Ok((index, result)) => {
                results[index] = Some(result);
                received += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every worker ended (the rest were never started in time).
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for (w, worker) in workers.iter().enumerate() {
            if stopped[w] || !worker.over.load(Ordering::SeqCst) {
                continue;
            }
            stopped[w] = true;
            let index = worker.current.load(Ordering::SeqCst);
            if index < total && results[index].is_none() {
                results[index] = Some(unfinished(&items[index], Unfinished::OverBudget(budget)));
                received += 1;
            }
        }
        if stopped.iter().all(|s| *s) {
            break;
        }
    }
    let not_started: Vec<usize> = queue.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(i, _)| *i).collect();
    let all_stopped = !stopped.is_empty() && stopped.iter().all(|s| *s);
    results
        .into_iter()
        .enumerate()
        .zip(&items)
        .map(|((i, r), item)| {
            r.unwrap_or_else(|| {
                let why = if all_stopped && not_started.contains(&i) { Unfinished::NotStarted } else { Unfinished::TimedOut };
                unfinished(item, why)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn results_keep_the_items_order() {
        let got = probe_all((0..20).collect(), Deadline::new(Duration::from_secs(5)), 1 << 20, |i: &u32, _| i * 2, |_, _| u32::MAX);
        assert_eq!(got, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn at_most_max_in_flight_at_once() {
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let got = probe_all(
            (0..40).collect::<Vec<u32>>(),
            Deadline::new(Duration::from_secs(10)),
            1 << 20,
            |_, _| {
                let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                NOW.fetch_sub(1, Ordering::SeqCst);
                true
            },
            |_, _| false,
        );
        assert!(got.iter().all(|ok| *ok));
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(peak <= MAX_IN_FLIGHT && peak > 1, "peak {peak}");
    }

    /// A probe that hangs is abandoned at the deadline, as a whole, and reported unanswered.
    #[test]
    fn a_hung_probe_ends_at_the_deadline() {
        let start = Instant::now();
        let got = probe_all(
            vec![0u64, 10_000],
            Deadline::new(Duration::from_millis(200)),
            1 << 20,
            |ms, _| {
                std::thread::sleep(Duration::from_millis(*ms));
                "answered"
            },
            |_, why| if why == Unfinished::TimedOut { "unanswered" } else { "?" },
        );
        assert_eq!(got, ["answered", "unanswered"]);
        assert!(start.elapsed() < Duration::from_millis(400), "{:?}", start.elapsed());
    }
}
