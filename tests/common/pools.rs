//! Evaluating checks the way Consul does: which nodes each service name would answer with, and the
//! SPEC section 7 invariants over them.
#![allow(dead_code)]

use super::{run_json, CheckRun};
use serde_json::Value;

/// Both checks' results on one node.
#[derive(Debug)]
pub struct NodeView {
    /// `host:port`.
    pub node: String,
    /// Whether the node's process is up (known to the test).
    pub up: bool,
    /// The write-service check.
    pub master: (CheckRun, Value),
    /// The read-service check.
    pub slave: (CheckRun, Value),
}

impl NodeView {
    /// Runs both checks (with `--format json`) on a node.
    pub fn observe(master_bin: &str, slave_bin: &str, node: &str, up: bool, master_args: &[String], slave_args: &[String]) -> NodeView {
        let m: Vec<&str> = master_args.iter().map(String::as_str).collect();
        let s: Vec<&str> = slave_args.iter().map(String::as_str).collect();
        NodeView { node: node.to_string(), up, master: run_json(master_bin, &m), slave: run_json(slave_bin, &s) }
    }
    /// Exit codes of (master check, slave check).
    pub fn codes(&self) -> (i32, i32) {
        (self.master.0.exit(), self.slave.0.exit())
    }
}

/// The nodes Consul DNS would answer with for the write name (checks not critical).
pub fn write_pool(views: &[NodeView]) -> Vec<&str> {
    views.iter().filter(|v| v.master.0.in_pool()).map(|v| v.node.as_str()).collect()
}

/// The nodes Consul DNS would answer with for the read name.
pub fn read_pool(views: &[NodeView]) -> Vec<&str> {
    views.iter().filter(|v| v.slave.0.in_pool()).map(|v| v.node.as_str()).collect()
}

/// SPEC section 7: down nodes in no pool; at most one writer; a reachable master means a non-empty
/// read pool; a replica whose link is down or whose lag is over the limit is in no pool.
pub fn assert_invariants(views: &[NodeView]) {
    let writers = write_pool(views);
    let readers = read_pool(views);
    let context = || format!("write={writers:?} read={readers:?}\n{views:#?}");
    for v in views.iter().filter(|v| !v.up) {
        assert!(!writers.contains(&v.node.as_str()) && !readers.contains(&v.node.as_str()), "down node {} in a pool: {}", v.node, context());
    }
    assert!(writers.len() <= 1, "two writers: {}", context());
    let master_up = views.iter().any(|v| v.up && v.master.1["facts"]["role"] == "master" && v.master.0.in_pool());
    if master_up {
        assert!(!readers.is_empty(), "master up but read pool empty: {}", context());
    }
    for v in views {
        let facts = &v.slave.1["facts"];
        let channel_broken = facts["channels"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["io_running"] != "Yes" || c["sql_running"] != "Yes"));
        let link_down = facts["master_link_status"] == "down" || channel_broken;
        let lagging = v.slave.1["reasons"].as_array().is_some_and(|r| {
            r.iter().any(|x| {
                let x = x.as_str().unwrap_or("");
                x.contains("over --max-lag") || x.contains("not below --max-lag")
            })
        });
        let is_replica = facts["role"] == "replica" || facts["role"] == "slave";
        if is_replica && (link_down || lagging) {
            assert!(!readers.contains(&v.node.as_str()) && !writers.contains(&v.node.as_str()), "broken replica {} in a pool: {}", v.node, context());
        }
    }
}
