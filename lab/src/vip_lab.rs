//! Redis on three hosts in network namespaces, as users run it: every node on port 6029 with a
//! Sentinel on 26379, keepalived on every host running exactly what `gen-consul-services --format
//! keepalived` wrote (the checks as an unprivileged user, the password file readable by that user
//! only), and clients that write through the VIP and record every acknowledged write.

use crate::netlab::{in_namespace, ns_command, start_proc, Host, NetLab, LAB_INTERFACE, LAB_PREFIX};
use crate::{bin, wait_for, Proc};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
        install_checks(&net, &["check-mysql-master", "check-mysql-slave"]);
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
        install_checks(&net, &["check-redis-master", "check-redis-slave"]);
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
        let consul = ConsulOnHosts { checks: Vec::new() };
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
        let hosts: Vec<Host> = self.net.hosts.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let epoch = self.epoch;
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let until = Instant::now() + Duration::from_secs(120);
            while !stop_flag.load(Ordering::SeqCst) && Instant::now() < until {
                let holders = crate::netlab::holders_of(&hosts, VIP);
                samples.push((epoch.elapsed(), holders));
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        VipWatch { stop, handle }
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
fn generate_for(net: &NetLab, host: &Host, inventory: &str, format: &str) -> PathBuf {
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
    let gen = crate::run("gen-consul-services", args);
    assert_eq!(gen.code, Some(0), "gen-consul-services: {}{}", gen.stdout, gen.stderr);
    out
}

/// Where the checks of lab host `host` look for the operator's drain files (`<dir>/<service-id>`):
/// one directory per host, as each real host has its own file system.
pub fn drain_dir(net: &NetLab, host: &str) -> PathBuf {
    net.dir.join("drain").join(host)
}

/// The keepalived the lab runs: this machine's, or, with `CDC_KEEPALIVED_ROOT` naming a chroot
/// (scripts/chroot.sh), the one of that chroot's release.
pub struct Keepalived {
    /// The chroot it runs in, if any.
    root: Option<PathBuf>,
    /// Its version (`2.2.7`), passed to the generator as `--keepalived-version`.
    pub version: String,
}

impl Keepalived {
    /// The keepalived of this run (asked for its version once).
    pub fn in_use() -> &'static Keepalived {
        static IN_USE: std::sync::OnceLock<Keepalived> = std::sync::OnceLock::new();
        IN_USE.get_or_init(|| {
            let root = std::env::var_os("CDC_KEEPALIVED_ROOT").map(PathBuf::from);
            let mut cmd = match &root {
                Some(root) => {
                    let mut c = std::process::Command::new("chroot");
                    c.arg(root).arg("keepalived");
                    c
                }
                None => std::process::Command::new("keepalived"),
            };
            let out = cmd.arg("--version").output().expect("keepalived --version");
            // "Keepalived v2.3.3 (03/30,2025)", on stderr for some versions.
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let version = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix('v').filter(|v| v.starts_with(|c: char| c.is_ascii_digit())))
                .unwrap_or_else(|| panic!("no version in keepalived --version: {text}"))
                .to_string();
            Keepalived { root, version }
        })
    }

    /// The command that starts keepalived inside namespace `ns` (arguments to be added). In a
    /// chroot, the chroot gets /proc, /sys and this machine's /run (where the lab's files are)
    /// mounted inside the mount namespace `ip netns exec` makes for it: the mounts go with it.
    pub fn command(&self, ns: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        match &self.root {
            None => {
                cmd.arg("keepalived");
            }
            Some(root) => {
                cmd.args([
                    "sh",
                    "-c",
                    r#"mount -t proc proc "$0/proc" && mount --rbind /sys "$0/sys" && mount --bind /run "$0/run" && exec chroot "$0" keepalived "$@""#,
                ])
                .arg(root);
            }
        }
        cmd
    }
}

/// Writes `inventory` into the lab, generates each host's keepalived.conf from it with the real
/// `gen-consul-services` (checks in the lab's `bin/`), and starts keepalived on every host with
/// exactly that file.
pub fn keepalived_on(net: &NetLab, hosts: &[Host], inventory: &str) -> Vec<Proc> {
    hosts
        .iter()
        .map(|host| {
            let out = generate_for(net, host, inventory, "keepalived");
            let log = std::fs::File::create(out.join("keepalived.log")).unwrap();
            let mut cmd = Keepalived::in_use().command(&host.ns);
            cmd.args(["--dont-fork", "--log-console", "--log-detail", "--vrrp"])
                .arg("--use-file")
                .arg(out.join("keepalived.conf"))
                .arg("--pid")
                .arg(out.join("keepalived.pid"))
                .arg("--vrrp_pid")
                .arg(out.join("vrrp.pid"))
                // Every pid file of the host's own (2.3 checks the BFD one even with --vrrp: two
                // hosts starting at once would find each other's in a shared /run).
                .arg("--checkers_pid")
                .arg(out.join("checkers.pid"))
                .arg("--bfd_pid")
                .arg(out.join("bfd.pid"))
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            start_proc(&format!("keepalived {}", host.name), &mut cmd)
        })
        .collect()
}

/// Waits up to 20 s for `vip` on `host` alone after keepalived started; panics with the holders
/// and the end of every host's keepalived log.
fn wait_for_first_vip(net: &NetLab, vip: &str, host: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while net.holders(vip) != [host] {
        if Instant::now() > until {
            let mut logs = String::new();
            for h in &net.hosts {
                if let Ok(log) = std::fs::read_to_string(net.dir.join("keepalived").join(&h.name).join("keepalived.log")) {
                    let lines: Vec<&str> = log.lines().collect();
                    logs += &format!("--- {} keepalived.log (end)\n{}\n", h.name, lines[lines.len().saturating_sub(25)..].join("\n"));
                }
            }
            panic!("timed out after 20s waiting for {vip} on {host} alone (holders: {:?})\n{logs}", net.holders(vip));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of every host's keepalived log that complain about the configuration (keepalived
/// ignores what it cannot read and carries on: a test must notice).
pub fn keepalived_complaints(net: &NetLab) -> Vec<String> {
    let dir = net.dir.join("keepalived");
    let mut found = Vec::new();
    for host in &net.hosts {
        if let Ok(log) = std::fs::read_to_string(dir.join(&host.name).join("keepalived.log")) {
            for line in log.lines() {
                let l = line.to_ascii_lowercase();
                if ["invalid", "ignoring", "not valid", "unknown keyword", "error", "unsafe", "disabling"].iter().any(|w| l.contains(w)) {
                    found.push(format!("{}: {line}", host.name));
                }
            }
        }
    }
    found
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

/// The Consul service files the generator wrote into `dir`, parsed, in file name order.
pub fn service_files(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
}

/// What Consul DNS would answer per service name, from the checks each host's agent runs.
pub type Answers = std::collections::BTreeMap<String, Vec<String>>;

/// Each host's Consul service files, generated from the inventory, run as its local agent would:
/// inside the host's namespace, against its own address, with no shell and Consul's timeout.
pub struct ConsulOnHosts {
    checks: Vec<(Host, String, Vec<String>, Duration)>,
}

impl ConsulOnHosts {
    /// Generates every host's service files with the real `gen-consul-services`.
    pub fn generate(net: &NetLab, hosts: &[Host], inventory: &str) -> ConsulOnHosts {
        let mut checks = Vec::new();
        for host in hosts {
            let out = generate_for(net, host, inventory, "consul");
            for v in service_files(&out) {
                let service = v["service"]["name"].as_str().unwrap().to_string();
                let check = &v["service"]["checks"][0];
                let args: Vec<String> = check["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
                let timeout = consul_db_checks::duration::parse_duration(check["timeout"].as_str().unwrap()).unwrap();
                checks.push((host.clone(), service, args, timeout));
            }
        }
        ConsulOnHosts { checks }
    }

    /// Runs every check once, all at once, each killed at its Consul timeout: per check, the
    /// service, the host, the exit code and the first output line.
    pub fn run_all(&self) -> Vec<HostCheck> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .checks
                .iter()
                .map(|(host, service, args, timeout)| {
                    scope.spawn(move || {
                        let mut cmd = ns_command(&host.ns, &args[0]);
                        cmd.args(&args[1..]);
                        let r = crate::run_command(&mut cmd, *timeout);
                        let first_line = r.stdout.lines().next().unwrap_or("").to_string();
                        HostCheck { service: service.clone(), host: host.name.clone(), code: r.code, first_line }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// Runs every check once and returns, per service name, the hosts whose check is not
    /// critical: what Consul DNS answers.
    pub fn answers(&self) -> Answers {
        answers_of(&self.run_all())
    }
}

/// One check run by a host's agent.
#[derive(Clone, Debug)]
pub struct HostCheck {
    /// The service name.
    pub service: String,
    /// The host.
    pub host: String,
    /// Exit code (`None`: killed at Consul's timeout).
    pub code: Option<i32>,
    /// The first line it printed.
    pub first_line: String,
}

/// What Consul DNS answers per service name, from the checks' results.
pub fn answers_of(checks: &[HostCheck]) -> Answers {
    let mut answers = Answers::new();
    for c in checks {
        let entry = answers.entry(c.service.clone()).or_default();
        if matches!(c.code, Some(0) | Some(1)) {
            entry.push(c.host.clone());
        }
    }
    answers
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

/// Which hosts held the VIP, sampled every 50 ms.
pub struct VipWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Duration, Vec<String>)>>,
}

impl VipWatch {
    /// Stops sampling and returns the samples.
    pub fn finish(self) -> VipTimeline {
        self.stop.store(true, Ordering::SeqCst);
        VipTimeline(self.handle.join().unwrap())
    }
}

/// The VIP's holders over time: `(since the epoch, hosts)`.
#[derive(Clone, Debug)]
pub struct VipTimeline(pub Vec<(Duration, Vec<String>)>);

impl VipTimeline {
    /// The first sample after `from` in which `host` no longer holds the VIP (and never again before `until`).
    pub fn released_by(&self, host: &str, from: Duration, until: Duration) -> Option<Duration> {
        let window: Vec<&(Duration, Vec<String>)> = self.0.iter().filter(|(t, _)| *t >= from && *t <= until).collect();
        let last_held = window.iter().rposition(|(_, h)| h.iter().any(|x| x == host));
        match last_held {
            None => window.first().map(|(t, _)| *t),
            Some(i) => window.get(i + 1).map(|(t, _)| *t),
        }
    }

    /// The first sample after `from` in which exactly `host` holds the VIP.
    pub fn first_held_alone(&self, host: &str, from: Duration) -> Option<Duration> {
        self.0.iter().find(|(t, h)| *t >= from && h.len() == 1 && h[0] == host).map(|(t, _)| *t)
    }

    /// The most hosts that held the VIP in any one sample.
    pub fn max_holders(&self) -> usize {
        self.0.iter().map(|(_, h)| h.len()).max().unwrap_or(0)
    }
}

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
    fn start(ns: String, prefix: String, epoch: Instant, target: (String, u16)) -> Writer {
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
