//! `check-mysql-slave`: should this MySQL/MariaDB be in the read pool?

use super::discovery::{locate_replicas, probe_replicas, replica_login, ReplicaLoginArgs};
use super::galera::{self, GaleraState, Writer};
use super::group::{self, GroupState};
use super::heartbeat::{self, HeartbeatArgs};
use super::login::MysqlTarget;
use super::replication::{replica_problems, DumpThread};
use super::{MysqlArgs, ServerFacts};
use crate::cli::Common;
use crate::cli::{parse_port, Address, ServerArgs};
use crate::deadline::Deadline;
use crate::duration::{format_duration, parse_duration};
use crate::read_pool::{master_verdict, ReadPolicy, ReplicaHealth};
use crate::report::{seconds_value, Outcome, Subcheck, Thresholds, Verdict};
use crate::runner::Check;
use anyhow::Result;
use clap::Parser;
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
    /// A channel is healthy only with its lag at most this (seconds or a duration).
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
    #[command(flatten)]
    #[allow(missing_docs)]
    pub heartbeat: HeartbeatArgs,
    /// Galera and Group Replication: a member is healthy for reads only with at most N transactions
    /// received and not yet applied (wsrep_local_recv_queue; the applier queue of
    /// replication_group_member_stats; ProxySQL's max_transactions_behind).
    #[arg(long, value_name = "N")]
    pub max_recv_queue: Option<u64>,
    /// Galera: a state-transfer donor serves reads (by default only when no other member can).
    #[arg(long)]
    pub galera_donor_reads: bool,
}

/// Decides from the facts (and, for a master with replicas, what probing them found) whether the
/// node serves reads. `replicas` is the number of counted dump threads.
pub fn decide(
    target: &str,
    facts: &ServerFacts,
    replicas: usize,
    probes: &[ReplicaHealth],
    policy: &ReadPolicy,
    allow_read_only: bool,
) -> Verdict {
    let measured = if facts.channels.is_empty() {
        let healthy = probes.iter().filter(|p| p.is_healthy()).count();
        Subcheck::measured("healthy_replicas", Some(healthy as i64), "", Thresholds::none())
    } else {
        // The worst lag, when every channel knows its own (a NULL lag is named by its channel), in
        // whole seconds rounded up: the perfdata's status agrees with the fractional rule.
        let lags: Option<Vec<f64>> = facts.channels.iter().map(|c| c.lag()).collect();
        let worst = lags.and_then(|l| l.into_iter().reduce(f64::max)).map(|lag| lag.ceil() as i64);
        Subcheck::measured("lag", worst, "s", policy.lag_thresholds())
    };
    rules(target, facts, replicas, probes, policy, allow_read_only).and(measured)
}

/// [`decide`]'s rules, without the measured value.
fn rules(target: &str, facts: &ServerFacts, replicas: usize, probes: &[ReplicaHealth], policy: &ReadPolicy, allow: bool) -> Verdict {
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why)]);
    }
    if !facts.channels.is_empty() {
        let problems = replica_problems(&facts.channels, policy);
        let sources: Vec<&str> = facts.channels.iter().map(|c| c.source.as_str()).collect();
        let head = format!("{target} replica of {}", sources.join(", "));
        return match problems.first() {
            None => {
                let worst = facts.channels.iter().max_by(|a, b| a.lag().unwrap_or(0.0).total_cmp(&b.lag().unwrap_or(0.0)));
                let lag = match worst {
                    Some(c) if c.heartbeat.is_some() => format!("lag {}", c.lag_words()),
                    Some(c) => format!("{} {} (no heartbeat)", c.lag_column, c.lag_words()),
                    None => String::new(),
                };
                let rule = format!("every channel is running with lag within --max-lag {}", limit_text(policy));
                Verdict::new(format!("{head}, IO and SQL threads running, {lag}"), [Subcheck::passing(rule)])
            }
            Some(first) => Verdict::new(format!("{target}: {first}"), problems.iter().map(Subcheck::critical)),
        };
    }
    let read_only = facts.read_only || facts.super_read_only == Some(true);
    if policy.master_fallback && replicas == 0 && read_only && !allow {
        return Verdict::new(
            format!("{target} replicates from nothing and has no replica, and read_only=ON: an isolated node"),
            [Subcheck::critical("no channel, no replica, read_only=ON: a returning old master or a detached replica serves stale data")],
        );
    }
    if replicas > 0 && probes.is_empty() {
        let unlocated = ReplicaHealth::unprobed(format!("{replicas} dump thread(s)"), "no replica could be located to probe");
        return master_verdict(target, &[unlocated], policy);
    }
    master_verdict(target, probes, policy)
}

/// The read rule for a Galera node `g`: in service, a healthy member within `--max-recv-queue`;
/// the writer (`writer`) only when no other member (`others`) can serve reads, by the one
/// read-pool rule.
pub fn decide_galera(
    target: &str,
    facts: &ServerFacts,
    g: &GaleraState,
    writer: &Writer,
    others: &[ReplicaHealth],
    policy: &ReadPolicy,
    (max_queue, donor_reads): (Option<u64>, bool),
) -> Verdict {
    let queue =
        Subcheck::measured("recv_queue", Some(g.recv_queue as i64), "", max_queue.map(Thresholds::crit_above_count).unwrap_or_default());
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why), queue]);
    }
    if g.donor() {
        let healthy = others.iter().filter(|o| o.is_healthy()).count();
        return if donor_reads {
            Verdict::new(
                format!("{target} is a state-transfer donor: it serves reads (--galera-donor-reads)"),
                [Subcheck::passing("Donor/Desynced, allowed by --galera-donor-reads"), queue],
            )
        } else if healthy == 0 {
            Verdict::new(
                format!("{target} is a state-transfer donor and no other member can serve reads: it serves them"),
                [Subcheck::warning("Donor/Desynced: in the read pool only because taking it out would empty the pool"), queue],
            )
        } else {
            let why =
                format!("wsrep_local_state is 2 ({}): a state-transfer donor, {healthy} other member(s) serve reads", g.state_comment);
            Verdict::new(format!("{target} is out of the Galera cluster's service: {why}"), [Subcheck::critical(why), queue])
        };
    }
    if let Some(why) = g.read_problem(max_queue) {
        return Verdict::new(format!("{target} is out of the Galera cluster's service: {why}"), [Subcheck::critical(why), queue]);
    }
    match writer {
        Writer::This(_) if g.cluster_size > 1 || !others.is_empty() => {
            master_verdict(&format!("{target} (the Galera writer)"), others, policy).and(queue)
        }
        Writer::This(_) => master_verdict(target, &[], policy).and(queue),
        Writer::Another(why) => Verdict::new(
            format!("{target} is a Synced Galera member: it serves reads"),
            [Subcheck::passing(format!("Synced member of the Primary component ({} members); {why}", g.cluster_size)), queue],
        ),
    }
}

/// The read rule for a Group Replication member `g`: in service, ONLINE with quorum in its view, its
/// applier backlog within `--max-recv-queue`; the primary (single-primary mode) only when no
/// secondary can serve, by the one read-pool rule, from its own view of the others.
pub fn decide_group(
    target: &str,
    facts: &ServerFacts,
    g: &GroupState,
    policy: &ReadPolicy,
    (max_queue, one_of_many): (Option<u64>, bool),
) -> Verdict {
    let own = g.own();
    let backlog =
        Subcheck::measured("backlog", own.backlog.map(|b| b as i64), "", max_queue.map(Thresholds::crit_above_count).unwrap_or_default());
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why), backlog]);
    }
    if let Some(why) = g.out_of_group().or_else(|| group::member_problem(own, max_queue)) {
        return Verdict::new(format!("{target} is out of the group's service: {why}"), [Subcheck::critical(why), backlog]);
    }
    if (g.single_primary || one_of_many) && g.writes(one_of_many) {
        return master_verdict(&format!("{target} (the group's writer)"), &g.others_as_replicas(max_queue), policy).and(backlog);
    }
    let (up, all) = g.reachable_count();
    Verdict::new(
        format!("{target} is an ONLINE {} member: it serves reads", own.role),
        [Subcheck::passing(format!("ONLINE {}, quorum in its view ({up} of {all} reachable)", own.role)), backlog],
    )
}

fn limit_text(policy: &ReadPolicy) -> String {
    policy.max_lag.map(format_duration).unwrap_or_else(|| "none".into())
}

/// The `check-mysql-slave` check.
pub struct MysqlReplica;

impl Check for MysqlReplica {
    const NAME: &'static str = "mysql-slave";
    type Args = Args;
    type Target = MysqlTarget;

    fn common(args: &Args) -> Common<'_> {
        args.server.common(super::login::DEFAULT_PORT)
    }

    fn resolve(args: &Args) -> Result<MysqlTarget> {
        MysqlTarget::resolve(&args.server, &args.mysql)
    }

    fn describe(target: &MysqlTarget) -> String {
        target.address.to_string()
    }

    fn warm_up() {
        super::session::warm_up_driver()
    }

    fn evaluate(args: &Args, target: &MysqlTarget, deadline: &Deadline) -> Result<Outcome> {
        let super::Observation { mut session, mut facts, login_warning } = super::observe(target, deadline)?;
        if let Some(outcome) = super::wrong_replication(&args.mysql, target, &facts) {
            return Ok(outcome);
        }
        // A cluster member's lag is its backlog, not seconds.
        let cluster_policy = ReadPolicy { max_lag: None, master_fallback: !args.no_master_fallback };
        if let Some(g) = &facts.group {
            drop(session);
            let one_of_many = args.mysql.cluster.one_group_writer();
            let verdict = decide_group(&target.address.to_string(), &facts, g, &cluster_policy, (args.max_recv_queue, one_of_many));
            let out = facts.facts(&args.mysql.repl_users, target);
            return Ok(Outcome::new(super::with_login_warning(verdict, login_warning.as_deref()), out));
        }
        if let Some(g) = &facts.galera {
            drop(session);
            let mode = args.mysql.cluster.galera_writers;
            // The writer rule and, when this node is the writer, the read-pool rule need every other
            // member: ask them all at once.
            let peers = if g.read_problem(args.max_recv_queue).is_none() || g.donor() {
                galera::ask_members(&g.others(), target, deadline.for_probes())
            } else {
                Vec::new()
            };
            let writer = match mode {
                galera::Writers::All => galera::Writer::Another("--galera-writers all: every member takes writes and serves reads".into()),
                galera::Writers::One => galera::writer(g, &peers, mode),
            };
            let others = galera::as_replicas(&peers, args.max_recv_queue);
            let limits = (args.max_recv_queue, args.galera_donor_reads);
            let verdict = decide_galera(&target.address.to_string(), &facts, g, &writer, &others, &cluster_policy, limits);
            let mut out = facts.facts(&args.mysql.repl_users, target);
            out.set("galera_writers", mode.to_string());
            if !peers.is_empty() {
                out.set("members", galera::members_fact(&peers));
            }
            return Ok(Outcome::new(super::with_login_warning(verdict, login_warning.as_deref()), out));
        }
        heartbeat::read(&mut session, &args.heartbeat, &mut facts.channels)?;
        super::link::read(&mut session, &mut facts.channels);
        let threads: Vec<&DumpThread> = facts.replica_threads(&args.mysql.repl_users).collect();
        let policy = ReadPolicy { max_lag: Some(args.max_lag), master_fallback: !args.no_master_fallback };
        let mut out_facts = facts.facts(&args.mysql.repl_users, target);
        let probes = if facts.channels.is_empty() && !threads.is_empty() && policy.master_fallback {
            let own_port = match &target.address {
                Address::Tcp { port, .. } => Some(*port),
                Address::Socket(_) => None,
            };
            let port = args.replica_port.or(facts.port).or(own_port).unwrap_or(super::login::DEFAULT_PORT);
            let located = locate_replicas(&mut session, &threads, port);
            drop(session);
            let login_args = ReplicaLoginArgs {
                user: args.replica_user.clone(),
                password_file: args.replica_password_file.clone(),
                defaults_file: args.replica_defaults_file.clone(),
            };
            let login = replica_login(&login_args, target)?;
            let probes = probe_replicas(&located.addresses, &login, policy, &args.heartbeat, deadline.for_probes());
            out_facts.set("replica_discovery", located.how).set("probes", crate::read_pool::probes_fact(&probes));
            probes
        } else {
            Vec::new()
        };
        let verdict = decide(&target.address.to_string(), &facts, threads.len(), &probes, &policy, args.allow_read_only);
        let verdict = super::with_login_warning(verdict, login_warning.as_deref());
        out_facts.set("max_lag_seconds", seconds_value(args.max_lag));
        if !facts.channels.is_empty() && args.heartbeat.heartbeat_table.is_none() {
            let max = args.max_lag.as_secs_f64();
            let blind: Vec<String> = facts.channels.iter().filter_map(|c| c.link.as_ref()?.blind_spot(max)).collect();
            let evidence = if blind.is_empty() {
                "the server's own lag and the link's silence (the last heartbeat and transaction it received)".to_string()
            } else {
                format!(
                    "the server's own lag (Seconds_Behind_Source/Master) only: a link that stalls silently reads 0 until \
                     slave_net_timeout; --heartbeat-table measures it ({})",
                    blind.join("; ")
                )
            };
            out_facts.set("lag_evidence", evidence);
        }
        Ok(Outcome::new(verdict, out_facts))
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
            innodb_read_only: false,
            offline_mode: None,
            port: Some(3306),
            status_statement: "SHOW REPLICA STATUS".into(),
            channels: channels(&rows).unwrap(),
            dump_threads: vec![],
            galera: None,
            group: None,
        }
    }
    fn probe(name: &str, healthy: bool) -> ReplicaHealth {
        ReplicaHealth::judged(name, (!healthy).then(|| "IO thread is No".into()))
    }
    fn policy(max: u64, fallback: bool) -> ReadPolicy {
        ReadPolicy { max_lag: Some(Duration::from_secs(max)), master_fallback: fallback }
    }

    /// Replicas: every captured state, in both spellings, under several lag limits.
    #[test]
    fn replica_table() {
        for rows in [samples::healthy(), samples::io_stopped(), samples::sql_error(), samples::multi_source()] {
            for spelled in [rows.clone(), samples::as_mysql84(&rows)] {
                for max in [0, 1, 120] {
                    let f = facts(spelled.clone(), true);
                    let p = policy(max, true);
                    let v = decide("r:3306", &f, 0, &[], &p, false);
                    let healthy = replica_problems(&f.channels, &p).is_empty();
                    assert_eq!(v.status() == Status::Passing, healthy, "{v:?}");
                    assert_ne!(v.status(), Status::Warning);
                }
            }
        }
        let v = decide("r:3306", &facts(samples::healthy(), true), 0, &[], &policy(120, true), false);
        assert_eq!(v.summary(), "r:3306 replica of 127.0.0.1:43306, IO and SQL threads running, Seconds_Behind_Master 0s (no heartbeat)");
        // lag 0 with --max-lag 0 passes: lag <= max.
        let v = decide("r:3306", &facts(samples::healthy(), true), 0, &[], &policy(0, true), false);
        assert_eq!(v.status(), Status::Passing, "{v:?}");
        let mut lagging = facts(samples::healthy(), true);
        lagging.channels[0].lag_seconds = Some(5);
        let v = decide("r:3306", &lagging, 0, &[], &policy(4, true), false);
        assert!(v.summary().contains("lag 5s, over --max-lag 4s"), "{}", v.summary());
        let v = decide("r:3306", &facts(samples::multi_source(), false), 0, &[], &policy(120, true), false);
        assert_eq!(v.reasons().len(), 2, "both broken channels are named: {v:?}");
        let mut offline = facts(samples::healthy(), true);
        offline.offline_mode = Some(true);
        assert_eq!(decide("r:3306", &offline, 0, &[], &policy(120, true), false).status(), Status::Critical);
    }

    /// The whole text: `--max-lag` shows in the lag perfdata (the worst channel's) and decides.
    #[test]
    fn the_output_carries_the_limit_that_decided() {
        let render = |v: Verdict| crate::report::Report::new("mysql-slave", "r", Outcome::bare(v)).render_text();
        let mut lagging = facts(samples::healthy(), true);
        lagging.channels[0].lag_seconds = Some(5);
        assert_eq!(
            render(decide("r:3306", &lagging, 0, &[], &policy(4, true), false)),
            "MYSQL-SLAVE CRITICAL: r:3306: the default channel from 127.0.0.1:43306: lag 5s, over --max-lag 4s | lag=5s;;4\n\
             - the default channel from 127.0.0.1:43306: lag 5s, over --max-lag 4s\n"
        );
        assert_eq!(
            render(decide("r:3306", &lagging, 0, &[], &policy(5, true), false)),
            "MYSQL-SLAVE OK: r:3306 replica of 127.0.0.1:43306, IO and SQL threads running, Seconds_Behind_Master 5s (no heartbeat) | lag=5s;;5\n\
             - every channel is running with lag within --max-lag 5s\n"
        );
    }

    /// A heartbeat decides when it is worse than the server's own figure (a stalled link: the
    /// threads say Yes and Seconds_Behind_Master 0), and a missing one is critical, named.
    #[test]
    fn the_heartbeat_tells_the_lag_the_server_does_not() {
        use super::super::heartbeat::Heartbeat;
        let render = |v: Verdict| crate::report::Report::new("mysql-slave", "r", Outcome::bare(v)).render_text();
        let mut stalled = facts(samples::healthy(), true);
        stalled.channels[0].lag_seconds = Some(0);
        stalled.channels[0].heartbeat = Some(Heartbeat::Age(14.2));
        assert_eq!(
            render(decide("r:3306", &stalled, 0, &[], &policy(5, true), false)),
            "MYSQL-SLAVE CRITICAL: r:3306: the default channel from 127.0.0.1:43306: lag 14.2s (heartbeat 14.2s old, \
             Seconds_Behind_Master 0s), over --max-lag 5s | lag=15s;;5\n\
             - the default channel from 127.0.0.1:43306: lag 14.2s (heartbeat 14.2s old, Seconds_Behind_Master 0s), over --max-lag 5s\n"
        );
        stalled.channels[0].heartbeat = Some(Heartbeat::Age(0.4));
        assert_eq!(
            decide("r:3306", &stalled, 0, &[], &policy(5, true), false).summary(),
            "r:3306 replica of 127.0.0.1:43306, IO and SQL threads running, lag 0.4s (heartbeat 0.4s old, Seconds_Behind_Master 0s)"
        );
        // The server's own figure still decides when it is the worse.
        stalled.channels[0].lag_seconds = Some(9);
        assert_eq!(decide("r:3306", &stalled, 0, &[], &policy(5, true), false).status(), Status::Critical);
        stalled.channels[0].heartbeat = Some(Heartbeat::Missing("no heartbeat: there is no row for server_id 1".into()));
        stalled.channels[0].lag_seconds = Some(0);
        let v = decide("r:3306", &stalled, 0, &[], &policy(5, true), false);
        assert_eq!(v.status(), Status::Critical);
        assert!(v.summary().ends_with("no heartbeat: there is no row for server_id 1"), "{}", v.summary());
    }

    /// Servers with no channel: replicas x probes x read_only x allow x fallback.
    #[test]
    fn master_table() {
        let probe_sets: [Vec<ReplicaHealth>; 4] =
            [vec![], vec![probe("a", false)], vec![probe("a", false), probe("b", true)], vec![probe("a", true), probe("b", true)]];
        for replicas in [0usize, 2] {
            for probes in &probe_sets {
                for ro in [false, true] {
                    for allow in [false, true] {
                        for fallback in [true, false] {
                            let probes: &[ReplicaHealth] = if replicas == 0 { &[] } else { probes };
                            let v = decide("m:3306", &facts(vec![], ro), replicas, probes, &policy(120, fallback), allow);
                            let any_healthy = probes.iter().any(ReplicaHealth::is_healthy);
                            let expected = if !fallback {
                                Status::Critical
                            } else if replicas == 0 {
                                if ro && !allow {
                                    Status::Critical
                                } else {
                                    Status::Passing
                                }
                            } else if any_healthy {
                                Status::Critical
                            } else if probes.is_empty() {
                                // Dump threads, but no replica located to ask: it may serve reads too.
                                Status::Warning
                            } else {
                                Status::Passing
                            };
                            assert_eq!(
                                v.status(),
                                expected,
                                "replicas={replicas} probes={probes:?} ro={ro} allow={allow} fallback={fallback}: {v:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A state-transfer donor: out while another member serves reads, in when it would otherwise
    /// empty the pool (warning), in with --galera-donor-reads; an operator's desync never.
    #[test]
    fn a_galera_donor_reads_only_when_allowed_or_needed() {
        use super::super::galera::GaleraState;
        let donor = GaleraState {
            cluster_status: "Primary".into(),
            ready: true,
            local_state: 2,
            state_comment: "Donor/Desynced".into(),
            local_index: 1,
            cluster_size: 3,
            conf_id: Some(3),
            incoming: vec![],
            gcomm_uuid: None,
            recv_queue: 0,
            desync: false,
            reject_queries: "NONE".into(),
            maint_mode: None,
        };
        let f = facts(vec![], false);
        let others = [probe("10.0.0.1:3306", true)];
        let none_healthy = [probe("10.0.0.1:3306", false)];
        let writer = Writer::Another("10.0.0.1:3306 joined the component earlier".into());
        let p = policy(0, true);
        let judge = |others: &[ReplicaHealth], allow: bool, g: &GaleraState| {
            decide_galera("d:3306", &f, g, &writer, others, &p, (None, allow)).status()
        };
        assert_eq!(judge(&others, false, &donor), Status::Critical);
        assert_eq!(judge(&none_healthy, false, &donor), Status::Warning);
        assert_eq!(judge(&others, true, &donor), Status::Passing);
        let desynced = GaleraState { desync: true, ..donor };
        assert_eq!(judge(&none_healthy, true, &desynced), Status::Critical, "an operator's desync is never a donor");
    }
}
