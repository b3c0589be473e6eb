//! Real MariaDB servers for tests: `mariadb-install-db` into temporary directories, `mariadbd` on
//! free loopback ports with binary logs, GTID replication configured with a replication user.

use crate::{free_port, spawn_tied, wait_for, Proc, TempDir};
use crate::{MYSQL_MASTER, MYSQL_SLAVE};
use mysql::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Password of the replication user `repl`.
pub const REPL_PASSWORD: &str = "repl-pw";
/// The check user with the privileges the README recommends, and its password.
pub const CHECKER: (&str, &str) = ("checker", "checker-pw");
/// A least-privilege monitor (SLAVE MONITOR, PROCESS: no REPLICATION MASTER ADMIN).
pub const MONITOR: (&str, &str) = ("monitor", "monitor-pw");

/// An initialised data directory copied for every server (one `mariadb-install-db` per test process).
pub(crate) fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // Remove templates left by test processes that no longer run.
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("cdc-mariadb-template-").and_then(|p| p.parse::<i32>().ok()) {
                    if unsafe { libc::kill(pid, 0) } != 0 {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = std::env::temp_dir().join(format!("cdc-mariadb-template-{}", std::process::id()));
        let install = || {
            let _ = std::fs::remove_dir_all(&dir);
            Command::new("mariadb-install-db")
                // --force: a minimal chroot (MariaDB 11.8 in the matrix) has no /etc/hosts entry for its name.
                .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db", "--force"])
                .arg(format!("--datadir={}", dir.display()))
                .arg("--innodb-log-file-size=8M")
                .output()
                .expect("mariadb-install-db (run `make deps`)")
        };
        // Its bootstrap server has been seen to crash (signal 11) on a loaded machine: once more.
        let mut out = install();
        if !out.status.success() {
            eprintln!("mariadb-install-db failed, once more: {}", String::from_utf8_lossy(&out.stderr));
            out = install();
        }
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

/// A root connection to a lab server: over its Unix socket when given (a socket is a file: it
/// reaches a server in any network namespace), else over TCP to `host:port`.
pub(crate) fn root_conn(host: &str, port: u16, socket: Option<&Path>) -> Option<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .user(Some("root"))
        .tcp_connect_timeout(Some(Duration::from_secs(2)))
        .read_timeout(Some(Duration::from_secs(10)));
    let opts = match socket {
        Some(path) => opts.socket(Some(path.display().to_string())),
        None => opts.ip_or_hostname(Some(host.to_string())).tcp_port(port).prefer_socket(false),
    };
    mysql::Conn::new(opts).ok()
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

/// One `mariadbd`.
pub struct MariaNode {
    /// The loopback address it binds.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its server id.
    pub server_id: u32,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// The process.
    pub proc: Proc,
    /// The network namespace it runs in (a namespace lab host), if any: the harness then talks to
    /// it through its Unix socket.
    pub ns: Option<String>,
    args: Vec<String>,
}

impl MariaNode {
    /// Starts a server on 127.0.0.1 and a free port; `{port}` in `extra` is its port.
    pub fn start(dir: &TempDir, name: &str, server_id: u32, extra: &[&str]) -> MariaNode {
        Self::start_on(dir, name, server_id, "127.0.0.1", free_port(), extra)
    }

    /// Starts a server (binary log on) on `host:port` and waits until root can log in.
    pub fn start_on(dir: &TempDir, name: &str, server_id: u32, host: &str, port: u16, extra: &[&str]) -> MariaNode {
        Self::start_in(dir, name, server_id, None, host, port, extra)
    }

    /// Like `start_on`, inside the network namespace `ns` when given (listening on every address
    /// of the host, so that a VIP reaches it too).
    pub fn start_in(dir: &TempDir, name: &str, server_id: u32, ns: Option<&str>, host: &str, port: u16, extra: &[&str]) -> MariaNode {
        let datadir = dir.join(name);
        copy_dir(template(), &datadir);
        let socket = dir.join(format!("{name}.sock"));
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            format!("--datadir={}", datadir.display()),
            format!("--port={port}"),
            format!("--bind-address={}", if ns.is_some() { "0.0.0.0" } else { host }),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", dir.join(format!("{name}.pid")).display()),
            format!("--log-error={}", dir.join(format!("{name}.err")).display()),
            "--log-bin=mysql-bin".into(),
            "--log-slave-updates".into(),
            format!("--server-id={server_id}"),
            "--user=root".into(),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=16M".into(),
            "--innodb-log-file-size=8M".into(),
            "--performance-schema=OFF".into(),
            // Throwaway servers: no fsync, so the suite does not fight the disk.
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--sync-binlog=0".into(),
            "--innodb-doublewrite=0".into(),
            "--max-connections=60".into(),
        ];
        args.extend(extra.iter().map(|s| s.replace("{port}", &port.to_string())));
        let mut node = MariaNode {
            host: host.into(),
            port,
            server_id,
            socket,
            proc: Proc { child: None, name: name.into() },
            ns: ns.map(String::from),
            args,
        };
        node.restart();
        node
    }

    /// (Re)starts it with the arguments it was started with (plus `extra` from now on).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.restart();
    }

    /// (Re)starts it.
    pub fn restart(&mut self) {
        self.proc.kill();
        // mariadbd writes a few start-up warnings to stderr before --log-error takes over.
        let mut cmd = match &self.ns {
            Some(ns) => crate::netlab::ns_command(ns, "mariadbd"),
            None => Command::new("mariadbd"),
        };
        self.proc.child = Some(spawn_tied(cmd.args(&self.args).stderr(std::process::Stdio::null())));
        let port = self.port;
        wait_for(&format!("mariadbd on {port}"), Duration::from_secs(30), || self.conn_opt().map(|_| ()));
    }

    fn conn_opt(&self) -> Option<mysql::Conn> {
        root_conn(&self.host, self.port, self.ns.is_some().then_some(self.socket.as_path()))
    }

    /// A root connection.
    pub fn conn(&self) -> mysql::Conn {
        self.conn_opt().unwrap_or_else(|| panic!("cannot connect to {}", self.addr()))
    }

    /// Runs statements as root.
    pub fn sql(&self, statements: &str) {
        self.conn().query_drop(statements).unwrap_or_else(|e| panic!("{statements} on {}: {e}", self.addr()));
    }

    /// The first row of a query as root, column name to value.
    pub fn row(&self, query: &str) -> Option<std::collections::HashMap<String, Option<String>>> {
        let mut c = self.conn_opt()?;
        let row: mysql::Row = c.query_first(query).ok()??;
        let names: Vec<String> = row.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
        Some(
            names
                .into_iter()
                .zip(row.unwrap())
                .map(|(n, v)| match v {
                    mysql::Value::NULL => (n, None),
                    mysql::Value::Bytes(b) => (n, Some(String::from_utf8_lossy(&b).into_owned())),
                    other => (n, Some(other.as_sql(true))),
                })
                .collect(),
        )
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The port as an argument.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// Makes it replicate from `master` (channel `name`, "" for the default one) and waits until it runs.
    pub fn replicate_from(&self, master: &MariaNode, name: &str) {
        self.replicate_through(master, &master.host, master.port, name);
    }

    /// The same, connecting to `master` at `host:port` (a relay in front of it).
    pub fn replicate_through(&self, master: &MariaNode, host: &str, port: u16, name: &str) {
        self.sql(&format!(
            "CHANGE MASTER '{name}' TO MASTER_HOST='{host}', MASTER_PORT={port}, MASTER_USER='repl', \
             MASTER_PASSWORD='{REPL_PASSWORD}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE '{name}'"
        ));
        self.wait_channel_running(name);
        self.wait_caught_up(master);
    }

    /// Waits until this replica has applied everything `master` has binlogged (lag 0 alone can be
    /// reported before the IO thread has fetched it all).
    pub fn wait_caught_up(&self, master: &MariaNode) {
        let pos = |n: &MariaNode, var: &str| n.row(&format!("SELECT @@{var} AS p")).and_then(|r| r.get("p").cloned().flatten());
        wait_for(&format!("{} caught up with {}", self.addr(), master.addr()), Duration::from_secs(30), || {
            let m = pos(master, "gtid_binlog_pos")?;
            let r = pos(self, "gtid_slave_pos")?;
            // Multi-source: every domain of the master's position is in the replica's.
            m.split(',').all(|d| r.split(',').any(|x| x.trim() == d.trim())).then_some(())
        });
    }

    /// Waits until channel `name` has both threads running and no lag.
    pub fn wait_channel_running(&self, name: &str) {
        wait_for(&format!("channel '{name}' running on {}", self.addr()), Duration::from_secs(30), || {
            let r = self.row(&format!("SHOW SLAVE '{name}' STATUS"))?;
            let yes = |k: &str| r.get(k).cloned().flatten().as_deref() == Some("Yes");
            let lag0 = r.get("Seconds_Behind_Master").cloned().flatten().as_deref() == Some("0");
            (yes("Slave_IO_Running") && yes("Slave_SQL_Running") && lag0).then_some(())
        });
    }

    /// Waits until a field of `SHOW SLAVE 'name' STATUS` satisfies `ok`.
    pub fn wait_status(&self, name: &str, field: &str, ok: impl Fn(Option<&str>) -> bool) {
        wait_for(&format!("{field} on {}", self.addr()), Duration::from_secs(30), || {
            let r = self.row(&format!("SHOW SLAVE '{name}' STATUS"))?;
            ok(r.get(field).cloned().flatten().as_deref()).then_some(())
        });
    }

    /// Number of dump threads on this server (of `user`, or all).
    pub fn dump_threads(&self, user: Option<&str>) -> usize {
        let filter = user.map(|u| format!(" AND USER='{u}'")).unwrap_or_default();
        self.row(&format!("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'{filter}"))
            .and_then(|r| r.get("n").cloned().flatten())
            .and_then(|n| n.trim_matches('\'').parse().ok())
            .unwrap_or(0)
    }
}

/// Creates the lab's users on a (future) master; they replicate to its replicas.
pub fn create_users(master: &MariaNode) {
    master.sql(&format!(
        "CREATE USER repl@'%' IDENTIFIED BY '{REPL_PASSWORD}'; GRANT REPLICATION SLAVE ON *.* TO repl@'%';
         CREATE USER {c}@'%' IDENTIFIED BY '{cp}'; GRANT SLAVE MONITOR, PROCESS, REPLICATION MASTER ADMIN ON *.* TO {c}@'%';
         CREATE USER {m}@'%' IDENTIFIED BY '{mp}'; GRANT SLAVE MONITOR, PROCESS ON *.* TO {m}@'%';
         CREATE USER weak@'%' IDENTIFIED BY 'weak-pw'; GRANT REPLICATION CLIENT ON *.* TO weak@'%';
         GRANT SELECT ON percona.* TO {c}@'%', {m}@'%';
         CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20));",
        c = CHECKER.0,
        cp = CHECKER.1,
        m = MONITOR.0,
        mp = MONITOR.1
    ));
}

/// A master and replicas on loopback, each replica reporting its host and port.
pub struct MariaLab {
    /// Where everything lives.
    pub dir: TempDir,
    /// The node started as master.
    pub master: MariaNode,
    /// The nodes started as replicas.
    pub replicas: Vec<MariaNode>,
    /// A defaults file logging in as `checker`.
    pub checker_cnf: PathBuf,
    /// A defaults file logging in as `monitor`.
    pub monitor_cnf: PathBuf,
}

impl MariaLab {
    /// A master with `replicas` replicas (read_only=ON, report_host/report_port set), all running.
    pub fn start(replicas: usize) -> MariaLab {
        Self::start_with(replicas, true)
    }

    /// Like `start`; `report` says whether replicas set report_host/report_port.
    pub fn start_with(replicas: usize, report: bool) -> MariaLab {
        let dir = TempDir::new("mariadb");
        let master = MariaNode::start(&dir, "master", 1, &[]);
        create_users(&master);
        let replicas: Vec<MariaNode> = (0..replicas)
            .map(|i| {
                let mut extra = vec!["--read-only"];
                if report {
                    extra.extend(["--report-host=127.0.0.1", "--report-port={port}"]);
                }
                let node = MariaNode::start(&dir, &format!("replica{i}"), 2 + i as u32, &extra);
                node.replicate_from(&master, "");
                node
            })
            .collect();
        let checker_cnf = dir.join("checker.cnf");
        crate::write_file(&checker_cnf, &format!("[client]\nuser={}\npassword=\"{}\"\n", CHECKER.0, CHECKER.1), 0o600);
        let monitor_cnf = dir.join("monitor.cnf");
        crate::write_file(&monitor_cnf, &format!("[client]\nuser={}\npassword={}\n", MONITOR.0, MONITOR.1), 0o600);
        let lab = MariaLab { dir, master, replicas, checker_cnf, monitor_cnf };
        wait_for("dump threads on the master", Duration::from_secs(20), || {
            (lab.master.dump_threads(Some("repl")) == lab.replicas.len()).then_some(())
        });
        lab
    }

    /// `--defaults-file` for the checker login.
    pub fn checker_args(&self) -> Vec<String> {
        vec!["--defaults-file".into(), self.checker_cnf.display().to_string()]
    }

    /// Every node: master first.
    pub fn nodes(&self) -> Vec<&MariaNode> {
        std::iter::once(&self.master).chain(self.replicas.iter()).collect()
    }
}

/// The checks log in as the lab's checker.
impl crate::pools::Observable for MariaLab {
    const CHECKS: (&'static str, &'static str) = (MYSQL_MASTER, MYSQL_SLAVE);
    fn targets(&self) -> Vec<crate::pools::CheckTarget> {
        self.nodes()
            .iter()
            .map(|n| crate::pools::CheckTarget {
                addr: n.addr(),
                up: n.proc.running(),
                args: std::iter::once(n.port_arg()).chain(self.checker_args()).collect(),
            })
            .collect()
    }
}

/// The user of [`MariaNode::start_tls`] who may log in only over TLS, and its password.
pub const TLS_USER: (&str, &str) = ("tlsuser", "tls-pw");

impl MariaNode {
    /// A MariaDB server with `pki`'s server certificate, and [`TLS_USER`] (`REQUIRE SSL`, the
    /// checks' privileges): a silent fallback to plain text fails its login.
    pub fn start_tls(dir: &TempDir, name: &str, pki: &crate::pki::Pki) -> MariaNode {
        MariaNode::start_tls_as(dir, name, pki, "server")
    }

    /// The same with `pki`'s certificate `cert` (`server`, `nosan`, `foreign`).
    pub fn start_tls_as(dir: &TempDir, name: &str, pki: &crate::pki::Pki, cert: &str) -> MariaNode {
        let node = MariaNode::start(
            dir,
            name,
            1,
            &[
                &format!("--ssl-cert={}", pki.arg(&format!("{cert}.crt"))),
                &format!("--ssl-key={}", pki.arg(&format!("{cert}.key"))),
                &format!("--ssl-ca={}", pki.arg("ca.crt")),
            ],
        );
        let (user, password) = TLS_USER;
        node.sql(&format!(
            "CREATE USER {user}@'%' IDENTIFIED BY '{password}' REQUIRE SSL; GRANT SLAVE MONITOR, PROCESS ON *.* TO {user}@'%'"
        ));
        node
    }
}

/// pt-heartbeat's table (its current layout), in the `percona` database.
pub const HEARTBEAT_TABLE: &str = "percona.heartbeat";

/// What writes the heartbeat on a master: the real pt-heartbeat, or the event-scheduler
/// alternative the docs give (an event on every server that writes only while the server is writable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatWriter {
    /// `pt-heartbeat --update --utc --create-table` (percona-toolkit), every second.
    PtHeartbeat,
    /// `CREATE EVENT ... EVERY 1 SECOND` (docs/checks.md: the heartbeat without a daemon).
    Event,
}

/// The event alternative's SQL, as docs/checks.md gives it: the table pt-heartbeat creates, and an
/// event that writes this server's row every second while the server is writable (created on every
/// server without being binlogged, so each one writes its own row once promoted).
pub const HEARTBEAT_EVENT_SQL: &str = "CREATE DATABASE IF NOT EXISTS percona;
CREATE TABLE IF NOT EXISTS percona.heartbeat (ts varchar(26) NOT NULL, server_id int unsigned NOT NULL PRIMARY KEY,
  file varchar(255) DEFAULT NULL, position bigint unsigned DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL,
  exec_master_log_pos bigint unsigned DEFAULT NULL);
SET SESSION sql_log_bin = 0;
CREATE EVENT IF NOT EXISTS percona.heartbeat_writer ON SCHEDULE EVERY 1 SECOND DO
  REPLACE INTO percona.heartbeat (ts, server_id)
  SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'), @@server_id FROM DUAL WHERE @@global.read_only = 0;
SET SESSION sql_log_bin = 1;
SET GLOBAL event_scheduler = ON;";

impl MariaNode {
    /// Starts writing the heartbeat on this server with `writer`; the returned process (pt-heartbeat)
    /// stops with the test. Waits until the first row is there.
    pub fn write_heartbeat(&self, writer: HeartbeatWriter) -> Option<Proc> {
        let proc = match writer {
            HeartbeatWriter::PtHeartbeat => {
                // pt-heartbeat creates the table (--create-table), not its database.
                self.sql("CREATE DATABASE IF NOT EXISTS percona");
                let mut cmd = Command::new("pt-heartbeat");
                cmd.args(["--update", "--utc", "--create-table", "--database", "percona", "--interval", "1", "--run-time", "10m"])
                    // root by the Unix socket (unix_socket authentication: the test runs as root).
                    .arg(format!("S={},u=root", self.socket.display()))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::fs::File::create(self.socket.with_extension("pt-heartbeat.log")).unwrap());
                Some(Proc { child: Some(spawn_tied(&mut cmd)), name: "pt-heartbeat".into() })
            }
            HeartbeatWriter::Event => {
                self.sql(HEARTBEAT_EVENT_SQL);
                None
            }
        };
        let id = self.server_id;
        wait_for(&format!("a heartbeat row on {}", self.addr()), Duration::from_secs(20), || {
            self.row(&format!("SELECT ts FROM {HEARTBEAT_TABLE} WHERE server_id = {id}")).map(|_| ())
        });
        proc
    }
}
