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

/// One node as the checks reach it: its address, whether its process runs, and the arguments
/// that point a check at it (and log in).
#[derive(Clone, Debug)]
pub struct CheckTarget {
    /// `host:port`.
    pub addr: String,
    /// Whether the node's process is up.
    pub up: bool,
    /// The arguments every check of this node starts with.
    pub args: Vec<String>,
}

/// A lab whose nodes both checks of its kind run on: `lab.observe().read_args(&["--max-lag",
/// "30"]).run()` is what Consul DNS would answer right now.
pub trait Observable: Sized {
    /// The write check and the read check of its kind.
    const CHECKS: (&'static str, &'static str);
    /// Every node, the first master first.
    fn targets(&self) -> Vec<CheckTarget>;
    /// Both checks on every node: add the extra arguments, then `.run()`.
    fn observe(&self) -> Observation<'_, Self> {
        Observation { lab: self, write: Vec::new(), read: Vec::new() }
    }
}

/// Both checks on every node of a lab, with extra arguments for each.
pub struct Observation<'a, L> {
    lab: &'a L,
    write: Vec<String>,
    read: Vec<String>,
}

impl<L: Observable> Observation<'_, L> {
    /// Extra arguments of the write check.
    pub fn write_args<S: AsRef<str>>(mut self, extra: &[S]) -> Self {
        self.write.extend(extra.iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Extra arguments of the read check.
    pub fn read_args<S: AsRef<str>>(mut self, extra: &[S]) -> Self {
        self.read.extend(extra.iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Runs both checks (with `--format json`) on every node.
    pub fn run(self) -> Pools {
        let (write_bin, read_bin) = L::CHECKS;
        let with = |base: &[String], extra: &[String]| -> Vec<String> { base.iter().chain(extra).cloned().collect() };
        Pools(
            self.lab
                .targets()
                .into_iter()
                .map(|t| NodeView {
                    write: check(write_bin, with(&t.args, &self.write)),
                    read: check(read_bin, with(&t.args, &self.read)),
                    node: t.addr,
                    up: t.up,
                })
                .collect(),
        )
    }
}

/// Both checks' results on every node: the pools Consul DNS would answer with, nodes by address.
#[derive(Debug)]
pub struct Pools(pub Vec<NodeView>);

impl Pools {
    /// The node at `addr`.
    pub fn node(&self, addr: impl AsRef<str>) -> &NodeView {
        view(&self.0, addr.as_ref())
    }

    /// Asserts the write and read pools by address, in any order, and the invariants.
    pub fn assert(&self, write: &[impl AsRef<str>], read: &[impl AsRef<str>]) -> &Self {
        assert_pools(&self.0, write, read);
        self
    }
}

impl std::ops::Deref for Pools {
    type Target = [NodeView];
    fn deref(&self) -> &[NodeView] {
        &self.0
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
