//! Redis on three hosts in network namespaces, as users run it: every node on port 6029 with a
//! Sentinel on 26379, keepalived on every host running exactly what `gen-consul-services --format
//! keepalived` wrote (the checks as an unprivileged user, the password file readable by that user
//! only), and clients that write through the VIP and record every acknowledged write.

use crate::consul_hosts::ConsulOnHosts;
use crate::keepalived::{keepalived_complaints, keepalived_on, wait_for_first_vip, Keepalived, VipWatch};
use crate::netlab::{in_namespace, ns_command, start_proc, Host, NetLab, LAB_INTERFACE};
use crate::writer::{Ack, Writer};
use crate::{bin, wait_for, Proc};
use crate::{GENERATOR, MYSQL_MASTER, MYSQL_SLAVE, REDIS_MASTER, REDIS_SLAVE};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The port of every Redis node.
pub const REDIS_PORT: u16 = 6029;
/// The port of every Sentinel.
pub const SENTINEL_PORT: u16 = 26379;
/// The VIP keepalived floats to the master.
pub const VIP: &str = "198.18.0.100";
/// The Sentinels' master name.
pub const MASTER_NAME: &str = "lab";
/// The Redis password (also in the check's password file).
pub const PASSWORD: &str = "lab-redis-pw";
/// The unprivileged user keepalived runs the checks as.
pub const SCRIPT_USER: &str = "nobody";

/// Sends one command to `addr:port` from inside namespace `ns` (AUTH first when `password`).
pub fn redis_in(ns: &str, addr: &str, port: u16, password: Option<&str>, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let (addr, password) = (addr.to_string(), password.map(String::from));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    in_namespace(ns, move || {
        let client = redis::Client::open((addr.as_str(), port))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
        conn.set_read_timeout(Some(Duration::from_millis(500)))?;
        if let Some(pw) = password {
            redis::cmd("AUTH").arg(pw).query::<()>(&mut conn)?;
        }
        let mut cmd = redis::cmd(&args[0]);
        for a in &args[1..] {
            cmd.arg(a);
        }
        cmd.query(&mut conn)
    })
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// One `redis-server` on a lab host.
pub struct NsRedis {
    /// Its host.
    pub host: Host,
    /// The process.
    pub proc: Proc,
    args: Vec<String>,
}

impl NsRedis {
    /// (Re)starts it with the arguments it was started with.
    pub fn restart(&mut self) {
        self.proc.kill();
        let mut cmd = ns_command(&self.host.ns, "redis-server");
        cmd.args(&self.args).stdout(Stdio::null()).stderr(Stdio::null());
        self.proc = start_proc(&format!("redis {}", self.host.name), &mut cmd);
        let (ns, addr) = (self.host.ns.clone(), self.host.addr.clone());
        wait_for(&format!("redis-server on {addr}"), Duration::from_secs(10), || {
            redis_in(&ns, &addr, REDIS_PORT, Some(PASSWORD), &["PING"]).ok()
        });
    }

    /// Restarts it as a master with an empty dataset and no `replicaof`: a failed-over master back.
    pub fn restart_as_master(&mut self) {
        if let Some(i) = self.args.iter().position(|a| a == "--replicaof") {
            self.args.drain(i..i + 3);
        }
        self.restart();
    }

    /// A field of its `INFO replication`, asked from its own namespace.
    pub fn field(&self, name: &str) -> Option<String> {
        let info = text(&redis_in(&self.host.ns, &self.host.addr, REDIS_PORT, Some(PASSWORD), &["INFO", "replication"]).ok()?)?;
        let prefix = format!("{name}:");
        info.lines().find_map(|l| l.strip_prefix(prefix.as_str()).map(|v| v.trim().to_string()))
    }
}

/// The MariaDB master and replica on hosts m1 and m2 (port 3306 on both), keepalived floating
/// 198.18.0.101 to the node whose `check-mysql-master` passes.
pub struct MariaVipLab {
    /// keepalived on both hosts (stopped first).
    pub keepalived: Vec<Proc>,
    /// m1 (the first master) and m2 (its replica, `read_only`).
    pub nodes: Vec<crate::mysql_lab::MariaNode>,
    /// The Consul service files each host's agent would run.
    pub consul: ConsulOnHosts,
    /// The data directories.
    pub dir: crate::TempDir,
    /// The inventory of its group, as an operator would write it.
    pub inventory: String,
    /// The hosts (dropped last).
    pub net: NetLab,
}

/// The MariaDB lab's VIP.
pub const MYSQL_VIP: &str = "198.18.0.101";

impl MariaVipLab {
    /// Starts both servers with replication, and keepalived; waits until the VIP is on m1.
    pub fn start() -> Result<MariaVipLab, String> {
        use crate::mysql_lab::{create_users, MariaNode, CHECKER};
        let net = NetLab::create(&[("m1", 31), ("m2", 32), ("c3", 33)])?;
        let dir = crate::TempDir::new("maria-vip");
        let (m1, m2) = (net.host("m1").clone(), net.host("m2").clone());
        let master = MariaNode::start_in(&dir, "m1", 1, Some(&m1.ns), &m1.addr, 3306, &[]);
        create_users(&master);
        let replica = MariaNode::start_in(&dir, "m2", 2, Some(&m2.ns), &m2.addr, 3306, &["--read-only"]);
        replica.replicate_from(&master, "");
        install_checks(&net, &[MYSQL_MASTER, MYSQL_SLAVE]);
        let secrets = net.dir.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let cnf = secrets.join("mysql-check.cnf");
        std::fs::write(&cnf, format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1)).unwrap();
        chown_to(&cnf, SCRIPT_USER, 0o400);
        let inventory = format!(
            r#"[{{"kind":"mysql","name":"lab","port":3306,"nodes":["{a}","{b}"],"defaults_file":"{cnf}","repl_users":["repl"],
                "vrrp":{{"vip":"{MYSQL_VIP}/24","virtual_router_id":52,"interface":"{LAB_INTERFACE}","script_user":"{SCRIPT_USER}"}}}}]"#,
            a = m1.addr,
            b = m2.addr,
            cnf = cnf.display(),
        );
        let hosts = [m1, m2];
        let keepalived = keepalived_on(&net, &hosts, &inventory);
        let consul = ConsulOnHosts::generate(&net, &hosts, &inventory);
        let lab = MariaVipLab { keepalived, nodes: vec![master, replica], consul, dir, inventory, net };
        wait_for_first_vip(&lab.net, MYSQL_VIP, "m1");
        let complaints = keepalived_complaints(&lab.net);
        assert!(complaints.is_empty(), "keepalived did not take the generated configuration as written:\n{}", complaints.join("\n"));
        Ok(lab)
    }
}

/// Lab timings, chosen for the budget in the README.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// Sentinel `down-after-milliseconds`.
    pub down_after: Duration,
    /// Redis `min-replicas-to-write 1` with this `min-replicas-max-lag` (seconds) on every node.
    pub min_replicas_max_lag: Option<u32>,
}

/// The Redis + Sentinel + keepalived lab on hosts h1 (master), h2, h3, with clients c1
/// (segment A) and c2 (used on segment B).
pub struct RedisVipLab {
    /// keepalived on every host (declared first: stopped before the servers and the namespaces).
    pub keepalived: Vec<Proc>,
    /// The Sentinels, one per host.
    pub sentinels: Vec<Proc>,
    /// The Redis nodes, h1 first (the first master).
    pub nodes: Vec<NsRedis>,
    /// The timings in force.
    pub timings: Timings,
    /// The Consul service files each host's agent would run.
    pub consul: ConsulOnHosts,
    /// When the lab started: every recorded time counts from here.
    pub epoch: Instant,
    /// The hosts (dropped last).
    pub net: NetLab,
}

impl RedisVipLab {
    /// Starts everything and waits until the VIP is on h1; `Err` when namespaces cannot be made.
    pub fn start(timings: Timings) -> Result<RedisVipLab, String> {
        let net = NetLab::create(&[("h1", 11), ("h2", 12), ("h3", 13), ("c1", 21), ("c2", 22)])?;
        let dir = net.dir.clone();
        for sub in ["secrets", "data"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // The checks, where keepalived's script security accepts them, and the password file
        // readable by the script user alone.
        install_checks(&net, &[REDIS_MASTER, REDIS_SLAVE]);
        let pw_file = dir.join("secrets/redis.pw");
        std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
        chown_to(&pw_file, SCRIPT_USER, 0o400);
        let data = dir.join("data");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();

        let redis_hosts: Vec<Host> = ["h1", "h2", "h3"].iter().map(|h| net.host(h).clone()).collect();
        let master = redis_hosts[0].addr.clone();
        let mut nodes = Vec::new();
        for (i, host) in redis_hosts.iter().enumerate() {
            let mut args: Vec<String> = [
                "--port",
                &REDIS_PORT.to_string(),
                "--bind",
                "0.0.0.0",
                "--protected-mode",
                "no",
                "--requirepass",
                PASSWORD,
                "--masterauth",
                PASSWORD,
                "--replica-announce-ip",
                &host.addr,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                data.to_str().unwrap(),
                "--dbfilename",
                &format!("{}.rdb", host.name),
                "--logfile",
                data.join(format!("{}.log", host.name)).to_str().unwrap(),
                "--repl-ping-replica-period",
                "1",
                "--repl-diskless-sync-delay",
                "0",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some(lag) = timings.min_replicas_max_lag {
                args.extend(["--min-replicas-to-write".into(), "1".into(), "--min-replicas-max-lag".into(), lag.to_string()]);
            }
            if i > 0 {
                args.extend(["--replicaof".into(), master.clone(), REDIS_PORT.to_string()]);
            }
            let mut node = NsRedis { host: host.clone(), proc: Proc { child: None, name: String::new() }, args };
            node.restart();
            nodes.push(node);
        }
        wait_for("2 replicas online", Duration::from_secs(20), || {
            (nodes[0].field("connected_slaves")? == "2"
                && nodes[1..].iter().all(|n| n.field("master_link_status").as_deref() == Some("up")))
            .then_some(())
        });
        let mut sentinels = Vec::new();
        for host in &redis_hosts {
            let conf = data.join(format!("sentinel-{}.conf", host.name));
            std::fs::write(
                &conf,
                format!(
                    "port {SENTINEL_PORT}\nbind 0.0.0.0\nprotected-mode no\ndir {d}\nlogfile {d}/sentinel-{h}.log\n\
                     sentinel announce-ip {addr}\n\
                     sentinel monitor {MASTER_NAME} {master} {REDIS_PORT} 2\n\
                     sentinel auth-pass {MASTER_NAME} {PASSWORD}\n\
                     sentinel down-after-milliseconds {MASTER_NAME} {down}\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 2\n",
                    d = data.display(),
                    h = host.name,
                    addr = host.addr,
                    down = timings.down_after.as_millis(),
                ),
            )
            .unwrap();
            let mut cmd = ns_command(&host.ns, "redis-sentinel");
            cmd.arg(&conf).stdout(Stdio::null()).stderr(Stdio::null());
            sentinels.push(start_proc(&format!("sentinel {}", host.name), &mut cmd));
        }
        let lab_hosts = redis_hosts.clone();
        wait_for("the Sentinels to know each other and both replicas", Duration::from_secs(40), || {
            lab_hosts
                .iter()
                .all(|h| {
                    let count = |what: &str| match redis_in(&h.ns, &h.addr, SENTINEL_PORT, None, &["SENTINEL", what, MASTER_NAME]) {
                        Ok(redis::Value::Array(items)) => items.len(),
                        _ => usize::MAX,
                    };
                    count("sentinels") == 2 && count("replicas") == 2
                })
                .then_some(())
        });
        let consul = ConsulOnHosts::default();
        let mut lab = RedisVipLab { keepalived: Vec::new(), sentinels, nodes, timings, consul, epoch: Instant::now(), net };
        lab.start_keepalived(&pw_file);
        lab.consul = ConsulOnHosts::generate(&lab.net, &redis_hosts, &lab.inventory(&pw_file));
        wait_for_first_vip(&lab.net, VIP, "h1");
        let complaints = keepalived_complaints(&lab.net);
        assert!(complaints.is_empty(), "keepalived did not take the generated configuration as written:\n{}", complaints.join("\n"));
        Ok(lab)
    }

    /// The inventory of the lab's group, as an operator would write it.
    pub fn inventory(&self, pw_file: &Path) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("\"{}\"", n.host.addr)).collect();
        let sentinels: Vec<String> = self.nodes.iter().map(|n| format!("\"{}:{SENTINEL_PORT}\"", n.host.addr)).collect();
        format!(
            r#"[{{"kind":"redis","name":"lab","port":{REDIS_PORT},"nodes":[{nodes}],"password_file":"{pw}",
                "sentinels":[{sentinels}],"master_name":"{MASTER_NAME}","max_lag":"10s",
                "vrrp":{{"vip":"{VIP}/24","virtual_router_id":51,"interface":"{LAB_INTERFACE}","script_user":"{SCRIPT_USER}"}}}}]"#,
            nodes = nodes.join(","),
            sentinels = sentinels.join(","),
            pw = pw_file.display(),
        )
    }

    fn start_keepalived(&mut self, pw_file: &Path) {
        let hosts: Vec<Host> = self.nodes.iter().map(|n| n.host.clone()).collect();
        self.keepalived = keepalived_on(&self.net, &hosts, &self.inventory(pw_file));
    }

    /// The generated keepalived configuration of `host`.
    pub fn keepalived_conf(&self, host: &str) -> String {
        std::fs::read_to_string(self.net.dir.join("keepalived").join(host).join("keepalived.conf")).unwrap()
    }

    /// Seconds since the lab's epoch.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The hosts that hold the VIP right now.
    pub fn vip_holders(&self) -> Vec<String> {
        self.net.holders(VIP)
    }

    /// Waits until exactly `host` holds the VIP; returns when (since the epoch).
    pub fn wait_vip_on(&self, host: &str, limit: Duration) -> Duration {
        wait_for(&format!("the VIP on {host} alone"), limit, || (self.vip_holders() == [host]).then(|| self.now()))
    }

    /// What the Sentinel on `host` names as master (`addr`), asked from its own namespace.
    pub fn sentinel_says(&self, host: &str) -> Option<String> {
        let h = self.net.host(host);
        match redis_in(&h.ns, &h.addr, SENTINEL_PORT, None, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).ok()? {
            redis::Value::Array(items) => items.first().and_then(text),
            _ => None,
        }
    }

    /// The operator's `SENTINEL FAILOVER` (sent to h2's Sentinel); returns the new master once the
    /// Sentinels name a host other than h1 (at most 30 s).
    pub fn operator_failover(&self) -> String {
        let h = self.net.host("h2").clone();
        let reply = redis_in(&h.ns, &h.addr, SENTINEL_PORT, None, &["SENTINEL", "FAILOVER", MASTER_NAME]);
        assert!(reply.is_ok(), "SENTINEL FAILOVER: {reply:?}");
        wait_for("a new master named by Sentinel", Duration::from_secs(30), || {
            self.sentinel_says("h2").map(|a| self.host_of(&a)).filter(|host| host != "h1")
        })
    }

    /// The lab host whose address is `addr`.
    pub fn host_of(&self, addr: &str) -> String {
        self.net.hosts.iter().find(|h| h.addr == addr).map(|h| h.name.clone()).unwrap_or_else(|| addr.to_string())
    }

    /// Keys that `acked` lists but `host`'s Redis does not have.
    pub fn missing_keys(&self, host: &str, acked: &[Ack]) -> Vec<Ack> {
        let h = self.net.host(host).clone();
        let keys: Vec<String> = acked.iter().map(|a| a.key.clone()).collect();
        let present: Vec<bool> = in_namespace(&h.ns, move || {
            let client = redis::Client::open((h.addr.as_str(), REDIS_PORT)).unwrap();
            let mut conn = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
            redis::cmd("AUTH").arg(PASSWORD).query::<()>(&mut conn).unwrap();
            let mut present = Vec::new();
            for chunk in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.cmd("EXISTS").arg(k);
                }
                let got: Vec<i64> = pipe.query(&mut conn).unwrap();
                present.extend(got.into_iter().map(|n| n == 1));
            }
            present
        });
        acked.iter().zip(present).filter(|(_, p)| !p).map(|(a, _)| a.clone()).collect()
    }

    /// Starts a client in `client`'s namespace writing unique keys through the VIP.
    pub fn writer(&self, client: &str, prefix: &str) -> Writer {
        Writer::start(self.net.host(client).ns.clone(), prefix.to_string(), self.epoch, (VIP.to_string(), REDIS_PORT))
    }

    /// The same writer, through `target` (`host`, `port`: a load balancer's frontend) instead.
    pub fn writer_to(&self, client: &str, prefix: &str, target: (String, u16)) -> Writer {
        Writer::start(self.net.host(client).ns.clone(), prefix.to_string(), self.epoch, target)
    }

    /// Starts sampling, every 50 ms, which hosts hold the VIP (for at most 120 s).
    pub fn watch_vip(&self) -> VipWatch {
        VipWatch::start(self.net.hosts.clone(), VIP, self.epoch)
    }

    /// Starts watching h2 and h3 (from c1) for the first to say `role:master`.
    pub fn watch_promotion(&self) -> JoinHandle<Option<(String, Duration)>> {
        let watcher = self.net.host("c1").ns.clone();
        let candidates: Vec<(String, String)> = self.nodes[1..].iter().map(|n| (n.host.name.clone(), n.host.addr.clone())).collect();
        let epoch = self.epoch;
        std::thread::spawn(move || {
            in_namespace(&watcher, move || {
                let connect = |addr: &str| -> Option<redis::Connection> {
                    let client = redis::Client::open((addr, REDIS_PORT)).ok()?;
                    let mut c = client.get_connection_with_timeout(Duration::from_millis(200)).ok()?;
                    c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
                    redis::cmd("AUTH").arg(PASSWORD).query::<()>(&mut c).ok()?;
                    Some(c)
                };
                // Sentinel disconnects the promoted replica's clients: reconnect on any error.
                let mut conns: Vec<Option<redis::Connection>> = candidates.iter().map(|_| None).collect();
                // Bounded: 60 s of polling every 20 ms.
                let until = Instant::now() + Duration::from_secs(60);
                while Instant::now() < until {
                    for ((name, addr), conn) in candidates.iter().zip(conns.iter_mut()) {
                        if conn.is_none() {
                            *conn = connect(addr);
                        }
                        let Some(c) = conn else { continue };
                        match redis::cmd("ROLE").query::<redis::Value>(c) {
                            Ok(redis::Value::Array(role)) if role.first().and_then(text).as_deref() == Some("master") => {
                                return Some((name.clone(), epoch.elapsed()));
                            }
                            Ok(_) => {}
                            Err(_) => *conn = None,
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                None
            })
        })
    }
}

/// Runs the real `gen-consul-services --format FORMAT` for `host` on `inventory` (checks in the
/// lab's `bin/`); returns the directory it wrote into.
pub(crate) fn generate_for(net: &NetLab, host: &Host, inventory: &str, format: &str) -> PathBuf {
    let dir = net.dir.join(format);
    std::fs::create_dir_all(&dir).unwrap();
    let inventory_file = dir.join("inventory.json");
    // The drain files live in the lab's directory, never in the machine's.
    let mut inventory: serde_json::Value = serde_json::from_str(inventory).unwrap();
    if inventory.is_array() {
        inventory = serde_json::json!({ "groups": inventory });
    }
    inventory["drain_dir"] = serde_json::json!(drain_dir(net, &host.name));
    std::fs::write(&inventory_file, inventory.to_string()).unwrap();
    let (out, bin_dir) = (dir.join(&host.name), net.dir.join("bin"));
    let mut args = vec!["--inventory", inventory_file.to_str().unwrap(), "--node", &host.addr, "--format", format];
    args.extend(["--bin-dir", bin_dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let version = &Keepalived::in_use().version;
    if format == "keepalived" {
        args.extend(["--keepalived-version", version.as_str()]);
    }
    let gen = crate::run(GENERATOR, args);
    assert_eq!(gen.code, Some(0), "gen-consul-services: {}{}", gen.stdout, gen.stderr);
    out
}

/// Where the checks of lab host `host` look for the operator's drain files (`<dir>/<service-id>`):
/// one directory per host, as each real host has its own file system.
pub fn drain_dir(net: &NetLab, host: &str) -> PathBuf {
    net.dir.join("drain").join(host)
}

/// Copies the project's executables `names` into the lab's `bin/` (root-owned, 0755: where
/// keepalived's script security accepts them).
pub fn install_checks(net: &NetLab, names: &[&str]) {
    let dir = net.dir.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for exe in names {
        std::fs::copy(bin(exe), dir.join(exe)).unwrap();
    }
}

/// The inventory of one MySQL group (of `kind`: `galera`, `group-replication`) `name` on `hosts`
/// (port 3306) with the checks' login in `cnf` and keepalived floating `vip` (`vrid`) to the node
/// whose write check passes, the checks run as [`SCRIPT_USER`].
pub fn mysql_vrrp_inventory(kind: &str, name: &str, hosts: &[Host], cnf: &Path, vip: &str, vrid: u8) -> String {
    let addrs: Vec<String> = hosts.iter().map(|h| format!("\"{}\"", h.addr)).collect();
    format!(
        r#"[{{"kind":"{kind}","name":"{name}","port":3306,"nodes":[{}],"defaults_file":"{}",
            "vrrp":{{"vip":"{vip}/24","virtual_router_id":{vrid},"interface":"{LAB_INTERFACE}","script_user":"{SCRIPT_USER}"}}}}]"#,
        addrs.join(","),
        cnf.display(),
    )
}

/// Changes the owner of `path` to `user` and its mode to `mode`.
pub fn chown_to(path: &Path, user: &str, mode: u32) {
    let name = std::ffi::CString::new(user).unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user {user} on this machine");
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::chown(c_path.as_ptr(), uid, gid) }, 0, "chown {}", path.display());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
