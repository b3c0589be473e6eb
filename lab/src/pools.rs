//! Evaluating checks the way Consul does: which nodes each service name would answer with, and the
//! invariants of the README's "Guarantees" section over them.

use crate::{check, CheckOutput};
use consul_db_checks::report::Status;
use std::collections::BTreeMap;

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
    let master_up = views.iter().any(|v| {
        v.up && ["master", "galera member", "group member"].contains(&v.write.fact("role").as_str().unwrap_or_default())
            && v.write.in_pool()
    });
    if master_up {
        assert!(!readers.is_empty(), "master up but read pool empty: {}", context());
    }
    for v in views {
        // A Galera member out of the Primary component or not Synced takes no query.
        let galera = v.read.fact("galera");
        if galera.is_object() && (galera["cluster_status"] != "Primary" || galera["state"] != "Synced") {
            assert!(
                !readers.contains(&v.node.as_str()) && !writers.contains(&v.node.as_str()),
                "Galera member {} out of service in a pool: {}",
                v.node,
                context()
            );
        }
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

/// What Consul records for one check run.
#[derive(Clone, Debug)]
pub struct CheckResult {
    /// Service name.
    pub service: String,
    /// Service address (the node).
    pub node: String,
    /// How Consul read the exit code.
    pub status: Status,
    /// The first line the check printed.
    pub first_line: String,
}

/// Every check's result, and the DNS answers that follow from them.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// One result per service file.
    pub results: Vec<CheckResult>,
}

impl Answers {
    /// The nodes Consul DNS answers with for `service`: those whose check is not critical (the
    /// project's one pool rule, [`Status::in_pool`]), sorted.
    pub fn pool(&self, service: &str) -> Vec<&str> {
        let mut v: Vec<&str> =
            self.results.iter().filter(|r| r.service == service && r.status.in_pool()).map(|r| r.node.as_str()).collect();
        v.sort();
        v
    }

    /// The same, owned.
    pub fn dns(&self, service: &str) -> Vec<String> {
        self.pool(service).into_iter().map(str::to_string).collect()
    }

    /// The DNS answers in a table: service name, answer, and each instance's check line.
    pub fn describe(&self) -> String {
        let mut by_service: BTreeMap<String, Vec<&CheckResult>> = BTreeMap::new();
        for r in &self.results {
            by_service.entry(r.service.clone()).or_default().push(r);
        }
        let mut s = String::new();
        for (service, results) in by_service {
            let answer = self.dns(&service);
            let shown = if answer.is_empty() { "(no answer)".to_string() } else { answer.join(", ") };
            s.push_str(&format!("  {service}.service.consul -> {shown}\n"));
            for r in results {
                s.push_str(&format!("      {:<9} {:<10} {}\n", r.node, r.status.word(), r.first_line));
            }
        }
        s
    }

    /// Service names, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self.results.iter().map(|r| r.service.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// One service's check as a Consul agent runs it: its `args` (no shell), killed at its `timeout`,
/// on its node (inside the host's namespace, in the namespace lab). The lab's one emulation of
/// Consul: the loopback lab, the namespace lab and the demo all run their checks through it.
#[derive(Clone, Debug)]
pub struct AgentCheck {
    /// The service name.
    pub service: String,
    /// The node, as answers name it.
    pub node: String,
    /// The network namespace the agent runs in, if any.
    pub namespace: Option<String>,
    /// The check's argv.
    pub args: Vec<String>,
    /// Consul's timeout for it.
    pub timeout: std::time::Duration,
}

impl AgentCheck {
    /// The checks of the Consul service files in `dir` (in file name order), run on `node`.
    pub fn from_files(dir: &std::path::Path, node: &str, namespace: Option<&str>) -> Vec<AgentCheck> {
        service_files(dir)
            .iter()
            .map(|v| {
                let check = &v["service"]["checks"][0];
                assert!(check.get("script").is_none(), "{dir:?}: a script check");
                AgentCheck {
                    service: v["service"]["name"].as_str().unwrap().to_string(),
                    node: node.to_string(),
                    namespace: namespace.map(str::to_string),
                    args: check["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
                    timeout: consul_db_checks::duration::parse_duration(check["timeout"].as_str().unwrap()).unwrap(),
                }
            })
            .collect()
    }

    /// Runs it once: what the agent records.
    pub fn run(&self) -> CheckResult {
        let mut cmd = match &self.namespace {
            Some(ns) => crate::netlab::ns_command(ns, &self.args[0]),
            None => std::process::Command::new(&self.args[0]),
        };
        cmd.args(&self.args[1..]);
        let r = crate::run_command(&mut cmd, self.timeout);
        CheckResult {
            service: self.service.clone(),
            node: self.node.clone(),
            status: r.status(),
            first_line: r.stdout.lines().next().unwrap_or("(no output)").to_string(),
        }
    }
}

/// Runs every check once, all at once as the agents do: what Consul records and DNS answers.
pub fn run_agents(checks: &[AgentCheck]) -> Answers {
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = checks.iter().map(|c| scope.spawn(move || c.run())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Answers { results }
}

/// The Consul service files the generator wrote into `dir`, parsed, in file name order.
pub fn service_files(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
}
