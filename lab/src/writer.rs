//! Clients that write through the VIP or a load balancer and record every acknowledged write, by
//! the node that acknowledged it; and the numbers a scenario reports from them.

use crate::netlab::{in_namespace, LAB_PREFIX};
use crate::vip_lab::{RedisVipLab, PASSWORD};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One acknowledged write.
#[derive(Clone, Debug)]
pub struct Ack {
    /// The key written.
    pub key: String,
    /// When the acknowledgement arrived (since the lab's epoch).
    pub at: Duration,
    /// The host that acknowledged it (its `replica-announce-ip`, as a lab host name).
    pub node: String,
}

/// What a writer saw.
#[derive(Clone, Debug, Default)]
pub struct WriterReport {
    /// Every acknowledged write, in order.
    pub acked: Vec<Ack>,
    /// Writes that failed or timed out (not acknowledged: the client knows they may be lost).
    pub failed: usize,
}

/// A client's Redis connection through `target` (the VIP, a load balancer), logged in, every
/// operation bounded to 300 ms.
pub fn app_connection(target: &(String, u16)) -> Option<redis::Connection> {
    const OP_TIMEOUT: Duration = Duration::from_millis(300);
    let client = redis::Client::open((target.0.as_str(), target.1)).ok()?;
    let mut c = client.get_connection_with_timeout(OP_TIMEOUT).ok()?;
    c.set_read_timeout(Some(OP_TIMEOUT)).ok()?;
    c.set_write_timeout(Some(OP_TIMEOUT)).ok()?;
    redis::cmd("AUTH").arg(PASSWORD).query::<()>(&mut c).ok()?;
    Some(c)
}

/// A client writing through the VIP (or a load balancer): one key every 10 ms, at most 6000 writes and 90 s.
pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<WriterReport>,
}

impl Writer {
    /// A Redis writer in namespace `ns` through `target`, attributing each write by the node's
    /// `replica-announce-ip`.
    pub(crate) fn start(ns: String, prefix: String, epoch: Instant, target: (String, u16)) -> Writer {
        let connect = move || -> Option<(redis::Connection, String)> {
            let mut c = app_connection(&target)?;
            let announced: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("replica-announce-ip").query(&mut c).ok()?;
            Some((c, host_name(announced.get(1).map(String::as_str).unwrap_or("?"))))
        };
        let write = |c: &mut redis::Connection, key: &str| redis::cmd("SET").arg(key).arg("v").query::<()>(c).is_ok();
        Writer::start_with(ns, prefix, epoch, connect, write)
    }

    /// A writer in namespace `ns`: `connect` opens a connection and names the host it reached,
    /// `write` writes one key on it (false: failed, reconnect).
    pub fn start_with<C: 'static>(
        ns: String,
        prefix: String,
        epoch: Instant,
        connect: impl FnMut() -> Option<(C, String)> + Send + 'static,
        write: impl FnMut(&mut C, &str) -> bool + Send + 'static,
    ) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || in_namespace(&ns.clone(), move || write_loop(&prefix, epoch, &flag, connect, write)));
        Writer { stop, handle }
    }

    /// Stops it and returns what it saw.
    pub fn finish(self) -> WriterReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// Host names by address, for attributing acknowledgements.
fn host_name(addr: &str) -> String {
    match addr.strip_prefix(&format!("{LAB_PREFIX}.")) {
        Some("11") => "h1".into(),
        Some("12") => "h2".into(),
        Some("13") => "h3".into(),
        _ => addr.to_string(),
    }
}

/// Writes one key every 10 ms (at most 6000 and 90 s) until `stop`, reconnecting after any
/// failure; records what was acknowledged, by whom and when.
fn write_loop<C>(
    prefix: &str,
    epoch: Instant,
    stop: &AtomicBool,
    mut connect: impl FnMut() -> Option<(C, String)>,
    mut write: impl FnMut(&mut C, &str) -> bool,
) -> WriterReport {
    const MAX_WRITES: usize = 6000;
    const MAX_TIME: Duration = Duration::from_secs(90);
    let started = Instant::now();
    let mut report = WriterReport::default();
    let mut conn: Option<(C, String)> = None;
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) && n < MAX_WRITES && started.elapsed() < MAX_TIME {
        let Some((c, node)) = conn.as_mut() else {
            conn = connect();
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        };
        let key = format!("{prefix}:{n}");
        n += 1;
        if write(c, &key) {
            report.acked.push(Ack { key, at: epoch.elapsed(), node: node.clone() });
        } else {
            report.failed += 1;
            conn = None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    report
}

/// The writes a node cut off from its cluster's majority acknowledged after the cut (a Galera node,
/// a Group Replication primary), sorted by what the majority has: a certification-based commit needs
/// the majority, so a write the majority has was committed by the cluster while the node was still
/// in it, its acknowledgement only arriving after the `ip` commands ran; a write the majority does
/// not have was acknowledged by the node alone: a write the partition split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutOffAcks {
    /// Acknowledged after the cut, and in the majority's data: committed by the cluster before it.
    pub committed_before: usize,
    /// Acknowledged after the cut and missing from the majority's data: the split.
    pub alone: usize,
    /// When the node's last acknowledgement after the cut arrived, after the cut.
    pub last: Option<Duration>,
}

impl CutOffAcks {
    /// The acknowledgements by `node` between `fault` and `heal` among `acks`; `majority_has`
    /// says whether the majority's data holds a key.
    pub fn of(acks: &[&Ack], node: &str, (fault, heal): (Duration, Duration), majority_has: impl Fn(&str) -> bool) -> CutOffAcks {
        let after: Vec<&&Ack> = acks.iter().filter(|a| a.node == node && a.at > fault && a.at < heal).collect();
        let committed_before = after.iter().filter(|a| majority_has(&a.key)).count();
        CutOffAcks { committed_before, alone: after.len() - committed_before, last: after.iter().map(|a| a.at - fault).max() }
    }
}

/// The numbers a scenario reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Time from the fault to the first write acknowledged by the new master.
    pub write_outage: Option<Duration>,
    /// Acknowledged writes missing from the final master, acknowledged before the promotion.
    pub lost_before_promotion: usize,
    /// Writes acknowledged by another node after the promotion (split-brain writes).
    pub split_brain_writes: usize,
    /// All acknowledged writes.
    pub acked: usize,
}

impl Outcome {
    /// Works out the numbers from the writers' records, the fault and promotion times and the final master.
    pub fn of(lab: &RedisVipLab, reports: &[&WriterReport], fault: Duration, promotion: Duration, new_master: &str) -> Outcome {
        let acked: Vec<Ack> = reports.iter().flat_map(|r| r.acked.iter().cloned()).collect();
        let missing = lab.missing_keys(new_master, &acked);
        let split: Vec<&Ack> = acked.iter().filter(|a| a.at > promotion && a.node != new_master).collect();
        let first_new = acked.iter().filter(|a| a.at > fault && a.node == new_master).map(|a| a.at).min();
        Outcome {
            write_outage: first_new.map(|t| t - fault),
            lost_before_promotion: missing.iter().filter(|a| a.at <= promotion).count(),
            split_brain_writes: split.len(),
            acked: acked.len(),
        }
    }
}
