//! `check-mysql-slave`: should this MySQL/MariaDB be in the read pool?

use super::client::{MysqlTarget, Session};
use super::defaults_file::ClientGroup;
use super::replication::{replica_hosts, replica_problems, DumpThread};
use super::{MysqlArgs, ServerFacts, REPLICA_HOSTS_STATEMENTS, STATUS_STATEMENTS};
use crate::cli::{parse_port, Address, ServerArgs};
use crate::credentials::read_password_file;
use crate::deadline::Deadline;
use crate::duration::{format_duration, parse_duration};
use crate::report::{seconds_value, Outcome, Perfdata, Verdict};
use crate::runner::{Check, Run};
use anyhow::Result;
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Command line of `check-mysql-slave`.
#[derive(Parser, Debug)]
#[command(
    name = "check-mysql-slave",
    version,
    about = "Passing (0) iff this MySQL/MariaDB should serve reads: a healthy replica, a single master, \
             or a master none of whose replicas is healthy.",
    after_help = "Exit codes: 0 passing, 1 warning, 2 critical. Drop-in call: check-mysql-slave 3306 (credentials from --defaults-file)"
)]
pub struct Args {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub mysql: MysqlArgs,
    /// A channel is healthy only with its lag below this (seconds or a duration).
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = parse_duration)]
    pub max_lag: Duration,
    /// User for probing the replicas of a master [default: the same login].
    #[arg(long, value_name = "NAME")]
    pub replica_user: Option<String>,
    /// Password file for probing the replicas [default: the same password].
    #[arg(long, value_name = "PATH")]
    pub replica_password_file: Option<PathBuf>,
    /// my.cnf whose [client] group logs in to the replicas.
    #[arg(long, value_name = "FILE")]
    pub replica_defaults_file: Option<PathBuf>,
    /// Port of replicas found from processlist hosts [default: this server's own port].
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    pub replica_port: Option<u16>,
    /// Pass a server with no replication at all even when read_only is ON.
    #[arg(long)]
    pub allow_read_only: bool,
    /// Keep a master out of the read pool even when no replica is healthy.
    #[arg(long)]
    pub no_master_fallback: bool,
}

/// What probing one replica of a master found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaProbe {
    /// `host:port` probed.
    pub replica: String,
    /// Why it cannot serve reads; empty when healthy.
    pub problems: Vec<String>,
}

/// How the check is told to treat masters and read-only servers.
#[derive(Clone, Copy, Debug)]
pub struct ReadPolicy {
    /// `--max-lag`.
    pub max_lag: Duration,
    /// `--allow-read-only`.
    pub allow_read_only: bool,
    /// Not `--no-master-fallback`.
    pub master_fallback: bool,
}

/// Decides from the facts (and, for a master with replicas, the probes) whether the node serves reads.
pub fn decide(target: &str, facts: &ServerFacts, replicas: usize, probes: &[ReplicaProbe], policy: ReadPolicy) -> Verdict {
    if !facts.channels.is_empty() {
        let problems = replica_problems(&facts.channels, policy.max_lag);
        let sources: Vec<&str> = facts.channels.iter().map(|c| c.source.as_str()).collect();
        let head = format!("{target} replica of {}", sources.join(", "));
        return match problems.first() {
            None => {
                let lag = facts.channels.iter().filter_map(|c| c.lag_seconds).max().unwrap_or(0);
                Verdict::passing(format!("{head}, IO and SQL threads running, lag {lag}s"))
                    .because(format!("every channel is running with lag below --max-lag {}", format_duration(policy.max_lag)))
            }
            Some(first) => {
                let mut v = Verdict::critical(format!("{target}: {first}"));
                v.reasons = problems;
                v
            }
        };
    }
    let read_only = facts.read_only || facts.super_read_only == Some(true);
    if !policy.master_fallback {
        return Verdict::critical(format!("{target} is not a replica; --no-master-fallback keeps it out of the read pool"))
            .because("no replication channel and master fallback is off");
    }
    if replicas == 0 {
        return if read_only && !policy.allow_read_only {
            Verdict::critical(format!("{target} replicates from nothing and has no replica, and read_only=ON: an isolated node"))
                .because("no channel, no replica, read_only=ON: a returning old master or a detached replica serves stale data")
        } else {
            Verdict::passing(format!("{target} is a single master: it serves reads")).because("no replication channel, no connected replica")
        };
    }
    let healthy: Vec<&str> = probes.iter().filter(|p| p.problems.is_empty()).map(|p| p.replica.as_str()).collect();
    let mut reasons: Vec<String> = probes
        .iter()
        .map(|p| match p.problems.first() {
            None => format!("{}: healthy", p.replica),
            Some(first) => format!("{}: {first}", p.replica),
        })
        .collect();
    if healthy.is_empty() {
        let mut v = Verdict::passing(format!("{target} is the master and none of its {replicas} replica(s) is healthy: it serves reads"));
        if reasons.is_empty() {
            reasons.push("no replica could be located to probe".into());
        }
        v.reasons = reasons;
        v
    } else {
        let mut v = Verdict::critical(format!("{target} is the master; {} healthy replica(s) serve reads", healthy.len()));
        v.reasons = reasons;
        v
    }
}

/// The login used to probe replicas: the `--replica-*` options over the check's own login.
fn replica_login(args: &Args, main: &MysqlTarget) -> Result<MysqlTarget> {
    let group = match &args.replica_defaults_file {
        Some(path) => ClientGroup::load(path)?,
        None => ClientGroup::default(),
    };
    let mut login = main.clone();
    if let Some(user) = args.replica_user.clone().or(group.user) {
        login.user = user;
    }
    if let Some(path) = &args.replica_password_file {
        login.password = Some(read_password_file(path)?);
    } else if let Some(p) = group.password {
        login.password = Some(p);
    }
    if group.ssl_ca.is_some() {
        login.tls.tls_ca = group.ssl_ca;
    }
    Ok(login)
}

/// Where the master's replicas listen: `SHOW REPLICAS`/`SHOW SLAVE HOSTS`, else the processlist
/// hosts of the counted dump threads with `--replica-port`. Also says how they were found.
fn locate_replicas(session: &mut Session, threads: &[&DumpThread], default_port: u16) -> (Vec<Address>, String) {
    let fallback_reason = match session.rows_first_known(REPLICA_HOSTS_STATEMENTS) {
        Ok((stmt, rows)) => {
            let hosts = replica_hosts(&rows);
            if !hosts.is_empty() {
                let addrs = hosts.into_iter().map(|h| Address::Tcp { host: h.host, port: h.port }).collect();
                return (addrs, format!("from {stmt}"));
            }
            format!("{stmt} lists no replica host")
        }
        Err(e) => format!("{e:#}"),
    };
    let mut addrs: Vec<Address> = Vec::new();
    for t in threads {
        let a = Address::Tcp { host: t.client_host().to_string(), port: default_port };
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    (addrs, format!("from the processlist hosts with port {default_port} ({fallback_reason})"))
}

/// Probes every replica in parallel within the deadline.
fn probe_all(replicas: &[Address], login: &MysqlTarget, max_lag: Duration, deadline: &Deadline) -> Vec<ReplicaProbe> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .iter()
            .map(|addr| {
                let target = login.at(addr.clone());
                scope.spawn(move || {
                    let problems = (|| -> Result<Vec<String>> {
                        let mut session = Session::open(&target, deadline)?;
                        let (_, rows) = session.rows_first_known(STATUS_STATEMENTS)?;
                        let channels = super::replication::channels(&rows)?;
                        if channels.is_empty() {
                            return Ok(vec!["is not replicating (no channel)".into()]);
                        }
                        Ok(replica_problems(&channels, max_lag))
                    })()
                    .unwrap_or_else(|e| vec![format!("{e:#}")]);
                    ReplicaProbe { replica: addr.to_string(), problems }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(replicas)
            .map(|(h, a)| h.join().unwrap_or_else(|_| ReplicaProbe { replica: a.to_string(), problems: vec!["probe failed".into()] }))
            .collect()
    })
}

/// The `check-mysql-slave` check.
pub struct MysqlSlave;

impl Check for MysqlSlave {
    const NAME: &'static str = "mysql-slave";
    const DEFAULT_PORT: u16 = super::client::DEFAULT_PORT;
    type Args = Args;

    fn server(args: &Args) -> &ServerArgs {
        &args.server
    }

    fn evaluate(args: &Args, run: &Run) -> Result<Outcome> {
        let (target, mut session, facts) = super::observe(&args.server, &args.mysql, run)?;
        let threads: Vec<&DumpThread> = facts.replica_threads(&args.mysql.repl_users).collect();
        let policy = ReadPolicy { max_lag: args.max_lag, allow_read_only: args.allow_read_only, master_fallback: !args.no_master_fallback };
        let mut out_facts = facts.facts(&args.mysql.repl_users);
        let probes = if facts.channels.is_empty() && !threads.is_empty() && policy.master_fallback {
            let own_port = match &target.address {
                Address::Tcp { port, .. } => Some(*port),
                Address::Socket(_) => None,
            };
            let port = args.replica_port.or(facts.port).or(own_port).unwrap_or(super::client::DEFAULT_PORT);
            let (replicas, how) = locate_replicas(&mut session, &threads, port);
            drop(session);
            let login = replica_login(args, &target)?;
            let probes = probe_all(&replicas, &login, args.max_lag, &run.deadline.for_probes());
            out_facts.set("replica_discovery", how).set(
                "probes",
                probes.iter().map(|p| json!({"replica": p.replica, "healthy": p.problems.is_empty(), "problems": p.problems})).collect::<Vec<_>>(),
            );
            probes
        } else {
            Vec::new()
        };
        let verdict = decide(&target.address.to_string(), &facts, threads.len(), &probes, policy);
        out_facts.set("max_lag_seconds", seconds_value(args.max_lag));
        let perfdata = if facts.channels.is_empty() {
            vec![Perfdata::new("healthy_replicas", probes.iter().filter(|p| p.problems.is_empty()).count() as i64, "")]
        } else {
            let lags: Option<Vec<u64>> = facts.channels.iter().map(|c| c.lag_seconds).collect();
            lags.and_then(|l| l.into_iter().max())
                .map(|lag| {
                    let mut p = Perfdata::new("lag", lag as i64, "s");
                    p.crit = Some(seconds_value(args.max_lag).to_string());
                    p
                })
                .into_iter()
                .collect()
        };
        Ok(Outcome { verdict, facts: out_facts, perfdata })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replication::{channels, samples, RowMap};
    use super::*;
    use crate::report::Status;

    fn facts(rows: Vec<RowMap>, read_only: bool) -> ServerFacts {
        ServerFacts {
            version: "8.4.3".into(),
            read_only,
            super_read_only: Some(false),
            port: Some(3306),
            status_statement: "SHOW REPLICA STATUS".into(),
            channels: channels(&rows).unwrap(),
            dump_threads: vec![],
            login: String::new(),
        }
    }
    fn probe(name: &str, healthy: bool) -> ReplicaProbe {
        ReplicaProbe { replica: name.into(), problems: if healthy { vec![] } else { vec!["IO thread is No".into()] } }
    }
    const POLICY: ReadPolicy = ReadPolicy { max_lag: Duration::from_secs(120), allow_read_only: false, master_fallback: true };

    /// Replicas: every captured state, in both spellings, under several lag limits.
    #[test]
    fn replica_table() {
        for rows in [samples::healthy(), samples::io_stopped(), samples::sql_error(), samples::multi_source()] {
            for spelled in [rows.clone(), samples::as_mysql84(&rows)] {
                for max in [0, 1, 120] {
                    let f = facts(spelled.clone(), true);
                    let policy = ReadPolicy { max_lag: Duration::from_secs(max), ..POLICY };
                    let v = decide("r:3306", &f, 0, &[], policy);
                    let healthy = replica_problems(&f.channels, policy.max_lag).is_empty();
                    assert_eq!(v.status == Status::Passing, healthy, "{v:?}");
                    assert_ne!(v.status, Status::Warning);
                }
            }
        }
        let v = decide("r:3306", &facts(samples::healthy(), true), 0, &[], POLICY);
        assert_eq!(v.summary, "r:3306 replica of 127.0.0.1:43306, IO and SQL threads running, lag 0s");
        let v = decide("r:3306", &facts(samples::healthy(), true), 0, &[], ReadPolicy { max_lag: Duration::ZERO, ..POLICY });
        assert!(v.summary.contains("lag 0s, not below --max-lag 0s"), "{}", v.summary);
        let v = decide("r:3306", &facts(samples::multi_source(), false), 0, &[], POLICY);
        assert_eq!(v.reasons.len(), 2, "both broken channels are named: {v:?}");
    }

    /// Servers with no channel: replicas x probes x read_only x allow x fallback.
    #[test]
    fn master_table() {
        let probe_sets: [Vec<ReplicaProbe>; 4] = [
            vec![],
            vec![probe("a", false)],
            vec![probe("a", false), probe("b", true)],
            vec![probe("a", true), probe("b", true)],
        ];
        for replicas in [0usize, 2] {
            for probes in &probe_sets {
                for ro in [false, true] {
                    for allow in [false, true] {
                        for fallback in [true, false] {
                            let policy = ReadPolicy { allow_read_only: allow, master_fallback: fallback, ..POLICY };
                            let probes: &[ReplicaProbe] = if replicas == 0 { &[] } else { probes };
                            let v = decide("m:3306", &facts(vec![], ro), replicas, probes, policy);
                            let any_healthy = probes.iter().any(|p| p.problems.is_empty());
                            let expected = if !fallback {
                                Status::Critical
                            } else if replicas == 0 {
                                if ro && !allow { Status::Critical } else { Status::Passing }
                            } else if any_healthy {
                                Status::Critical
                            } else {
                                Status::Passing
                            };
                            assert_eq!(v.status, expected, "replicas={replicas} probes={probes:?} ro={ro} allow={allow} fallback={fallback}: {v:?}");
                        }
                    }
                }
            }
        }
    }
}
