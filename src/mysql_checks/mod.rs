//! The MySQL/MariaDB role checks: `check-mysql-master` and `check-mysql-slave`.

pub mod defaults_file;
pub mod discovery;
pub mod login;
pub mod master;
pub mod replica;
pub mod replication;
pub mod session;

use crate::deadline::Deadline;
use anyhow::{Context, Result};
use login::MysqlTarget;
use replication::{DumpThread, ReplicaChannel};
use serde_json::json;
use session::Session;
use std::path::PathBuf;

/// Options every MySQL check has besides the common ones.
#[derive(clap::Args, Clone, Debug)]
pub struct MysqlArgs {
    /// Read user, password, host, port, socket and ssl-ca from the [client] group of this my.cnf.
    #[arg(long, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,
    /// Count only dump threads of this replication user (repeat for several); other users' dump
    /// threads (CDC readers such as mariadb-binlog, Debezium) are not replicas.
    #[arg(long = "repl-user", value_name = "NAME")]
    pub repl_users: Vec<String>,
}

/// One server looked at: the open session (for a check that has more to ask) and its facts.
pub struct Observation<'a> {
    /// The connection, still open.
    pub session: Session<'a>,
    /// What the server reported.
    pub facts: ServerFacts,
}

/// Connects once to `target` and reads the server's facts.
pub fn observe<'a>(target: &MysqlTarget, deadline: &'a Deadline) -> Result<Observation<'a>> {
    let mut session = Session::open(target, deadline)?;
    let facts = ServerFacts::read(&mut session)?;
    Ok(Observation { session, facts })
}

/// Replication status statements, newest spelling first; a syntax error moves on to the next.
/// `ALL` forms list every channel (MariaDB named connections); MySQL lists every channel anyway.
pub const STATUS_STATEMENTS: &[&str] = &["SHOW ALL REPLICAS STATUS", "SHOW REPLICA STATUS", "SHOW ALL SLAVES STATUS", "SHOW SLAVE STATUS"];

/// Statements listing registered replicas, newest spelling first.
pub const REPLICA_HOSTS_STATEMENTS: &[&str] = &["SHOW REPLICAS", "SHOW REPLICA HOSTS", "SHOW SLAVE HOSTS"];

const VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'read_only', 'super_read_only', 'port')";

const DUMP_THREADS: &str = "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' ORDER BY ID";

/// What a MySQL check decides on, read from one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFacts {
    /// `@@version`.
    pub version: String,
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@super_read_only` (MySQL only; `None` on MariaDB).
    pub super_read_only: Option<bool>,
    /// `@@port`.
    pub port: Option<u16>,
    /// The status statement the server answered.
    pub status_statement: String,
    /// Its replication channels (empty: not a replica).
    pub channels: Vec<ReplicaChannel>,
    /// Its dump threads (replicas and CDC readers connected to it).
    pub dump_threads: Vec<DumpThread>,
}

fn on(v: Option<&Option<String>>) -> Option<bool> {
    v.cloned().flatten().map(|s| matches!(s.to_ascii_uppercase().as_str(), "ON" | "1" | "TRUE"))
}

impl ServerFacts {
    /// Reads variables, replication status and dump threads (three round trips, one connection).
    pub fn read(session: &mut Session) -> Result<ServerFacts> {
        let vars: std::collections::HashMap<String, Option<String>> = session
            .rows(VARIABLES)?
            .into_iter()
            .filter_map(|r| Some((r.get("Variable_name")?.clone()?, r.get("Value")?.clone())))
            .collect();
        let (status_statement, rows) = session.rows_first_known(STATUS_STATEMENTS)?;
        let channels = replication::channels(&rows).with_context(|| format!("cannot read {status_statement}"))?;
        let dump_threads = session
            .rows(DUMP_THREADS)?
            .into_iter()
            .map(|r| DumpThread {
                user: r.get("USER").cloned().flatten().unwrap_or_default(),
                host: r.get("HOST").cloned().flatten().unwrap_or_default(),
            })
            .collect();
        Ok(ServerFacts {
            version: vars.get("version").cloned().flatten().unwrap_or_default(),
            read_only: on(vars.get("read_only")).unwrap_or(false),
            super_read_only: on(vars.get("super_read_only")),
            port: vars.get("port").cloned().flatten().and_then(|p| p.parse().ok()),
            status_statement,
            channels,
            dump_threads,
        })
    }

    /// The dump threads that count as replicas: all, or those of the `--repl-user` names.
    pub fn replica_threads<'a>(&'a self, repl_users: &'a [String]) -> impl Iterator<Item = &'a DumpThread> + 'a {
        self.dump_threads.iter().filter(move |t| repl_users.is_empty() || repl_users.contains(&t.user))
    }

    /// The facts as shown in output; `login` says who logged in (never the password).
    pub fn facts(&self, repl_users: &[String], login: &str) -> crate::report::Facts {
        let mut f = crate::report::Facts::new();
        let role = if !self.channels.is_empty() { "replica" } else { "master" };
        f.set("role", role)
            .set("read_only", self.read_only)
            .set("super_read_only", self.super_read_only)
            .set("channels", self.channels.iter().map(ReplicaChannel::fact).collect::<Vec<_>>())
            .set(
                "connected_replicas",
                self.replica_threads(repl_users).map(|t| json!({"user": t.user, "host": t.host})).collect::<Vec<_>>(),
            );
        let others = self.dump_threads.len() - self.replica_threads(repl_users).count();
        if others > 0 {
            f.set("other_dump_threads", others);
        }
        f.set("version", self.version.as_str()).set("status_statement", self.status_statement.as_str());
        f.set("login", login);
        f
    }
}
