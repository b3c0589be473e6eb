//! A master's replicas: where they listen, how to log in to them, and probing each one's channels.

use super::defaults_file::ClientGroup;
use super::dialect::{status_statements, REPLICA_HOSTS_STATEMENTS};
use super::login::MysqlTarget;
use super::replication::{channels, replica_hosts, replica_problems, DumpThread};
use super::session::Session;
use crate::cli::Address;
use crate::credentials::read_password_file;
use crate::deadline::Deadline;
use crate::probe::probe_all;
use crate::read_pool::{ReadPolicy, ReplicaHealth};
use anyhow::Result;
use std::path::PathBuf;

/// Where the replicas of a master listen, and how that was found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedReplicas {
    /// Their addresses, each once.
    pub addresses: Vec<Address>,
    /// `from SHOW SLAVE HOSTS`, or why the processlist hosts were used instead.
    pub how: String,
}

/// Where the master's replicas listen: `SHOW REPLICAS`/`SHOW SLAVE HOSTS`, else the processlist
/// hosts of the counted dump threads with `default_port`.
pub fn locate_replicas(session: &mut Session, threads: &[&DumpThread], default_port: u16) -> LocatedReplicas {
    let fallback_reason = match session.rows_first_known(REPLICA_HOSTS_STATEMENTS) {
        Ok((stmt, rows)) => {
            let hosts = replica_hosts(&rows);
            if !hosts.is_empty() {
                let addresses = hosts.into_iter().map(|h| Address::Tcp { host: h.host, port: h.port }).collect();
                return LocatedReplicas { addresses, how: format!("from {stmt}") };
            }
            format!("{stmt} lists no replica host")
        }
        Err(e) => format!("{e:#}"),
    };
    let mut addresses: Vec<Address> = Vec::new();
    for t in threads {
        let a = Address::Tcp { host: t.client_host().to_string(), port: default_port };
        if !addresses.contains(&a) {
            addresses.push(a);
        }
    }
    LocatedReplicas { addresses, how: format!("from the processlist hosts with port {default_port} ({fallback_reason})") }
}

/// The `--replica-*` login options.
#[derive(Clone, Debug, Default)]
pub struct ReplicaLoginArgs {
    /// User to log in to the replicas as, instead of the check's own (`--replica-user`).
    pub user: Option<String>,
    /// File holding the replicas' password (`--replica-password-file`).
    pub password_file: Option<PathBuf>,
    /// my.cnf whose `[client]` group logs in to the replicas (`--replica-defaults-file`).
    pub defaults_file: Option<PathBuf>,
}

/// The login used to probe replicas: the `--replica-*` options over the check's own login.
pub fn replica_login(args: &ReplicaLoginArgs, main: &MysqlTarget) -> Result<MysqlTarget> {
    let group = match &args.defaults_file {
        Some(path) => ClientGroup::load(path)?,
        None => ClientGroup::default(),
    };
    let mut login = main.clone();
    if let Some(user) = args.user.clone().or(group.user.clone()) {
        login.user = user;
    }
    if let Some(path) = &args.password_file {
        login.password = Some(read_password_file(path)?);
    } else if let Some(p) = group.password.clone() {
        login.password = Some(p);
    }
    if group.ssl_ca.is_some() {
        login.tls.tls_ca = group.ssl_ca.clone();
    }
    if let Some(verify) = group.ssl_mode {
        login.tls.tls = true;
        login.tls_verify = verify;
    }
    login.set_full_authentication(&group, None, false)?;
    Ok(login)
}

/// Memory one replica probe may use: the driver reserves 8.4 MiB per connection (two 4 MiB packet
/// buffers, mostly never touched) and a replica's status is a few KiB. A replica that sends more
/// fails its own probe. Four at once (44 MiB) stay under the process's cap with room for the rest.
pub const REPLICA_PROBE_BUDGET: usize = 11 << 20;

/// Probes every replica's channels, a bounded number at once, all within `deadline`.
pub fn probe_replicas(
    replicas: &[Address],
    login: &MysqlTarget,
    policy: ReadPolicy,
    heartbeat: &super::heartbeat::HeartbeatArgs,
    deadline: Deadline,
) -> Vec<ReplicaHealth> {
    let (login, heartbeat) = (login.clone(), heartbeat.clone());
    let limit = deadline.limit();
    probe_all(
        replicas.to_vec(),
        deadline,
        REPLICA_PROBE_BUDGET,
        move |addr: &Address, deadline: &Deadline| {
            let mut session = match Session::open(&login.at(addr.clone()), deadline) {
                Ok(session) => session,
                Err(e) => return ReplicaHealth::unprobed(addr.to_string(), format!("{e:#}")),
            };
            let problems = (|| -> Result<Vec<String>> {
                let (_, rows) = session.rows_first_known(&status_statements(session.dialect()))?;
                let mut channels = channels(&rows)?;
                super::workers::name_worker_errors(&mut session, &mut channels);
                super::heartbeat::read(&mut session, &heartbeat, &mut channels)?;
                super::link::read(&mut session, &mut channels);
                if channels.is_empty() {
                    return Ok(vec!["is not replicating (no channel)".into()]);
                }
                Ok(replica_problems(&channels, &policy))
            })()
            .unwrap_or_else(|e| vec![format!("{e:#}")]);
            ReplicaHealth::judged(addr.to_string(), (!problems.is_empty()).then(|| problems.join("; ")))
        },
        move |addr, why| ReplicaHealth::unfinished(addr, why, limit),
    )
}

/// Asks each cluster member at `addresses` (`host:port`, as the cluster lists its members) with
/// `ask`, on a session of its own logged in as `login`, a bounded number at once, all within
/// `deadline`: each address with what `ask` found, or why it could not be asked. `setting` names
/// the server setting that makes a member list a reachable address.
pub fn ask_members<T: Send + 'static>(
    addresses: &[String],
    login: &MysqlTarget,
    deadline: Deadline,
    setting: &'static str,
    ask: fn(&mut Session, &Address) -> anyhow::Result<T>,
) -> Vec<(String, Result<T, String>)> {
    let login = login.clone();
    let limit = deadline.limit();
    probe_all(
        addresses.to_vec(),
        deadline,
        REPLICA_PROBE_BUDGET,
        move |address: &String, deadline: &Deadline| {
            let found = match crate::cli::parse_host_port(address) {
                Ok(addr @ Address::Tcp { .. }) => Session::open(&login.at(addr.clone()), deadline)
                    .and_then(|mut session| ask(&mut session, &addr))
                    .map_err(|e| format!("{e:#}")),
                _ => Err(format!("'{address}' is not an address the check can reach (set {setting})")),
            };
            (address.clone(), found)
        },
        move |address, why| (address.clone(), Err(why.describe(limit))),
    )
}
