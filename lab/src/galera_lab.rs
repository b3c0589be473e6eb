//! A real Galera cluster for tests: MariaDB with Debian's galera-4 (or the chroot `CDC_CHROOT`'s:
//! MariaDB 11.8 in the matrix), node i on 127.0.0.(i+2) with the client port they share (as hosts
//! of an inventory group do), its group, IST and SST ports on 127.0.0.1. The servers run
//! as the `mysql` user: the rsync state transfer refuses to run as root.

use crate::mysql_lab::template;
use crate::{free_port, spawn_tied, wait_for, Proc, TempDir};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The monitor the checks log in as: the same grants as for asynchronous replication, and `SELECT`
/// on `mysql.wsrep_cluster_members` (the user `blind` lacks it: the checks then ask every member).
pub const CHECKER: (&str, &str) = ("checker", "checker-pw");

/// The Galera library Debian's galera-4 installs.
const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The `mysql` user's `uid:gid` where the servers run: this machine, or the chroot named by
/// `CDC_CHROOT` (the matrix runs MariaDB 11.8 in one; its `mysql` has another id).
fn mysql_ids() -> String {
    let root = std::env::var("CDC_CHROOT").unwrap_or_default();
    let passwd = std::fs::read_to_string(format!("{root}/etc/passwd")).expect("passwd");
    let line = passwd.lines().find(|l| l.starts_with("mysql:")).expect("a mysql user (mariadb-server creates it)");
    let fields: Vec<&str> = line.split(':').collect();
    format!("{}:{}", fields[2], fields[3])
}

/// Owns `path` (recursively) by the `mysql` user.
fn give_to_mysql(path: &std::path::Path) {
    let st = Command::new("chown").arg("-R").arg(mysql_ids()).arg(path).status().unwrap();
    assert!(st.success(), "chown mysql {}", path.display());
}

/// One Galera node.
pub struct GaleraNode {
    /// Its name (`g0`, `g1`, ...).
    pub name: String,
    /// Its loopback address (127.0.0.2, 127.0.0.3, ...).
    pub host: String,
    /// Its client port (the same on every node).
    pub port: u16,
    /// Its group communication address (`host:port`).
    pub group_addr: String,
    /// The network namespace it runs in (a namespace lab host), if any: the harness then talks to
    /// it as root through its Unix socket.
    pub ns: Option<String>,
    /// The process.
    pub proc: Proc,
    socket: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl GaleraNode {
    /// `host:port` as the checks and `wsrep_incoming_addresses` name it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `--host H --port N` for a check.
    pub fn target_args(&self) -> Vec<String> {
        vec!["--host".into(), self.host.clone(), "--port".into(), self.port.to_string()]
    }

    fn conn_opt(&self) -> Option<mysql::Conn> {
        crate::mysql_lab::root_conn(&self.host, self.port, self.ns.is_some().then_some(self.socket.as_path()))
    }

    /// Runs statements as root.
    pub fn sql(&self, statements: &str) {
        use mysql::prelude::Queryable;
        let mut c = self.conn_opt().unwrap_or_else(|| panic!("cannot connect to {}", self.name));
        c.query_drop(statements).unwrap_or_else(|e| panic!("{}: {statements}: {e}", self.name));
    }

    /// `SHOW GLOBAL STATUS` as name to value, or `None` when it does not answer.
    pub fn status(&self) -> Option<HashMap<String, String>> {
        use mysql::prelude::Queryable;
        let mut c = self.conn_opt()?;
        let rows: Vec<(String, String)> = c.query("SHOW GLOBAL STATUS LIKE 'wsrep%'").ok()?;
        Some(rows.into_iter().collect())
    }

    /// One status value.
    pub fn state(&self, name: &str) -> Option<String> {
        self.status()?.remove(name)
    }

    /// Waits until `wsrep_local_state_comment` is Synced in a Primary component of `size`.
    pub fn wait_synced(&self, size: usize) {
        wait_for(&format!("{} Synced in a Primary component of {size}", self.name), Duration::from_secs(90), || {
            let s = self.status()?;
            (s.get("wsrep_local_state_comment")? == "Synced"
                && s.get("wsrep_cluster_status")? == "Primary"
                && s.get("wsrep_cluster_size")? == &size.to_string())
                .then_some(())
        });
    }

    /// Starts it (again), joining the cluster at `peers` (`gcomm://` alone bootstraps).
    pub(crate) fn launch(&mut self, cluster_address: &str) {
        self.start(&[format!("--wsrep-cluster-address={cluster_address}")]);
    }

    /// Starts it (again) without Galera (`wsrep_on=OFF`, no provider), as a node whose my.cnf lost
    /// its Galera settings: a standalone, writable server on the node's address.
    pub fn launch_without_galera(&mut self) {
        self.start(&["--wsrep-on=OFF".into(), "--wsrep-provider=none".into()]);
    }

    /// Starts the server with its arguments and `extra`, and waits until it answers.
    fn start(&mut self, extra: &[String]) {
        self.proc.kill();
        // In a chroot (`CDC_CHROOT`: the matrix's MariaDB 11.8) the rsync state transfer needs /proc:
        // mounted in a mount namespace of the server's own, which ends with it (the host never
        // sees the mount).
        let mut cmd = match (std::env::var("CDC_CHROOT"), &self.ns) {
            (_, Some(ns)) => crate::netlab::ns_command(ns, "mariadbd"),
            (Ok(root), None) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                    .arg(r#"mount -t proc proc "$0/proc" && exec chroot "$0" /usr/sbin/mariadbd "$@""#)
                    .arg(root);
                c
            }
            (Err(_), None) => Command::new("mariadbd"),
        };
        cmd.args(&self.args).args(extra);
        self.proc.child = Some(spawn_tied(cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null())));
        // A joiner answers once its state transfer is done: seconds alone, longer on a loaded CI
        // machine. A node that died or never answers fails with the end of its error log.
        let start = std::time::Instant::now();
        loop {
            if self.conn_opt().is_some() {
                return;
            }
            let exited = self.proc.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > Duration::from_secs(180) {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
                panic!(
                    "{} did not answer ({}) after {:?}; the end of {}:\n{}",
                    self.name,
                    exited.map_or("still running".to_string(), |s| s.to_string()),
                    start.elapsed(),
                    self.log.display(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A clean shutdown (SIGTERM, waited for): Galera forgets the node's identity, which a restart
    /// then makes anew (after a crash it keeps it: `gvwstate.dat`, pc.recovery).
    pub fn stop_cleanly(&mut self) {
        self.proc.signal(libc::SIGTERM);
        if let Some(mut child) = self.proc.child.take() {
            let _ = child.wait();
        }
    }

    /// `SHOW MASTER STATUS`: its binary log's file and position (with `--log-bin`).
    pub fn master_status(&self) -> (String, u64) {
        use mysql::prelude::Queryable;
        let mut c = self.conn_opt().unwrap_or_else(|| panic!("cannot connect to {}", self.name));
        let row: mysql::Row = c.query_first("SHOW MASTER STATUS").unwrap().unwrap_or_else(|| panic!("{}: no binary log", self.name));
        (row.get(0).unwrap(), row.get(1).unwrap())
    }

    /// SIGSTOP: frozen, its connections open, as a hung host.
    pub fn freeze(&self) {
        self.proc.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.proc.signal(libc::SIGCONT);
    }
}

/// A Galera cluster of Synced nodes.
pub struct GaleraLab {
    /// Where everything lives (owned by `mysql`).
    pub dir: TempDir,
    /// The nodes, in start order.
    pub nodes: Vec<GaleraNode>,
    /// A defaults file logging in as [`CHECKER`].
    pub checker_cnf: PathBuf,
}

impl GaleraLab {
    /// Bootstraps node 0, joins the others one by one (each by a full state transfer), and creates
    /// the checker users and a table.
    pub fn start(n: usize) -> GaleraLab {
        Self::start_with(n, &[])
    }

    /// [`GaleraLab::start`], every node with the server options `extra` too.
    pub fn start_with(n: usize, extra: &[&str]) -> GaleraLab {
        let dir = TempDir::new("galera");
        let port = free_port();
        let mut nodes: Vec<GaleraNode> = (0..n)
            .map(|i| {
                let (group, ist, sst) = (free_port(), free_port(), free_port());
                let ports = [format!("127.0.0.1:{group}"), format!("127.0.0.1:{ist}"), format!("127.0.0.1:{sst}")];
                let mut node = Self::node(&dir, &format!("g{i}"), &format!("127.0.0.{}", i + 2), port, None, ports);
                node.args.extend(extra.iter().map(|a| a.to_string()));
                node
            })
            .collect();
        Self::form(&mut nodes, "CREATE USER blind@'%' IDENTIFIED BY 'blind-pw'; GRANT SLAVE MONITOR, PROCESS ON *.* TO blind@'%';");
        let checker_cnf = dir.join("checker.cnf");
        crate::write_file(&checker_cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
        GaleraLab { dir, nodes, checker_cnf }
    }

    /// [`GaleraLab::start`], or `None` after printing `NOT RUN:` without root (the servers run as
    /// `mysql`, their files given to it); under CI (`CI=true`) that fails instead.
    pub fn start_or_skip(n: usize, scenario: &str) -> Option<GaleraLab> {
        Self::start_with_or_skip(n, &[], scenario)
    }

    /// [`GaleraLab::start_with`], or `None` as [`GaleraLab::start_or_skip`].
    pub fn start_with_or_skip(n: usize, extra: &[&str], scenario: &str) -> Option<GaleraLab> {
        if unsafe { libc::geteuid() } != 0 {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Galera {scenario}: needs root under CI");
            eprintln!("NOT RUN: Galera {scenario}: the nodes run as the mysql user, which needs root");
            return None;
        }
        Some(Self::start_with(n, extra))
    }

    /// Bootstraps the cluster on `nodes[0]`, joins the others one by one (each by a full state
    /// transfer), and creates the checker, the table `lab.t` (`k`, `node`) and the users `more`
    /// creates.
    pub(crate) fn form(nodes: &mut [GaleraNode], more: &str) {
        let cluster = Self::address_of(nodes);
        for (i, node) in nodes.iter_mut().enumerate() {
            node.launch(if i == 0 { "gcomm://" } else { &cluster });
            node.wait_synced(i + 1);
        }
        nodes[0].sql(&format!(
            "CREATE USER {u}@'%' IDENTIFIED BY '{p}'; GRANT SLAVE MONITOR, PROCESS ON *.* TO {u}@'%';
             GRANT SELECT ON mysql.wsrep_cluster_members TO {u}@'%';
             CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY AUTO_INCREMENT, k VARCHAR(40), node VARCHAR(20)); {more}",
            u = CHECKER.0,
            p = CHECKER.1
        ));
    }

    pub(crate) fn address_of(nodes: &[GaleraNode]) -> String {
        let peers: Vec<&str> = nodes.iter().map(|n| n.group_addr.as_str()).collect();
        format!("gcomm://{}", peers.join(","))
    }

    /// A node called `name` on `host:port`, in namespace `ns` when given (listening on every
    /// address of the host, so that a VIP reaches it too); `[group, ist, sst]` are its Galera
    /// addresses.
    pub(crate) fn node(dir: &TempDir, name: &str, host: &str, port: u16, ns: Option<&str>, [group, ist, sst]: [String; 3]) -> GaleraNode {
        let datadir = dir.join(name);
        let st = Command::new("cp").arg("-a").arg(template()).arg(&datadir).status().unwrap();
        assert!(st.success());
        give_to_mysql(&dir.0);
        let file = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
        let args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--port={port}"),
            format!("--bind-address={}", if ns.is_some() { "0.0.0.0" } else { host }),
            format!("--socket={}", file("sock")),
            format!("--pid-file={}", file("pid")),
            format!("--log-error={}", file("err")),
            "--user=mysql".into(),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=16M".into(),
            "--innodb-log-file-size=8M".into(),
            "--performance-schema=OFF".into(),
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--binlog-format=ROW".into(),
            "--innodb-autoinc-lock-mode=2".into(),
            "--max-connections=60".into(),
            "--wsrep-on=ON".into(),
            format!("--wsrep-provider={PROVIDER}"),
            format!("--wsrep-node-address={group}"),
            format!("--wsrep-node-incoming-address={host}:{port}"),
            format!(
                "--wsrep-provider-options=gmcast.listen_addr=tcp://{group};ist.recv_addr={ist};\
                 evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.keepalive_period=PT0.5S;evs.install_timeout=PT4S"
            ),
            format!("--wsrep-sst-receive-address={sst}"),
            "--wsrep-sst-method=rsync".into(),
            "--wsrep-cluster-name=cdc-lab".into(),
            format!("--wsrep-node-name={name}"),
        ];
        GaleraNode {
            name: name.to_string(),
            host: host.to_string(),
            port,
            group_addr: group,
            ns: ns.map(String::from),
            proc: Proc { child: None, name: name.to_string() },
            socket: PathBuf::from(file("sock")),
            log: PathBuf::from(file("err")),
            args,
        }
    }

    /// `gcomm://` with every node's group port: where a restarted node rejoins.
    pub fn cluster_address(&self) -> String {
        Self::address_of(&self.nodes)
    }

    /// Restarts node `i` (after a kill or a clean stop): it rejoins, catching up by incremental
    /// state transfer from a member's write-set cache; waits until it is Synced in a component of
    /// `size`.
    pub fn rejoin(&mut self, i: usize, size: usize) {
        let address = self.cluster_address();
        self.nodes[i].launch(&address);
        self.nodes[i].wait_synced(size);
    }

    /// An inventory with this cluster as the `galera` group `galera` (written in the lab's directory).
    pub fn inventory(&self, extra: &str) -> PathBuf {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("\"{}\"", n.host)).collect();
        let text = format!(
            r#"[{{"kind":"galera","name":"galera","port":{},"nodes":[{}],"defaults_file":"{}"{extra}}}]"#,
            self.nodes[0].port,
            nodes.join(","),
            self.checker_cnf.display()
        );
        let path = self.dir.join("inventory.json");
        crate::write_file(&path, &text, 0o644);
        path
    }

    /// `--defaults-file` for the checker login.
    pub fn checker_args(&self) -> Vec<String> {
        vec!["--defaults-file".into(), self.checker_cnf.display().to_string()]
    }
}

impl crate::pools::Observable for GaleraLab {
    const CHECKS: (&'static str, &'static str) = (crate::MYSQL_MASTER, crate::MYSQL_SLAVE);
    fn targets(&self) -> Vec<crate::pools::CheckTarget> {
        self.nodes
            .iter()
            .map(|n| crate::pools::CheckTarget {
                addr: n.addr(),
                up: n.proc.running(),
                args: n.target_args().into_iter().chain(self.checker_args()).collect(),
            })
            .collect()
    }
}

/// The Galera lab's VIP.
pub const GALERA_VIP: &str = "198.18.0.102";

/// A three-node Galera cluster on hosts g1, g2, g3 in network namespaces (port 3306 on each, the
/// group on 4567), keepalived floating [`GALERA_VIP`] to the node whose `check-mysql-master`
/// passes (the generated configuration, the checks as an unprivileged user), and two client hosts
/// c4 and c5.
pub struct GaleraVipLab {
    /// keepalived on the three nodes (stopped first).
    pub keepalived: Vec<Proc>,
    /// The nodes (g1 bootstrapped the cluster: the first writer).
    pub nodes: Vec<GaleraNode>,
    /// The data directories.
    pub dir: TempDir,
    /// The inventory of its group, as an operator would write it.
    pub inventory: String,
    /// The hosts (dropped last).
    pub net: crate::netlab::NetLab,
}

/// The application's connection through `target` (the VIP, a load balancer), and the node that
/// took it (`@@wsrep_node_name`).
fn app_connection(target: &(String, u16)) -> Option<(mysql::Conn, String)> {
    use mysql::prelude::Queryable;
    let opts = mysql::OptsBuilder::new()
        .user(Some("app"))
        .pass(Some("app-pw"))
        .ip_or_hostname(Some(target.0.clone()))
        .tcp_port(target.1)
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_millis(300)))
        .read_timeout(Some(Duration::from_millis(1500)))
        .write_timeout(Some(Duration::from_millis(1500)));
    let mut c = mysql::Conn::new(opts).ok()?;
    let node: Option<String> = c.query_first("SELECT @@wsrep_node_name").ok()?;
    Some((c, node?))
}

/// Whether the application reaches a Galera node through `target` (HAProxy's readiness probe).
pub fn app_reaches(target: (String, u16)) -> Option<()> {
    app_connection(&target).map(|_| ())
}

impl GaleraVipLab {
    /// Forms the cluster, starts keepalived and waits until the VIP is on g1.
    pub fn start() -> Result<GaleraVipLab, String> {
        use crate::keepalived::{keepalived_complaints, keepalived_on, wait_for_first_vip};
        use crate::vip_lab::{chown_to, install_checks, SCRIPT_USER};
        let net = crate::netlab::NetLab::create(&[("g1", 41), ("g2", 42), ("g3", 43), ("c4", 44), ("c5", 45)])?;
        let dir = TempDir::new("galera-vip");
        let hosts: Vec<crate::netlab::Host> = ["g1", "g2", "g3"].iter().map(|h| net.host(h).clone()).collect();
        let mut nodes: Vec<GaleraNode> = hosts
            .iter()
            .map(|h| {
                let a = &h.addr;
                GaleraLab::node(&dir, &h.name, a, 3306, Some(&h.ns), [format!("{a}:4567"), format!("{a}:4568"), format!("{a}:4444")])
            })
            .collect();
        GaleraLab::form(&mut nodes, "CREATE USER app@'%' IDENTIFIED BY 'app-pw'; GRANT INSERT, SELECT ON lab.* TO app@'%';");
        install_checks(&net, &[crate::MYSQL_MASTER, crate::MYSQL_SLAVE]);
        let secrets = net.dir.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let cnf = secrets.join("galera-check.cnf");
        std::fs::write(&cnf, format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1)).unwrap();
        chown_to(&cnf, SCRIPT_USER, 0o400);
        let inventory = crate::vip_lab::mysql_vrrp_inventory("galera", "galera", &hosts, &cnf, GALERA_VIP, 54);
        let keepalived = keepalived_on(&net, &hosts, &inventory);
        let lab = GaleraVipLab { keepalived, nodes, dir, inventory, net };
        wait_for_first_vip(&lab.net, GALERA_VIP, "g1");
        let complaints = keepalived_complaints(&lab.net);
        assert!(complaints.is_empty(), "keepalived did not take the generated configuration as written:\n{}", complaints.join("\n"));
        Ok(lab)
    }

    /// A client on host `client` inserting a row through `target` (the VIP, a load balancer) every
    /// 10 ms, each acknowledged write attributed to the node that committed it.
    pub fn writer(&self, client: &str, prefix: &str, epoch: std::time::Instant, target: (String, u16)) -> crate::writer::Writer {
        let write = |c: &mut mysql::Conn, key: &str| {
            use mysql::prelude::Queryable;
            c.exec_drop("INSERT INTO lab.t (k, node) VALUES (?, @@wsrep_node_name)", (key,)).is_ok()
        };
        let ns = self.net.host(client).ns.clone();
        crate::writer::Writer::start_with(ns, prefix.to_string(), epoch, move || app_connection(&target), write)
    }

    /// The keys node `i` has (root, through its socket).
    pub fn keys(&self, i: usize) -> std::collections::HashSet<String> {
        use mysql::prelude::Queryable;
        let mut c = self.nodes[i].conn_opt().expect("root on the node");
        c.query::<String, _>("SELECT k FROM lab.t").unwrap_or_default().into_iter().collect()
    }
}
