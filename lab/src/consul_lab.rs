//! The whole picture, as Consul sees it: Redis (master, two replicas, three Sentinels) and MariaDB
//! (master, replica) on their own loopback addresses, the service files `gen-consul-services`
//! writes for them, and every check run from its `args` the way a Consul agent runs it.

use crate::mysql_lab::{create_users, MariaNode, CHECKER};
use crate::pools::{run_agents, AgentCheck, Answers};
use crate::redis_lab::{RedisLab, MASTER_NAME};
use crate::{bin, free_port, run_command, write_file, TempDir};
use crate::{GENERATOR, REDIS_MASTER};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Redis nodes' addresses (master first), all on the same port as in a real deployment.
pub const REDIS_HOSTS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
/// MariaDB nodes' addresses (master first).
pub const MYSQL_HOSTS: [&str; 2] = ["127.0.0.5", "127.0.0.6"];

/// The lab.
pub struct ConsulLab {
    /// Redis topology.
    pub redis: RedisLab,
    /// Where MariaDB lives.
    pub mysql_dir: TempDir,
    /// MariaDB nodes (master first).
    pub mysql: Vec<MariaNode>,
    /// The inventory file.
    pub inventory: PathBuf,
    /// Where the generated files go.
    pub out: TempDir,
}

/// Runs a program with no shell, as Consul does, killing it at `timeout`: exit code (`None` when
/// killed) and stdout.
pub fn run_program(program: &Path, args: &[String], timeout: Duration) -> (Option<i32>, String) {
    let r = run_command(Command::new(program).args(args), timeout);
    (r.code, r.stdout)
}

impl ConsulLab {
    /// Starts the servers and writes the inventory (nothing generated yet).
    pub fn start() -> ConsulLab {
        let redis = RedisLab::start_on(&REDIS_HOSTS, Some(free_port()), 3, &[]);
        let mysql_dir = TempDir::new("consul-mysql");
        let port = free_port();
        let master = MariaNode::start_on(&mysql_dir, "m", 1, MYSQL_HOSTS[0], port, &[]);
        create_users(&master);
        let replica = MariaNode::start_on(
            &mysql_dir,
            "r",
            2,
            MYSQL_HOSTS[1],
            port,
            &["--read-only", &format!("--report-host={}", MYSQL_HOSTS[1]), &format!("--report-port={port}")],
        );
        replica.replicate_from(&master, "");
        let cnf = mysql_dir.join("checker.cnf");
        write_file(&cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
        let sentinels: Vec<String> = redis.sentinel_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let inventory = serde_json::json!({
            "bin_dir": bin(REDIS_MASTER).parent().unwrap(),
            "drain_dir": mysql_dir.join("drain").join("{node}"),
            "groups": [
                {"kind": "redis", "name": "lab", "port": redis.master.port, "nodes": REDIS_HOSTS,
                 "sentinels": sentinels, "master_name": MASTER_NAME, "max_lag": "10s",
                 "interval": "2s", "timeout": "1s"},
                {"kind": "mysql", "name": "lab", "port": port, "nodes": MYSQL_HOSTS,
                 "defaults_file": cnf, "repl_users": ["repl"], "interval": "2s", "timeout": "1s"}
            ]
        });
        let path = mysql_dir.join("inventory.json");
        std::fs::write(&path, serde_json::to_string_pretty(&inventory).unwrap()).unwrap();
        ConsulLab { redis, mysql_dir, mysql: vec![master, replica], inventory: path, out: TempDir::new("consul-out") }
    }

    /// The drain file of service `id` (`w-PORT-redis-lab`) on `node`: the lab's nodes share one
    /// file system, so the inventory's drain_dir has one directory per node (`{node}`).
    pub fn drain_file(&self, node: &str, id: &str) -> PathBuf {
        self.mysql_dir.join("drain").join(node).join(id)
    }

    /// Runs `gen-consul-services --inventory ... --out DIR` plus `extra`; returns (exit code, stdout).
    pub fn generate(&self, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["--inventory".to_string(), self.inventory.display().to_string(), "--out".into(), out.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        run_program(&bin(GENERATOR), &args, Duration::from_secs(20))
    }

    /// The Redis service name for a role (`w` or `r`).
    pub fn redis_service(&self, role: &str) -> String {
        format!("{role}-{}-redis-lab", self.redis.master.port)
    }

    /// After a failover: the one writer is the node the Sentinels name now (they may fail over more
    /// than once) and the readers are the other live replicas. Returns that writer's host.
    pub fn redis_follows_sentinel(&self, a: &Answers, live_replicas: &[&str]) -> Option<String> {
        let named = self.redis.agreed_master()?;
        let host = named.split(':').next()?.to_string();
        let others: Vec<String> = live_replicas.iter().filter(|h| **h != host).map(|h| h.to_string()).collect();
        (a.dns(&self.redis_service("w")) == vec![host.clone()] && a.dns(&self.redis_service("r")) == others).then_some(host)
    }

    /// The MySQL service name for a role (`w` or `r`).
    pub fn mysql_service(&self, role: &str) -> String {
        format!("{role}-{}-mysql-lab", self.mysql[0].port)
    }

    /// Evaluates until `ok` holds (a check result may lag a topology change by one run), for up to
    /// ten seconds: `Ok` with the answers that hold, else `Err` with the last ones.
    pub fn settle(&self, ok: impl Fn(&Answers) -> bool) -> Result<Answers, Answers> {
        let mut answers = self.evaluate();
        for _ in 0..40 {
            if ok(&answers) {
                return Ok(answers);
            }
            std::thread::sleep(Duration::from_millis(250));
            answers = self.evaluate();
        }
        if ok(&answers) {
            Ok(answers)
        } else {
            Err(answers)
        }
    }

    /// Runs every generated check the way Consul does: its `args`, no shell, killed at its
    /// `timeout`; 0 passing, 1 warning, anything else critical. In parallel, as agents do.
    pub fn evaluate(&self) -> Answers {
        let mut nodes: Vec<PathBuf> = std::fs::read_dir(&self.out.0).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        nodes.sort();
        let checks: Vec<AgentCheck> =
            nodes.iter().flat_map(|dir| AgentCheck::from_files(dir, &dir.file_name().unwrap().to_string_lossy(), None)).collect();
        run_agents(&checks)
    }
}
