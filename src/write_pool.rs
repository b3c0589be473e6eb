//! The write-pool rule both databases share beside the kind's own (role, writability, the Sentinel
//! guard): `--min-replicas N` warns while fewer than N replicas are attached, and never takes a
//! master out (a master whose replicas died is still the one writer).

use crate::report::{Status, Subcheck, Thresholds};

/// A master's replicas against `--min-replicas`.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaCount {
    /// The perfdata label (`replicas_online`, `replicas`).
    pub label: &'static str,
    /// How they were counted, for the message (`online`, `connected`).
    pub counted: &'static str,
    /// How many there are.
    pub count: usize,
    /// `--min-replicas`.
    pub min: u32,
}

impl ReplicaCount {
    /// The count as a measured subcheck: warning below the limit, which the perfdata shows.
    pub fn measured(&self) -> Subcheck {
        Subcheck::measured(self.label, Some(self.count as i64), "", Thresholds::warn_below(self.min))
    }

    /// The same, saying why when it warns: the line of a master that is otherwise passing.
    pub fn decided(&self) -> Subcheck {
        let measured = self.measured();
        match measured.status() {
            Status::Passing => measured,
            _ => measured.saying(format!("{} replica(s) {}, fewer than --min-replicas {}", self.count, self.counted, self.min)),
        }
    }
}
