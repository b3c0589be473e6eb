//! The MySQL/MariaDB role checks: `check-mysql-master` and `check-mysql-slave`.

pub mod auth;
pub mod cluster;
pub mod defaults_file;
pub mod dialect;
pub mod discovery;
pub mod galera;
pub mod group;
pub mod heartbeat;
pub mod link;
pub mod login;
pub mod master;
pub mod replica;
pub mod replication;
pub mod session;
pub mod workers;

use crate::deadline::Deadline;
use anyhow::{Context, Result};
use dialect::{Dialect, DUMP_THREADS, SHOW_VARIABLES};
use login::MysqlTarget;
use replication::{DumpThread, ReplicaChannel, RowMap};
use serde_json::json;
use session::{Batch, Session, Statement};
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
    /// The server's RSA public key (its public_key.pem), pinned: over plain TCP, caching_sha2_password
    /// full authentication (after every server restart) sends the password encrypted with it.
    #[arg(long, value_name = "FILE")]
    pub server_public_key: Option<PathBuf>,
    /// INSECURE: for full authentication over plain TCP, encrypt the password with the key the server
    /// sends; a man in the middle sends his own and reads the password. Prefer --server-public-key.
    #[arg(long)]
    pub get_server_public_key: bool,
    /// How TLS verifies the server: full (chain and name) or ca (chain to --tls-ca only, as
    /// --ssl-mode=VERIFY_CA: for MySQL's auto-generated certificates); implies --tls.
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls_verify: Option<auth::TlsVerify>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cluster: cluster::ClusterArgs,
}

/// One server looked at: the open session (for a check that has more to ask) and its facts.
pub struct Observation<'a> {
    /// The connection, still open.
    pub session: Session<'a>,
    /// What the server reported.
    pub facts: ServerFacts,
    /// Why the login will fail after the server's next restart, when it will (see [`auth`]).
    pub login_warning: Option<String>,
}

/// `verdict`, worsened to warning when the login works only by the server's cache (`warning`,
/// from [`Observation::login_warning`]).
pub fn with_login_warning(verdict: crate::report::Verdict, warning: Option<&str>) -> crate::report::Verdict {
    match warning {
        Some(why) => verdict.and(crate::report::Subcheck::warning(why)),
        None => verdict,
    }
}

/// The outcome for a node that runs another replication than `--replication` says (critical, in
/// no pool), if it does.
pub fn wrong_replication(args: &MysqlArgs, target: &MysqlTarget, facts: &ServerFacts) -> Option<crate::report::Outcome> {
    let why = args.cluster.mismatch(&target.address.to_string(), facts)?;
    Some(crate::report::Outcome::new(crate::report::Verdict::failed(why), facts.facts(&args.repl_users, target)))
}

/// Connects once to `target` and reads the server's facts.
pub fn observe<'a>(target: &MysqlTarget, deadline: &'a Deadline) -> Result<Observation<'a>> {
    let mut session = Session::open(target, deadline)?;
    let facts = ServerFacts::read(&mut session)?;
    let login_warning = cached_login_warning(&mut session, target)?;
    Ok(Observation { session, facts, login_warning })
}

/// On MySQL 8.0+ over plain TCP with full authentication refused: whether the account uses
/// `caching_sha2_password`, whose next full authentication (after a restart) this check will refuse.
/// One more round trip, only in that configuration.
fn cached_login_warning(session: &mut Session, target: &MysqlTarget) -> Result<Option<String>> {
    let mysql8 = matches!(session.dialect().map(|d| d.flavour), Some(dialect::Flavour::MySql(v)) if v >= (8, 0, 0));
    if target.full_authentication() != auth::FullAuthentication::Refused || !mysql8 {
        return Ok(None);
    }
    let statement = match session.batch(&[Statement::all(auth::SHOW_CREATE_USER)])? {
        Batch::Answered(sets) => sets.into_iter().flatten().next().and_then(|row| row.into_values().flatten().next()),
        Batch::NotUnderstood(_) => None,
    };
    let plugin = statement.as_deref().and_then(auth::plugin_of_create_user);
    Ok(match plugin {
        Some(plugin) => auth::cached_login_warning(session.address(), &plugin),
        None => Some(format!(
            "{} did not say which plugin this account logs in with ({}): if it is caching_sha2_password, the login \
             will be refused after the server's next restart (plain TCP, no pinned key)",
            session.address(),
            auth::SHOW_CREATE_USER
        )),
    })
}

/// The version and the read-only switches, read strictly: a switch the server did not report is an
/// error, never "off".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switches {
    /// `@@version`.
    pub version: String,
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@super_read_only`, required on MySQL 5.7+, absent on MariaDB.
    pub super_read_only: Option<bool>,
    /// `@@innodb_read_only`.
    pub innodb_read_only: bool,
    /// `@@offline_mode`, when the server has it (MySQL 5.7.5+).
    pub offline_mode: Option<bool>,
}

impl Switches {
    /// Reads them from the variables the server reported.
    pub fn from_variables(vars: &Variables) -> Result<Switches> {
        let version = required(vars, "version")?.to_string();
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        let old_mysql = version.starts_with("5.5.") || version.starts_with("5.6.");
        let super_read_only = match vars.get("super_read_only") {
            Some(Some(v)) => Some(switch_on(v)),
            _ if mariadb || old_mysql => None,
            _ => anyhow::bail!("the server did not report @@super_read_only (MySQL {version} has it; fail closed: critical)"),
        };
        Ok(Switches {
            read_only: switch_on(required(vars, "read_only")?),
            super_read_only,
            innodb_read_only: switch_on(required(vars, "innodb_read_only")?),
            offline_mode: vars.get("offline_mode").cloned().flatten().map(|v| switch_on(&v)),
            version,
        })
    }
}

/// What a MySQL check decides on, read from one server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerFacts {
    /// `@@version`.
    pub version: String,
    /// `@@read_only`: anything but `OFF`/`0` (MariaDB 11 adds `NO_LOCK`, `NO_LOCK_NO_ADMIN`).
    pub read_only: bool,
    /// `@@super_read_only` (MySQL only; `None` on MariaDB).
    pub super_read_only: Option<bool>,
    /// `@@innodb_read_only`: the whole server is read-only (out of both pools).
    pub innodb_read_only: bool,
    /// `@@offline_mode` (MySQL 5.7.5+; `None` on MariaDB): it refuses client connections.
    pub offline_mode: Option<bool>,
    /// `@@port`.
    pub port: Option<u16>,
    /// The status statement the server answered.
    pub status_statement: String,
    /// Its replication channels (empty: not a replica).
    pub channels: Vec<ReplicaChannel>,
    /// Its dump threads (replicas and CDC readers connected to it).
    pub dump_threads: Vec<DumpThread>,
    /// Its Galera state, when it is a Galera node (`wsrep_on`): then judged by Galera's rules.
    pub galera: Option<galera::GaleraState>,
    /// Its view of its group, when it is a Group Replication member: then judged by the group's rules.
    pub group: Option<group::GroupState>,
}

/// A variable's name to value, as the server reported it (`SELECT @@...` or `SHOW GLOBAL VARIABLES`).
pub type Variables = std::collections::HashMap<String, Option<String>>;

/// Whether a switch variable is on: anything but `OFF`/`0`/`FALSE` (an enum value such as MariaDB's
/// `NO_LOCK` counts as on). Reading a read-only switch as off when unsure would add a writer.
fn switch_on(value: &str) -> bool {
    !matches!(value.trim().to_ascii_uppercase().as_str(), "OFF" | "0" | "FALSE")
}

/// The value of a variable the decision needs: an error naming it when the server did not report it.
fn required<'a>(vars: &'a Variables, name: &str) -> Result<&'a str> {
    match vars.get(name) {
        Some(Some(v)) if !v.trim().is_empty() => Ok(v.as_str()),
        _ => anyhow::bail!("the server did not report @@{name}, which the decision needs (fail closed: critical)"),
    }
}

/// The switches `session`'s server reported, or an error naming the server and the missing fact.
fn switches(session: &Session, vars: &Variables) -> Result<Switches> {
    Switches::from_variables(vars).with_context(|| format!("the variables of {}", session.address()))
}

impl ServerFacts {
    /// Reads variables, replication status and dump threads: in one round trip when the server's
    /// dialect is known and confirmed, else statement by statement.
    pub fn read(session: &mut Session) -> Result<ServerFacts> {
        if let Some(dialect) = session.dialect() {
            if let Some(facts) = Self::read_batched(session, dialect)? {
                return Ok(facts);
            }
        }
        Self::read_step_by_step(session)
    }

    /// Reads everything in one multi-statement round trip in `dialect`; `None` when the server did
    /// not understand it or its `@@version` contradicts the dialect.
    pub fn read_batched(session: &mut Session, dialect: Dialect) -> Result<Option<ServerFacts>> {
        let variables = dialect.variables_select();
        let status_statement = dialect.status_statement();
        let statements = [
            Statement::all(&variables),
            Statement::all(status_statement),
            DUMP_THREADS,
            Statement::all(galera::GALERA_VARIABLES),
            Statement::all(galera::GALERA_STATUS),
        ];
        let Batch::Answered(mut answers) = session.batch(&statements)? else { return Ok(None) };
        let (galera_status, galera_vars) = (answers.pop().unwrap_or_default(), galera::variables(&answers.pop().unwrap_or_default()));
        let (threads, status) = (answers.pop().unwrap_or_default(), answers.pop().unwrap_or_default());
        // One row whose columns are named after the variables.
        let vars: Variables = answers.pop().unwrap_or_default().into_iter().next().unwrap_or_default().into_iter().collect();
        match vars.get("version") {
            Some(Some(version)) if !dialect.confirmed_by(version) => return Ok(None),
            _ => {}
        }
        let switches = switches(session, &vars)?;
        Self::from_answers(session, switches, &vars, status_statement, &status, &threads, (&galera_vars, &galera_status)).map(Some)
    }

    /// Reads everything one statement at a time, with the spellings every server knows.
    pub fn read_step_by_step(session: &mut Session) -> Result<ServerFacts> {
        let vars: Variables = session
            .rows(SHOW_VARIABLES)?
            .into_iter()
            .filter_map(|r| Some((r.get("Variable_name")?.clone()?, r.get("Value")?.clone())))
            .collect();
        // The switches first: a server that reports none of them fails on that, the most basic fact.
        let switches = switches(session, &vars)?;
        let (status_statement, status) = session.rows_first_known(&dialect::status_statements(session.dialect()))?;
        let threads = session.kept_rows(DUMP_THREADS)?;
        let (galera_vars, galera_status) = galera::read(session)?;
        Self::from_answers(session, switches, &vars, &status_statement, &status, &threads, (&galera_vars, &galera_status))
    }

    /// The facts from `session`'s answers: the switches and the other variables, the status
    /// statement's rows, `SHOW PROCESSLIST`'s dump-thread rows, the cluster variables and the
    /// Galera status.
    fn from_answers(
        session: &mut Session,
        switches: Switches,
        vars: &Variables,
        status_statement: &str,
        status: &[RowMap],
        threads: &[RowMap],
        (cluster_vars, galera_status): (&Variables, &[RowMap]),
    ) -> Result<ServerFacts> {
        // A Galera node or a Group Replication member: from the cluster variables and the Galera
        // status, and for a member one more round trip for its view of the group.
        let galera = galera::GaleraState::read(cluster_vars, galera_status)
            .with_context(|| format!("the Galera status of {}", session.address()))?;
        let group = group::read(session, cluster_vars)?;
        let server = session.address();
        let mut channels = replication::channels(status).with_context(|| format!("cannot read {status_statement} of {server}"))?;
        workers::name_worker_errors(session, &mut channels);
        let mut dump_threads: Vec<(u64, DumpThread)> = threads
            .iter()
            .map(|r| {
                let field = |name: &str| r.get(name).cloned().flatten().unwrap_or_default();
                (field("Id").parse().unwrap_or(u64::MAX), DumpThread { user: field("User"), host: field("Host") })
            })
            .collect();
        dump_threads.sort_by_key(|(id, _)| *id);
        Ok(ServerFacts {
            version: switches.version,
            read_only: switches.read_only,
            super_read_only: switches.super_read_only,
            innodb_read_only: switches.innodb_read_only,
            offline_mode: switches.offline_mode,
            port: vars.get("port").cloned().flatten().and_then(|p| p.parse().ok()),
            status_statement: status_statement.to_string(),
            channels,
            dump_threads: dump_threads.into_iter().map(|(_, t)| t).collect(),
            galera,
            group,
        })
    }

    /// Why the server belongs in no pool at all (`innodb_read_only`, `offline_mode`), if it does not.
    pub fn out_of_service(&self) -> Option<String> {
        if self.innodb_read_only {
            Some("innodb_read_only=ON: the server cannot write at all".into())
        } else if self.offline_mode == Some(true) {
            Some("offline_mode=ON: the server refuses client connections".into())
        } else {
            None
        }
    }

    /// The dump threads that count as replicas: all, or those of the `--repl-user` names.
    pub fn replica_threads<'a>(&'a self, repl_users: &'a [String]) -> impl Iterator<Item = &'a DumpThread> + 'a {
        self.dump_threads.iter().filter(move |t| repl_users.is_empty() || repl_users.contains(&t.user))
    }

    /// The facts as shown in output, with who logs in to `target` and how (never the password).
    pub fn facts(&self, repl_users: &[String], target: &MysqlTarget) -> crate::report::Facts {
        let mut f = crate::report::Facts::new();
        let role = if self.galera.is_some() {
            "galera member"
        } else if self.group.is_some() {
            "group member"
        } else if !self.channels.is_empty() {
            "replica"
        } else {
            "master"
        };
        f.set("role", role)
            .set("read_only", self.read_only)
            .set("super_read_only", self.super_read_only)
            .set("innodb_read_only", self.innodb_read_only)
            .set("offline_mode", self.offline_mode)
            .set("channels", self.channels.iter().map(ReplicaChannel::fact).collect::<Vec<_>>())
            .set(
                "connected_replicas",
                self.replica_threads(repl_users).map(|t| json!({"user": t.user, "host": t.host})).collect::<Vec<_>>(),
            );
        let others = self.dump_threads.len() - self.replica_threads(repl_users).count();
        if others > 0 {
            f.set("other_dump_threads", others);
        }
        if let Some(g) = &self.galera {
            f.set("galera", g.fact());
        }
        if let Some(g) = &self.group {
            f.set("group", g.fact());
        }
        f.set("version", self.version.as_str()).set("status_statement", self.status_statement.as_str());
        f.set("login", target.login_fact()).set("transport", target.full_authentication().describe());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, Option<&str>)]) -> Variables {
        pairs.iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect()
    }
    const MARIADB: &str = "10.11.14-MariaDB-0+deb12u2-log";

    /// MariaDB 11's enum values all mean read-only; only OFF/0 is writable.
    #[test]
    fn read_only_enum_values_are_read_only() {
        for (value, ro) in [
            ("OFF", false),
            ("0", false),
            ("off", false),
            ("ON", true),
            ("1", true),
            ("NO_LOCK", true),
            ("NO_LOCK_NO_ADMIN", true),
            ("", true),
        ] {
            let v = vars(&[("version", Some(MARIADB)), ("read_only", Some(value)), ("innodb_read_only", Some("OFF"))]);
            match Switches::from_variables(&v) {
                Ok(s) => assert_eq!(s.read_only, ro, "{value:?}"),
                Err(e) => assert!(value.is_empty() && e.to_string().contains("@@read_only"), "{value:?}: {e}"),
            }
        }
    }

    /// A server that answers with no rows (or leaves a switch out) is never read as writable.
    #[test]
    fn missing_facts_fail_closed() {
        let full = [("version", Some(MARIADB)), ("read_only", Some("OFF")), ("innodb_read_only", Some("OFF"))];
        assert!(Switches::from_variables(&vars(&full)).is_ok());
        for missing in ["version", "read_only", "innodb_read_only"] {
            let v: Vec<_> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
            let e = Switches::from_variables(&vars(&v)).unwrap_err().to_string();
            assert!(e.contains(&format!("@@{missing}")) && e.contains("critical"), "{missing}: {e}");
        }
        assert!(Switches::from_variables(&Variables::new()).is_err());
        let null = [("version", Some(MARIADB)), ("read_only", None), ("innodb_read_only", Some("OFF"))];
        assert!(Switches::from_variables(&vars(&null)).is_err());
        // MySQL 8 must report super_read_only; MariaDB has none.
        let mysql = [("version", Some("8.4.3")), ("read_only", Some("OFF")), ("innodb_read_only", Some("OFF"))];
        assert!(Switches::from_variables(&vars(&mysql)).unwrap_err().to_string().contains("@@super_read_only"));
        let mut with = mysql.to_vec();
        with.extend([("super_read_only", Some("ON")), ("offline_mode", Some("OFF"))]);
        let s = Switches::from_variables(&vars(&with)).unwrap();
        assert_eq!((s.super_read_only, s.offline_mode), (Some(true), Some(false)));
    }
}
