//! Probing other servers (Sentinels, a master's replicas) in parallel: a bounded number at once,
//! and one deadline for the whole set. A probe that has not finished by then counts as unanswered,
//! whatever it is blocked on, so one slow server cannot make the check miss its own deadline.

use crate::deadline::Deadline;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Most probes in flight at once: a master listing thousands of replicas does not open thousands
/// of connections.
pub const MAX_IN_FLIGHT: usize = 4;

/// Runs `probe` on every item, at most [`MAX_IN_FLIGHT`] at once, and returns the results in the
/// items' order. Items whose probe has not finished when `deadline` passes get `unanswered(item)`.
pub fn probe_all<I, R>(
    items: Vec<I>,
    deadline: Deadline,
    probe: impl Fn(&I, &Deadline) -> R + Send + Sync + 'static,
    unanswered: impl Fn(&I) -> R,
) -> Vec<R>
where
    I: Clone + Send + 'static,
    R: Send + 'static,
{
    let total = items.len();
    let queue: Arc<Mutex<VecDeque<(usize, I)>>> = Arc::new(Mutex::new(items.iter().cloned().enumerate().collect()));
    let probe = Arc::new(probe);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    for _ in 0..total.min(MAX_IN_FLIGHT) {
        let (queue, probe, tx) = (Arc::clone(&queue), Arc::clone(&probe), tx.clone());
        // Detached on purpose: a probe stuck past the deadline is abandoned, not waited for.
        std::thread::spawn(move || loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some((index, item)) = next else { break };
            if deadline.left().is_zero() {
                break;
            }
            let result = probe(&item, &deadline);
            if tx.send((index, result)).is_err() {
                break;
            }
        });
    }
    drop(tx);
    let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
    let mut received = 0;
    while received < total {
        match rx.recv_timeout(deadline.left()) {
            Ok((index, result)) => {
                results[index] = Some(result);
                received += 1;
            }
            // The deadline passed, or every worker ended (the rest were never started in time).
            Err(_) => break,
        }
    }
    results.into_iter().zip(&items).map(|(r, item)| r.unwrap_or_else(|| unanswered(item))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn results_keep_the_items_order() {
        let got = probe_all((0..20).collect(), Deadline::new(Duration::from_secs(5)), |i: &u32, _| i * 2, |_| u32::MAX);
        assert_eq!(got, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn at_most_max_in_flight_at_once() {
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let got = probe_all(
            (0..40).collect::<Vec<u32>>(),
            Deadline::new(Duration::from_secs(10)),
            |_, _| {
                let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                NOW.fetch_sub(1, Ordering::SeqCst);
                true
            },
            |_| false,
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
            |ms, _| {
                std::thread::sleep(Duration::from_millis(*ms));
                "answered"
            },
            |_| "unanswered",
        );
        assert_eq!(got, ["answered", "unanswered"]);
        assert!(start.elapsed() < Duration::from_millis(400), "{:?}", start.elapsed());
    }
}
