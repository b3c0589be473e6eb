//! Oracle MySQL of another Debian release (sid's 9.x), run in its own chroot (built and cached by
//! `scripts/chroot.sh sid-mysql sid mysql-server`, which `make deps` runs as root). Servers share
//! this machine's network: each node binds its own loopback address (127.0.0.x) with the same port,
//! replicas connect from their own address (`SOURCE_BIND`), GTID replication with
//! `SOURCE_AUTO_POSITION=1`, and the monitor logs in with `caching_sha2_password` (the default).
//! No mount is needed: the chroot has its device nodes and the servers run without /proc. Every
//! data directory lives under the chroot's /tmp and is removed with the lab.

use crate::{free_port, spawn_tied, wait_for, Proc};
use crate::{MYSQL_MASTER, MYSQL_SLAVE};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The chroot's name under `.cache/chroots/`.
pub const CHROOT: &str = "sid-mysql";

/// The monitor the checks log in as (`caching_sha2_password`, minimal privileges plus
/// `REPLICATION SLAVE` for `SHOW REPLICAS` and the workers' errors table).
pub const CHECKER: (&str, &str) = ("checker", "checker-pw");

/// The replication user.
const REPL: (&str, &str) = ("repl", "repl-pw");

/// The chroot's root directory when it has been built, or why not.
pub fn chroot_root() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(".cache/chroots").join(CHROOT);
    if !root.join(".cdc-stamp").is_file() {
        return Err(format!("{} is not built (run `make deps` as root)", root.display()));
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err("starting a server in a chroot needs root".into());
    }
    Ok(root)
}

/// The chroot for a test, or `None` after printing `NOT RUN:` (outside CI); under CI (`CI=true`)
/// a missing chroot fails the test, as a missing server does.
pub fn chroot_or_skip(scenario: &str) -> Option<PathBuf> {
    match chroot_root() {
        Ok(root) => Some(root),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("NOT RUN: MySQL 9 {scenario}: {why}");
            None
        }
        Err(why) => panic!("MySQL 9 {scenario} cannot run under CI: {why}"),
    }
}

/// A command run inside the chroot.
fn in_chroot(root: &Path, program: &str) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(root).arg(program);
    cmd
}

/// A data directory made once per test process by `mysqld --initialize-insecure` (about 3 s), then
/// copied for every node: they share its RSA key pair and auto-generated certificates.
fn template(root: &Path) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        sweep(root);
        let inside = format!("/tmp/cdc-mysql-template-{}", std::process::id());
        let _ = std::fs::remove_dir_all(root.join(inside.trim_start_matches('/')));
        let out = in_chroot(root, "/usr/sbin/mysqld")
            .args(["--no-defaults", "--initialize-insecure", "--user=root"])
            .arg(format!("--datadir={inside}"))
            .output()
            .expect("chroot");
        assert!(out.status.success(), "mysqld --initialize-insecure: {}", String::from_utf8_lossy(&out.stderr));
        inside
    })
}

/// Removes the directories that test processes no longer running left in the chroot's /tmp.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root.join("tmp")) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid =
            name.strip_prefix("cdc-mysql-template-").or_else(|| name.strip_prefix("cdc-mysql-lab-").and_then(|r| r.split('-').next()));
        if let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) {
            if unsafe { libc::kill(pid, 0) } != 0 {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// One `mysqld` in the chroot.
pub struct MysqlNode {
    /// The loopback address it binds.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The process.
    pub proc: Proc,
    root: PathBuf,
    /// Its directory, as the chroot sees it.
    dir: String,
    /// The network namespace it runs in (a namespace lab host), if any.
    ns: Option<String>,
    args: Vec<String>,
}

impl MysqlNode {
    /// Starts a node on `host:port` from a copy of the template; `extra` are more server options.
    fn start(root: &Path, lab_dir: &str, name: &str, server_id: u32, host: &str, port: u16, extra: &[&str]) -> MysqlNode {
        Self::start_in(root, lab_dir, name, server_id, host, port, None, extra)
    }

    /// Like `start`, inside the network namespace `ns` when given (listening on every address of
    /// the host, so that a VIP reaches it too).
    #[allow(clippy::too_many_arguments)]
    fn start_in(
        root: &Path,
        lab_dir: &str,
        name: &str,
        server_id: u32,
        host: &str,
        port: u16,
        ns: Option<&str>,
        extra: &[&str],
    ) -> MysqlNode {
        let dir = format!("{lab_dir}/{name}");
        let outside = root.join(dir.trim_start_matches('/'));
        std::fs::create_dir_all(&outside).unwrap();
        let st = Command::new("cp").arg("-a").arg(root.join(template(root).trim_start_matches('/'))).arg(outside.join("data")).status();
        assert!(st.unwrap().success());
        // Each node its own server UUID (auto.cnf is made again at start): replication refuses equal ones.
        std::fs::remove_file(outside.join("data/auto.cnf")).unwrap();
        let mut args: Vec<String> = [
            "--no-defaults",
            "--user=root",
            "--mysqlx=OFF",
            "--skip-name-resolve",
            "--gtid-mode=ON",
            "--enforce-gtid-consistency=ON",
            "--log-bin=binlog",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
            "--sync-binlog=0",
            "--innodb-doublewrite=OFF",
            "--max-connections=60",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            format!("--datadir={dir}/data"),
            format!("--port={port}"),
            format!("--bind-address={}", if ns.is_some() { "0.0.0.0" } else { host }),
            format!("--socket={dir}/mysqld.sock"),
            format!("--pid-file={dir}/mysqld.pid"),
            format!("--log-error={dir}/error.log"),
            format!("--server-id={server_id}"),
            format!("--report-host={host}"),
            format!("--report-port={port}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut node = MysqlNode {
            host: host.into(),
            port,
            proc: Proc { child: None, name: format!("mysqld {name}") },
            root: root.into(),
            dir,
            ns: ns.map(String::from),
            args,
        };
        node.restart();
        node
    }

    /// (Re)starts it with its arguments (plus `extra` from now on) and waits until root logs in.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.restart();
    }

    /// Restarts it with the Group Replication plugin disabled (`--group-replication=OFF`), as a
    /// member whose my.cnf lost the plugin: a standalone server. Its arguments stay as they were for
    /// the next restart.
    pub fn restart_without_group_replication(&mut self) {
        let args = self.args.clone();
        self.args.push("--group-replication=OFF".into());
        self.restart();
        self.args = args;
    }

    /// (Re)starts it and waits until root logs in over its socket.
    pub fn restart(&mut self) {
        self.proc.kill();
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = crate::netlab::ns_command(ns, "chroot");
                c.arg(&self.root).arg("/usr/sbin/mysqld");
                c
            }
            None => in_chroot(&self.root, "/usr/sbin/mysqld"),
        };
        cmd.args(&self.args).stdout(Stdio::null()).stderr(Stdio::null());
        self.proc.child = Some(spawn_tied(&mut cmd));
        let log = self.outside("error.log");
        wait_for(&format!("mysqld on {} (log: {})", self.addr(), log.display()), Duration::from_secs(60), || self.try_sql("SELECT 1").ok());
    }

    /// A path of its directory, as seen from outside the chroot.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.root.join(self.dir.trim_start_matches('/')).join(name)
    }

    /// Its Unix socket, from outside the chroot (what `--socket` of a check takes).
    pub fn socket(&self) -> PathBuf {
        self.outside("mysqld.sock")
    }

    /// A file of its data directory (`public_key.pem`, `ca.pem`), from outside the chroot.
    pub fn data_file(&self, name: &str) -> PathBuf {
        self.outside("data").join(name)
    }

    /// `@@version`.
    pub fn version(&self) -> String {
        self.row("SELECT @@version AS v").and_then(|r| r.get("v").cloned().flatten()).unwrap_or_default()
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Runs `sql` as root over the socket; the output (tab-separated, with a header), or the error.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = in_chroot(&self.root, "/usr/bin/mysql")
            .args(["--no-defaults", "-uroot", "--batch", "--connect-timeout=5"])
            .arg(format!("--socket={}/mysqld.sock", self.dir))
            .arg("-e")
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `sql` as root; panics with the server's words when it fails.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql} on {}: {e}", self.addr()))
    }

    /// The first row of `sql`'s answer, column name to value (`NULL` as `None`).
    pub fn row(&self, sql: &str) -> Option<HashMap<String, Option<String>>> {
        let text = self.try_sql(sql).ok()?;
        let mut lines = text.lines();
        let names: Vec<&str> = lines.next()?.split('\t').collect();
        let values: Vec<&str> = lines.next()?.split('\t').collect();
        Some(names.iter().zip(values).map(|(n, v)| (n.to_string(), (v != "NULL").then(|| v.to_string()))).collect())
    }

    /// Makes it a replica of `source` (GTID auto-position, connecting from its own address) and
    /// waits until both threads run and it has caught up.
    pub fn replicate_from(&self, source: &MysqlNode) {
        self.sql(&format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='{}', SOURCE_PORT={}, SOURCE_USER='{}', SOURCE_PASSWORD='{}', \
             SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_BIND='{}', SOURCE_CONNECT_RETRY=1; START REPLICA",
            source.host, source.port, REPL.0, REPL.1, self.host
        ));
        self.wait_caught_up(source);
    }

    /// Waits until its threads run and it has applied everything `source` has binlogged.
    pub fn wait_caught_up(&self, source: &MysqlNode) {
        wait_for(&format!("{} caught up with {}", self.addr(), source.addr()), Duration::from_secs(30), || {
            let executed = source.row("SELECT @@global.gtid_executed AS g")?.get("g").cloned().flatten().unwrap_or_default();
            let r = self.row("SHOW REPLICA STATUS")?;
            let yes = |k: &str| r.get(k).cloned().flatten().as_deref() == Some("Yes");
            let caught = self.row(&format!("SELECT GTID_SUBSET('{executed}', @@global.gtid_executed) AS s"))?;
            (yes("Replica_IO_Running") && yes("Replica_SQL_Running") && caught.get("s").cloned().flatten().as_deref() == Some("1"))
                .then_some(())
        });
    }

    /// Waits until a field of `SHOW REPLICA STATUS` satisfies `ok`.
    pub fn wait_status(&self, field: &str, ok: impl Fn(Option<&str>) -> bool) {
        wait_for(&format!("{field} on {}", self.addr()), Duration::from_secs(30), || {
            let r = self.row("SHOW REPLICA STATUS")?;
            ok(r.get(field).cloned().flatten().as_deref()).then_some(())
        });
    }

    /// Number of dump threads on this server.
    pub fn dump_threads(&self) -> usize {
        self.row("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
            .and_then(|r| r.get("n").cloned().flatten())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// A source and replicas, each on its own loopback address with the same port.
pub struct MysqlLab {
    /// The node started as source.
    pub source: MysqlNode,
    /// The nodes started as replicas (`read_only`, `super_read_only`).
    pub replicas: Vec<MysqlNode>,
    /// A defaults file logging in as [`CHECKER`] (outside the chroot).
    pub checker_cnf: PathBuf,
    /// The lab's directory in the chroot (removed when dropped, after the servers).
    _dir: LabDir,
}

/// The lab's directory under the chroot's /tmp, removed when dropped.
struct LabDir(PathBuf);

impl Drop for LabDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl MysqlLab {
    /// A source on 127.0.0.2 with `replicas` replicas on 127.0.0.3, 127.0.0.4, ..., all on one free
    /// port, the users created on the source (they replicate).
    pub fn start(root: &Path, replicas: usize) -> MysqlLab {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inside = format!("/tmp/cdc-mysql-lab-{}-{n}", std::process::id());
        let dir = LabDir(root.join(inside.trim_start_matches('/')));
        std::fs::create_dir_all(&dir.0).unwrap();
        let port = free_port();
        let source = MysqlNode::start(root, &inside, "source", 1, "127.0.0.2", port, &[]);
        source.sql(&format!(
            "CREATE USER {r}@'%' IDENTIFIED BY '{rp}'; GRANT REPLICATION SLAVE ON *.* TO {r}@'%';
             CREATE USER {c}@'%' IDENTIFIED BY '{cp}'; GRANT REPLICATION CLIENT, PROCESS, REPLICATION SLAVE ON *.* TO {c}@'%';
             GRANT SELECT ON performance_schema.replication_applier_status_by_worker TO {c}@'%';
             GRANT SELECT ON performance_schema.replication_connection_status TO {c}@'%';
             GRANT SELECT ON performance_schema.replication_connection_configuration TO {c}@'%';
             GRANT SELECT ON percona.* TO {c}@'%';
             CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20));",
            r = REPL.0,
            rp = REPL.1,
            c = CHECKER.0,
            cp = CHECKER.1
        ));
        let replicas: Vec<MysqlNode> = (0..replicas)
            .map(|i| {
                let host = format!("127.0.0.{}", 3 + i);
                let node = MysqlNode::start(
                    root,
                    &inside,
                    &format!("replica{i}"),
                    2 + i as u32,
                    &host,
                    port,
                    &["--read-only", "--super-read-only"],
                );
                node.replicate_from(&source);
                node
            })
            .collect();
        let checker_cnf = dir.0.join("checker.cnf");
        crate::write_file(&checker_cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
        let lab = MysqlLab { source, replicas, checker_cnf, _dir: dir };
        wait_for("dump threads on the source", Duration::from_secs(20), || (lab.source.dump_threads() == lab.replicas.len()).then_some(()));
        lab
    }

    /// `--defaults-file` for the checker login.
    pub fn checker_args(&self) -> Vec<String> {
        vec!["--defaults-file".into(), self.checker_cnf.display().to_string()]
    }

    /// Every node: source first.
    pub fn nodes(&self) -> Vec<&MysqlNode> {
        std::iter::once(&self.source).chain(self.replicas.iter()).collect()
    }

    /// The arguments that point a check at `node`: its address, the checker's defaults file, and
    /// the servers' pinned public key (the lab's nodes share one key pair).
    pub fn check_args(&self, node: &MysqlNode) -> Vec<String> {
        let mut a = vec!["--host".to_string(), node.host.clone(), "--port".into(), node.port.to_string()];
        a.extend(self.checker_args());
        a.extend(["--server-public-key".to_string(), self.source.data_file("public_key.pem").display().to_string()]);
        a
    }
}

impl crate::pools::Observable for MysqlLab {
    const CHECKS: (&'static str, &'static str) = (MYSQL_MASTER, MYSQL_SLAVE);
    fn targets(&self) -> Vec<crate::pools::CheckTarget> {
        self.nodes().iter().map(|n| crate::pools::CheckTarget { addr: n.addr(), up: n.proc.running(), args: self.check_args(n) }).collect()
    }
}

/// Where one member of a lab group runs.
pub(crate) struct MemberSpec {
    /// Its client address.
    pub host: String,
    /// Its network namespace, if any.
    pub ns: Option<String>,
    /// Its group communication address.
    pub group_addr: String,
}

/// The group's name in the lab.
const GROUP_NAME: &str = "cdc00000-0000-4000-8000-00000000c0de";

/// The monitor of a Group Replication member, with exactly the grants the README documents.
pub const GROUP_CHECKER: (&str, &str) = ("gchecker", "gchecker-pw");

/// A Group Replication group in the MySQL 9 chroot: members on 127.0.0.2, 127.0.0.3, ... with one
/// client port, their group ports on 127.0.0.1 (Group Replication refuses a local address not
/// configured on an interface), single-primary, the first member bootstrapping it.
pub struct GroupLab {
    /// The members, in start order (the first is the first primary).
    pub members: Vec<MysqlNode>,
    /// A defaults file logging in as [`GROUP_CHECKER`] (outside the chroot).
    pub checker_cnf: PathBuf,
    _dir: LabDir,
}

impl GroupLab {
    /// Starts `n` members and waits until all are ONLINE.
    pub fn start(root: &Path, n: usize) -> GroupLab {
        let port = free_port();
        let members: Vec<MemberSpec> = (0..n)
            .map(|i| MemberSpec { host: format!("127.0.0.{}", 2 + i), ns: None, group_addr: format!("127.0.0.1:{}", free_port()) })
            .collect();
        Self::form(root, &members, port, "127.0.0.0/8")
    }

    /// Starts the `members` on `port` (the first bootstraps the group; `allowlist` is who may join)
    /// and waits until all are ONLINE.
    pub(crate) fn form(root: &Path, specs: &[MemberSpec], port: u16, allowlist: &str) -> GroupLab {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inside = format!("/tmp/cdc-mysql-lab-{}-g{k}", std::process::id());
        let dir = LabDir(root.join(inside.trim_start_matches('/')));
        std::fs::create_dir_all(&dir.0).unwrap();
        let n = specs.len();
        let seeds: Vec<&str> = specs.iter().map(|m| m.group_addr.as_str()).collect();
        let members: Vec<MysqlNode> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let options = [
                    "--plugin-load-add=group_replication.so".to_string(),
                    format!("--group-replication-group-name={GROUP_NAME}"),
                    "--group-replication-start-on-boot=OFF".into(),
                    format!("--group-replication-local-address={}", spec.group_addr),
                    format!("--group-replication-group-seeds={}", seeds.join(",")),
                    format!("--group-replication-ip-allowlist={allowlist}"),
                    "--group-replication-recovery-get-public-key=ON".into(),
                    "--disabled-storage-engines=MyISAM,BLACKHOLE,ARCHIVE,MEMORY".into(),
                ];
                let options: Vec<&str> = options.iter().map(String::as_str).collect();
                let node =
                    MysqlNode::start_in(root, &inside, &format!("member{i}"), 1 + i as u32, &spec.host, port, spec.ns.as_deref(), &options);
                node.sql(&format!(
                    "SET SQL_LOG_BIN=0; CREATE USER {r}@'%' IDENTIFIED BY '{rp}';
                     GRANT REPLICATION SLAVE, BACKUP_ADMIN, CONNECTION_ADMIN, GROUP_REPLICATION_STREAM ON *.* TO {r}@'%'; SET SQL_LOG_BIN=1;",
                    r = REPL.0,
                    rp = REPL.1
                ));
                node
            })
            .collect();
        let start = format!("START GROUP_REPLICATION USER='{}', PASSWORD='{}'", REPL.0, REPL.1);
        members[0]
            .sql(&format!("SET GLOBAL group_replication_bootstrap_group=ON; {start}; SET GLOBAL group_replication_bootstrap_group=OFF;"));
        members[0].sql(&format!(
            "CREATE USER {c}@'%' IDENTIFIED BY '{cp}'; GRANT REPLICATION CLIENT, PROCESS ON *.* TO {c}@'%';
             GRANT SELECT ON performance_schema.replication_group_members TO {c}@'%';
             GRANT SELECT ON performance_schema.replication_group_member_stats TO {c}@'%';
             CREATE USER app@'%' IDENTIFIED BY 'app-pw'; 
             CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY AUTO_INCREMENT, k VARCHAR(40), node VARCHAR(20));
             GRANT INSERT, SELECT ON lab.* TO app@'%';",
            c = GROUP_CHECKER.0,
            cp = GROUP_CHECKER.1
        ));
        for m in &members[1..] {
            m.sql(&start);
        }
        let checker_cnf = dir.0.join("checker.cnf");
        crate::write_file(&checker_cnf, &format!("[client]\nuser={}\npassword={}\n", GROUP_CHECKER.0, GROUP_CHECKER.1), 0o600);
        let lab = GroupLab { members, checker_cnf, _dir: dir };
        lab.wait_online(n);
        lab
    }

    /// The group as `member` sees it: (host, state, role) per member.
    pub fn view(&self, member: usize) -> Vec<(String, String, String)> {
        let text = self.members[member]
            .try_sql("SELECT MEMBER_HOST, MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members")
            .unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), f.get(1)?.to_string(), f.get(2)?.to_string()))
            })
            .collect()
    }

    /// Waits until the first member's view has `n` members ONLINE.
    pub fn wait_online(&self, n: usize) {
        wait_for(&format!("{n} members ONLINE"), Duration::from_secs(90), || {
            (self.view(0).iter().filter(|(_, s, _)| s == "ONLINE").count() == n).then_some(())
        });
    }

    /// An inventory with this group as the `group-replication` group `group` (in the lab's directory).
    pub fn inventory(&self) -> PathBuf {
        let nodes: Vec<String> = self.members.iter().map(|m| format!("\"{}\"", m.host)).collect();
        let text = format!(
            r#"[{{"kind":"group-replication","name":"group","port":{},"nodes":[{}],"defaults_file":"{}","server_public_key":"{}"}}]"#,
            self.members[0].port,
            nodes.join(","),
            self.checker_cnf.display(),
            self.members[0].data_file("public_key.pem").display()
        );
        let path = self._dir.0.join("inventory.json");
        crate::write_file(&path, &text, 0o644);
        path
    }

    /// The arguments that point a check at `member`, with the group checker's login (the lab's
    /// members share one key pair: pinned).
    pub fn check_args(&self, member: &MysqlNode) -> Vec<String> {
        vec![
            "--host".into(),
            member.host.clone(),
            "--port".into(),
            member.port.to_string(),
            "--defaults-file".into(),
            self.checker_cnf.display().to_string(),
            "--server-public-key".into(),
            self.members[0].data_file("public_key.pem").display().to_string(),
        ]
    }
}

impl crate::pools::Observable for GroupLab {
    const CHECKS: (&'static str, &'static str) = (MYSQL_MASTER, MYSQL_SLAVE);
    fn targets(&self) -> Vec<crate::pools::CheckTarget> {
        self.members.iter().map(|n| crate::pools::CheckTarget { addr: n.addr(), up: n.proc.running(), args: self.check_args(n) }).collect()
    }
}

/// The Group Replication lab's VIP.
pub const GROUP_VIP: &str = "198.18.0.103";

/// A Group Replication group on hosts p1, p2, p3 in network namespaces (MySQL 9.7 from the sid
/// chroot, port 3306, the group on 33061), keepalived floating [`GROUP_VIP`] to the member whose
/// `check-mysql-master` passes (the generated configuration, the checks as an unprivileged user),
/// and two client hosts c4 and c5.
pub struct GroupVipLab {
    /// keepalived on the three members (stopped first).
    pub keepalived: Vec<Proc>,
    /// The group (p1 bootstrapped it: the first primary).
    pub group: GroupLab,
    root: PathBuf,
    /// The hosts (dropped last).
    pub net: crate::netlab::NetLab,
}

impl GroupVipLab {
    /// Forms the group, starts keepalived and waits until the VIP is on p1.
    pub fn start(root: &Path) -> Result<GroupVipLab, String> {
        use crate::keepalived::{keepalived_complaints, keepalived_on, wait_for_first_vip};
        use crate::vip_lab::{chown_to, install_checks, SCRIPT_USER};
        let net = crate::netlab::NetLab::create(&[("p1", 61), ("p2", 62), ("p3", 63), ("c4", 64), ("c5", 65)])?;
        let hosts: Vec<crate::netlab::Host> = ["p1", "p2", "p3"].iter().map(|h| net.host(h).clone()).collect();
        let specs: Vec<MemberSpec> = hosts
            .iter()
            .map(|h| MemberSpec { host: h.addr.clone(), ns: Some(h.ns.clone()), group_addr: format!("{}:33061", h.addr) })
            .collect();
        let group = GroupLab::form(root, &specs, 3306, "198.18.0.0/24");
        install_checks(&net, &[MYSQL_MASTER, MYSQL_SLAVE]);
        let secrets = net.dir.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let key = secrets.join("group-public-key.pem");
        std::fs::copy(group.members[0].data_file("public_key.pem"), &key).unwrap();
        chown_to(&key, SCRIPT_USER, 0o444);
        let cnf = secrets.join("group-check.cnf");
        std::fs::write(
            &cnf,
            format!("[client]\nuser={}\npassword={}\nserver-public-key-path={}\n", GROUP_CHECKER.0, GROUP_CHECKER.1, key.display()),
        )
        .unwrap();
        chown_to(&cnf, SCRIPT_USER, 0o400);
        let inventory = crate::vip_lab::mysql_vrrp_inventory("group-replication", "group", &hosts, &cnf, GROUP_VIP, 55);
        let keepalived = keepalived_on(&net, &hosts, &inventory);
        let lab = GroupVipLab { keepalived, group, root: root.into(), net };
        wait_for_first_vip(&lab.net, GROUP_VIP, "p1");
        let complaints = keepalived_complaints(&lab.net);
        assert!(complaints.is_empty(), "keepalived did not take the generated configuration as written:\n{}", complaints.join("\n"));
        Ok(lab)
    }

    /// One client write from host `client` through the VIP (the mysql client of the chroot, a new
    /// connection, at most 1.5 s): the host whose member committed it, or `None` when it was not
    /// acknowledged.
    pub fn write_once(&self, client: &str, key: &str) -> Option<String> {
        let mut cmd = crate::netlab::ns_command(&self.net.host(client).ns, "chroot");
        cmd.arg(&self.root).args([
            "/usr/bin/mysql",
            "--no-defaults",
            "-h",
            GROUP_VIP,
            "-P3306",
            "-uapp",
            "-papp-pw",
            "--get-server-public-key",
            "--connect-timeout=1",
            "-N",
            "-e",
        ]);
        cmd.arg(format!("INSERT INTO lab.t (k, node) VALUES ('{key}', @@report_host); SELECT @@report_host"));
        let r = crate::run_command(&mut cmd, Duration::from_millis(1500));
        let addr = r.stdout.lines().last().unwrap_or_default().trim().to_string();
        (r.code == Some(0)).then(|| self.net.hosts.iter().find(|h| h.addr == addr).map(|h| h.name.clone()).unwrap_or(addr))
    }

    /// The keys member `i` has.
    pub fn keys(&self, i: usize) -> std::collections::HashSet<String> {
        self.group.members[i].try_sql("SELECT k FROM lab.t").unwrap_or_default().lines().skip(1).map(str::to_string).collect()
    }
}
