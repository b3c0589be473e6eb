//! Evaluating checks the way Consul does: which nodes each service name would answer with, and the
//! invariants of the README's "Guarantees" section over them.

use crate::{check, CheckOutput};

/// Both checks' results on one node.
#[derive(Debug)]
pub struct NodeView {
    /// `host:port`.
    pub node: String,
    /// Whether the node's process is up (known to the test).
    pub up: bool,
    /// The write-service check (`check-*-master`).
    pub write: CheckOutput,
    /// The read-service check (`check-*-slave`).
    pub read: CheckOutput,
}

impl NodeView {
    /// Runs both checks (with `--format json`) on a node.
    pub fn observe(write_bin: &str, read_bin: &str, node: &str, up: bool, write_args: &[String], read_args: &[String]) -> NodeView {
        NodeView { node: node.to_string(), up, write: check(write_bin, write_args), read: check(read_bin, read_args) }
    }
}

/// The nodes Consul DNS would answer with for the write name (checks not critical).
pub fn write_pool(views: &[NodeView]) -> Vec<&str> {
    views.iter().filter(|v| v.write.in_pool()).map(|v| v.node.as_str()).collect()
}

/// The nodes Consul DNS would answer with for the read name.
pub fn read_pool(views: &[NodeView]) -> Vec<&str> {
    views.iter().filter(|v| v.read.in_pool()).map(|v| v.node.as_str()).collect()
}

/// The view of the node at `addr`.
pub fn view<'a>(views: &'a [NodeView], addr: &str) -> &'a NodeView {
    views.iter().find(|v| v.node == addr).unwrap_or_else(|| panic!("no view of {addr}: {views:#?}"))
}

/// Asserts what Consul DNS answers, by address and in any order: `write` for the write name and
/// `read` for the read name. Then checks the invariants.
pub fn assert_pools<W: AsRef<str>, R: AsRef<str>>(views: &[NodeView], write: &[W], read: &[R]) {
    let sorted = |v: Vec<&str>| {
        let mut v: Vec<String> = v.into_iter().map(String::from).collect();
        v.sort();
        v
    };
    let want_write = sorted(write.iter().map(AsRef::as_ref).collect());
    let want_read = sorted(read.iter().map(AsRef::as_ref).collect());
    assert_eq!(sorted(write_pool(views)), want_write, "write pool\n{views:#?}");
    assert_eq!(sorted(read_pool(views)), want_read, "read pool\n{views:#?}");
    assert_invariants(views);
}

/// The invariants: down nodes in no pool; at most one writer; a reachable master means a non-empty
/// read pool; a replica whose link is down or whose lag is over the limit is in no pool.
pub fn assert_invariants(views: &[NodeView]) {
    let writers = write_pool(views);
    let readers = read_pool(views);
    let context = || format!("write={writers:?} read={readers:?}\n{views:#?}");
    for v in views.iter().filter(|v| !v.up) {
        assert!(
            !writers.contains(&v.node.as_str()) && !readers.contains(&v.node.as_str()),
            "down node {} in a pool: {}",
            v.node,
            context()
        );
    }
    assert!(writers.len() <= 1, "two writers: {}", context());
    let master_up = views.iter().any(|v| v.up && v.write.fact("role") == "master" && v.write.in_pool());
    if master_up {
        assert!(!readers.is_empty(), "master up but read pool empty: {}", context());
    }
    for v in views {
        let channel_broken =
            v.read.fact("channels").as_array().is_some_and(|cs| cs.iter().any(|c| c["io_running"] != "Yes" || c["sql_running"] != "Yes"));
        let link_down = v.read.fact("master_link_status") == "down" || channel_broken;
        let lagging = v.read.reason_contains("over --max-lag");
        let role = v.read.fact("role");
        let is_replica = role == "replica" || role == "slave";
        if is_replica && (link_down || lagging) {
            assert!(
                !readers.contains(&v.node.as_str()) && !writers.contains(&v.node.as_str()),
                "broken replica {} in a pool: {}",
                v.node,
                context()
            );
        }
    }
}

/// An empty pool, for [`assert_pools`].
pub const NOBODY: [&str; 0] = [];
