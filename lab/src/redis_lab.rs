//! A real Redis topology for tests: a master, replicas and Sentinels on free loopback ports.

use crate::{free_port, spawn_tied, wait_for, Proc, TempDir};
use crate::{REDIS_MASTER, REDIS_SLAVE};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Sends one command to a Redis server or Sentinel on 127.0.0.1.
pub fn redis_cmd(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    redis_cmd_at("127.0.0.1", port, args)
}

/// Sends one command to a Redis server or Sentinel at `host:port`.
pub fn redis_cmd_at(host: &str, port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open((host, port))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

/// Whether a server answers at all (an error reply such as NOAUTH counts as an answer).
pub fn answers(host: &str, port: u16) -> bool {
    match redis_cmd_at(host, port, &["PING"]) {
        Ok(_) => true,
        Err(e) => e.code().is_some(),
    }
}

/// `INFO replication` of a server on 127.0.0.1, or None if it does not answer.
pub fn info(port: u16) -> Option<String> {
    info_at("127.0.0.1", port)
}

/// `INFO replication` of a server at `host:port`, or None if it does not answer.
pub fn info_at(host: &str, port: u16) -> Option<String> {
    match redis_cmd_at(host, port, &["INFO", "replication"]).ok()? {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

/// The server binary the lab runs: `CDC_REDIS_SERVER` (another version or fork: Redis 6.2,
/// Valkey 8.1, see `make deps`) or Debian's `redis-server`.
pub fn server_program() -> String {
    std::env::var("CDC_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// The command that starts a Sentinel with `conf`: `redis-sentinel`, or the `CDC_REDIS_SERVER`
/// binary with `--sentinel` (Redis and Valkey servers both run as Sentinel that way).
pub fn sentinel_command(conf: &std::path::Path) -> Command {
    match std::env::var("CDC_REDIS_SERVER") {
        Ok(server) => {
            let mut c = Command::new(server);
            c.arg(conf).arg("--sentinel");
            c
        }
        Err(_) => {
            let mut c = Command::new("redis-sentinel");
            c.arg(conf);
            c
        }
    }
}

/// One `redis-server` process.
pub struct RedisNode {
    /// The loopback address it binds.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The process.
    pub proc: Proc,
    /// Its working directory (rdb and log files).
    pub dir: PathBuf,
    args: Vec<String>,
}

impl RedisNode {
    /// Starts `redis-server` on 127.0.0.1:`port` with the lab's settings plus `extra`.
    pub fn start(dir: &TempDir, name: &str, port: u16, extra: &[String]) -> RedisNode {
        Self::start_on(dir, name, "127.0.0.1", port, extra)
    }

    /// Starts `redis-server` on `host:port` with the lab's settings plus `extra`, waiting until it answers.
    pub fn start_on(dir: &TempDir, name: &str, host: &str, port: u16, extra: &[String]) -> RedisNode {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.0.to_str().unwrap(),
            "--dbfilename",
            &format!("{name}.rdb"),
            "--logfile",
            dir.join(format!("{name}.log")).to_str().unwrap(),
            "--repl-ping-replica-period",
            "1",
            "--repl-diskless-sync-delay",
            "0",
            "--protected-mode",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().cloned());
        let mut node = RedisNode { host: host.into(), port, proc: Proc { child: None, name: name.into() }, dir: dir.0.clone(), args };
        node.restart();
        node
    }

    /// (Re)starts the process with the arguments it was started with.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.proc.child = Some(spawn_tied(Command::new(server_program()).args(&self.args)));
        let (host, port) = (self.host.clone(), self.port);
        wait_for(&format!("redis-server on {host}:{port}"), Duration::from_secs(10), || answers(&host, port).then_some(()));
    }

    /// Restarts it as a master with no `replicaof` (an old master coming back).
    pub fn restart_as_master(&mut self) {
        if let Some(i) = self.args.iter().position(|a| a == "--replicaof") {
            self.args.drain(i..i + 3);
        }
        self.restart();
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Its `INFO replication`, if it answers.
    pub fn info(&self) -> Option<String> {
        info_at(&self.host, self.port)
    }

    /// `port` as an argument.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// The role line of INFO (master/slave), if it answers.
    pub fn role(&self) -> Option<String> {
        self.field("role")
    }

    /// One field of its `INFO replication`, if it answers and has it.
    pub fn field(&self, name: &str) -> Option<String> {
        let info = self.info()?;
        let prefix = format!("{name}:");
        info.lines().find_map(|l| l.strip_prefix(prefix.as_str()).map(|v| v.trim().to_string()))
    }

    /// Waits until this replica says `master_link_status:down`.
    pub fn wait_link_down(&self) {
        wait_for(&format!("{} link down", self.addr()), Duration::from_secs(10), || {
            (self.field("master_link_status")? == "down").then_some(())
        });
    }

    /// Waits until this replica is in its initial full sync (`master_sync_in_progress:1`).
    pub fn wait_sync_in_progress(&self) {
        wait_for(&format!("{} in initial sync", self.addr()), Duration::from_secs(10), || {
            (self.field("master_sync_in_progress")? == "1").then_some(())
        });
    }

    /// Waits until this replica last heard from its master at least `seconds` ago.
    pub fn wait_lag_at_least(&self, seconds: i64) {
        wait_for(&format!("{} lag >= {seconds}s", self.addr()), Duration::from_secs(seconds as u64 + 10), || {
            (self.field("master_last_io_seconds_ago")?.parse::<i64>().ok()? >= seconds).then_some(())
        });
    }
}

/// How to build a [`RedisLab`]: `RedisLab::builder().replicas(2).sentinels(3).password("pw").start()`.
#[derive(Clone, Debug, Default)]
pub struct RedisLabBuilder {
    replicas: usize,
    sentinels: usize,
    extra: Vec<String>,
}

impl RedisLabBuilder {
    /// How many replicas (default none).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }
    /// How many Sentinels (default none; quorum 2).
    pub fn sentinels(mut self, n: usize) -> Self {
        self.sentinels = n;
        self
    }
    /// `requirepass` (and `masterauth`) on every node.
    pub fn password(self, pw: &str) -> Self {
        self.server_args(&["--requirepass", pw])
    }
    /// Extra `redis-server` arguments for every node.
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }
    /// Starts it, all on 127.0.0.1, each node on a free port.
    pub fn start(self) -> RedisLab {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        RedisLab::start_with(self.replicas, self.sentinels, &extra)
    }
}

/// Extra arguments making a node a replica of 127.0.0.1:`master_port`.
pub fn replica_of(master_port: u16) -> Vec<String> {
    vec!["--replicaof".into(), "127.0.0.1".into(), master_port.to_string()]
}

/// Extra arguments making a node on `host` a replica of `master`, announcing its own address.
pub fn replica_of_node(master: &RedisNode, host: &str) -> Vec<String> {
    vec!["--replicaof".into(), master.host.clone(), master.port.to_string(), "--replica-announce-ip".into(), host.into()]
}

/// A master, its replicas and (optionally) Sentinels watching them.
pub struct RedisLab {
    /// Where everything lives.
    pub dir: TempDir,
    /// The node started as master.
    pub master: RedisNode,
    /// The nodes started as replicas.
    pub replicas: Vec<RedisNode>,
    /// Sentinel ports.
    pub sentinel_ports: Vec<u16>,
    /// Sentinel processes.
    pub sentinels: Vec<Proc>,
}

/// The master name the lab's Sentinels monitor.
pub const MASTER_NAME: &str = "labmaster";

impl RedisLab {
    /// A lab to configure: `RedisLab::builder().replicas(2).sentinels(3).start()`.
    pub fn builder() -> RedisLabBuilder {
        RedisLabBuilder::default()
    }

    /// Starts a master with `replicas` replicas (all linked up) and `sentinels` Sentinels (quorum 2).
    pub fn start(replicas: usize, sentinels: usize) -> RedisLab {
        Self::start_with(replicas, sentinels, &[])
    }

    /// Like `start`, with extra `redis-server` arguments for every node.
    pub fn start_with(replicas: usize, sentinels: usize, extra: &[&str]) -> RedisLab {
        let hosts = vec!["127.0.0.1"; replicas + 1];
        Self::start_on(&hosts, None, sentinels, extra)
    }

    /// A master on `hosts[0]` and replicas on the other hosts, all on `port` (or each on a free
    /// port), with `sentinels` Sentinels on 127.0.0.1.
    pub fn start_on(hosts: &[&str], port: Option<u16>, sentinels: usize, extra: &[&str]) -> RedisLab {
        let dir = TempDir::new("redis");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let port_for = || port.unwrap_or_else(free_port);
        let master = RedisNode::start_on(&dir, "master", hosts[0], port_for(), &extra);
        let replicas: Vec<RedisNode> = hosts[1..]
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let mut args = replica_of_node(&master, host);
                args.extend(extra.iter().cloned());
                if let Some(pw) = extra.iter().position(|a| a == "--requirepass") {
                    args.extend(["--masterauth".to_string(), extra[pw + 1].clone()]);
                }
                RedisNode::start_on(&dir, &format!("replica{i}"), host, port_for(), &args)
            })
            .collect();
        let mut lab = RedisLab { dir, master, replicas, sentinel_ports: vec![], sentinels: vec![] };
        if extra.iter().all(|a| a != "--requirepass") {
            lab.wait_online(&lab.master, lab.replicas.len());
            // The master lists a replica online once it has sent the RDB; the replica may still be
            // loading it (Valkey 9 shows that long enough to matter): wait for its own view too.
            for r in &lab.replicas {
                wait_for(&format!("{} linked up", r.addr()), Duration::from_secs(20), || {
                    (r.field("master_link_status").as_deref() == Some("up")).then_some(())
                });
            }
        }
        for i in 0..sentinels {
            lab.start_sentinel(i);
        }
        lab.wait_sentinels_settled();
        lab
    }

    /// Waits until every Sentinel knows the other Sentinels and every replica (hello messages take
    /// a few seconds); a failover before that is a different experiment.
    pub fn wait_sentinels_settled(&self) {
        let n = self.sentinel_ports.len();
        let count = |port: u16, what: &str| match redis_cmd(port, &["SENTINEL", what, MASTER_NAME]) {
            Ok(redis::Value::Array(items)) => items.len(),
            _ => usize::MAX,
        };
        for &port in &self.sentinel_ports {
            wait_for("Sentinels to discover each other and the replicas", Duration::from_secs(30), || {
                (count(port, "sentinels") == n - 1 && count(port, "replicas") == self.replicas.len()).then_some(())
            });
        }
    }

    fn start_sentinel(&mut self, i: usize) {
        let port = free_port();
        let conf = self.dir.join(format!("sentinel{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel{i}.log\n\
                 sentinel monitor {MASTER_NAME} {mhost} {mport} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 3000\n\
                 sentinel failover-timeout {MASTER_NAME} 4000\n\
                 sentinel parallel-syncs {MASTER_NAME} 2\n",
                dir = self.dir.0.display(),
                mhost = self.master.host,
                mport = self.master.port
            ),
        )
        .unwrap();
        let child = spawn_tied(&mut sentinel_command(&conf));
        wait_for(&format!("redis-sentinel on {port}"), Duration::from_secs(10), || redis_cmd(port, &["PING"]).ok());
        self.sentinel_ports.push(port);
        self.sentinels.push(Proc { child: Some(child), name: format!("sentinel{i}") });
    }

    /// Waits until the master on 127.0.0.1:`master_port` lists `n` online replicas.
    pub fn wait_replicas_online(&self, master_port: u16, n: usize) {
        wait_for(&format!("{n} online replicas of {master_port}"), Duration::from_secs(20), || {
            let i = info(master_port)?;
            (i.matches("state=online").count() == n).then_some(())
        });
    }

    /// Waits until `master` lists `n` online replicas.
    pub fn wait_online(&self, master: &RedisNode, n: usize) {
        wait_for(&format!("{n} online replicas of {}", master.addr()), Duration::from_secs(20), || {
            (master.info()?.matches("state=online").count() == n).then_some(())
        });
    }

    /// Waits until every Sentinel names the same master, other than `old`; returns it.
    pub fn wait_new_master(&self, old: &str) -> String {
        wait_for("all Sentinels to agree on a new master", Duration::from_secs(40), || self.agreed_master().filter(|m| m != old))
    }

    /// The `host:port` all Sentinels name as master right now, if they agree.
    pub fn agreed_master(&self) -> Option<String> {
        let views = self.sentinel_views();
        let first = views.first()?.clone()?;
        views.iter().all(|v| v.as_deref() == Some(first.as_str())).then_some(first)
    }

    /// `--sentinel` arguments for every Sentinel, plus `--master-name`.
    pub fn sentinel_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in &self.sentinel_ports {
            v.push("--sentinel".to_string());
            v.push(format!("127.0.0.1:{p}"));
        }
        v.extend(["--master-name".to_string(), MASTER_NAME.to_string()]);
        v
    }

    /// What each Sentinel says the master is (`host:port`), or None for no answer.
    pub fn sentinel_views(&self) -> Vec<Option<String>> {
        self.sentinel_ports
            .iter()
            .map(|p| match redis_cmd(*p, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).ok()? {
                redis::Value::Array(items) => {
                    let parts: Vec<String> = items
                        .iter()
                        .filter_map(|v| match v {
                            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                            _ => None,
                        })
                        .collect();
                    Some(parts.join(":"))
                }
                _ => None,
            })
            .collect()
    }

    /// Every node: the master first, then the replicas.
    pub fn nodes(&self) -> Vec<&RedisNode> {
        std::iter::once(&self.master).chain(self.replicas.iter()).collect()
    }
}

impl crate::pools::Observable for RedisLab {
    const CHECKS: (&'static str, &'static str) = (REDIS_MASTER, REDIS_SLAVE);
    fn targets(&self) -> Vec<crate::pools::CheckTarget> {
        self.nodes().iter().map(|n| crate::pools::CheckTarget { addr: n.addr(), up: n.proc.running(), args: vec![n.port_arg()] }).collect()
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> Option<()> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
}

/// A Redis server with only a TLS port (`pki`'s server certificate), its client-certificate rule
/// `clients` (`yes`, `no`, `optional`), data in `dir`.
pub fn start_tls(pki: &crate::pki::Pki, dir: &std::path::Path, clients: &str) -> (Proc, u16) {
    let port = free_port();
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir.to_str().unwrap(),
        "--tls-cert-file",
        &pki.arg("server.crt"),
        "--tls-key-file",
        &pki.arg("server.key"),
        "--tls-ca-cert-file",
        &pki.arg("ca.crt"),
        "--tls-auth-clients",
        clients,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn_tied(Command::new("redis-server").args(&args).stdout(std::process::Stdio::null()));
    wait_for("redis-server TLS port", Duration::from_secs(10), || listening(port));
    (Proc { child: Some(child), name: "redis-tls".into() }, port)
}
