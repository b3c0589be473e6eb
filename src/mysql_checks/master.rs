//! `check-mysql-master`: is this MySQL/MariaDB the writable master?

use super::galera::{self, GaleraState, Writer};
use super::group::{self, GroupState};
use super::login::MysqlTarget;
use super::{MysqlArgs, ServerFacts};
use crate::cli::Common;
use crate::cli::ServerArgs;
use crate::deadline::Deadline;
use crate::report::{Outcome, Subcheck, Verdict};
use crate::runner::Check;
use crate::write_pool::ReplicaCount;
use anyhow::Result;
use clap::Parser;

/// Command line of `check-mysql-master`.
#[derive(Parser, Debug)]
#[command(
    name = "check-mysql-master",
    version,
    about = "Passing (0) iff this MySQL/MariaDB is the writable master: no replication channel, read_only off.",
    after_help = "Exit codes: 0 passing, 1 warning, 2 critical. Drop-in call: check-mysql-master 3306 (credentials from --defaults-file)"
)]
pub struct Args {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub mysql: MysqlArgs,
    /// Pass even with read_only/super_read_only on (the original scripts' behaviour).
    #[arg(long)]
    pub allow_read_only: bool,
    /// Warning while fewer than N replicas are connected (dump threads).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_replicas: u32,
}

/// Decides from the facts: no channel, writable (unless allowed), enough replicas. `replicas`
/// (warning below `--min-replicas`) is measured whatever the role.
pub fn decide(target: &str, facts: &ServerFacts, allow_read_only: bool, replicas: usize, min_replicas: u32) -> Verdict {
    let count = ReplicaCount { label: "replicas", counted: "connected", count: replicas, min: min_replicas };
    let connected = count.measured();
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why), connected]);
    }
    if !facts.channels.is_empty() {
        let names: Vec<String> = facts.channels.iter().map(|c| format!("{} from {}", c.label(), c.source)).collect();
        // Every source, as the read check names them (a multi-source replica has several).
        let sources: Vec<&str> = facts.channels.iter().map(|c| c.source.as_str()).collect();
        let rule = Subcheck::critical(format!("{} lists {}", facts.status_statement, names.join(", ")));
        return Verdict::new(format!("{target} is a replica of {}, not the master", sources.join(", ")), [rule, connected]);
    }
    let mut verdict = Verdict::new(
        format!("{target} is master, writable, {replicas} replica(s) connected"),
        [Subcheck::passing("no replication channel")],
    );
    for (name, value) in [("read_only", Some(facts.read_only)), ("super_read_only", facts.super_read_only)] {
        if value == Some(true) {
            if allow_read_only {
                verdict = verdict
                    .and(Subcheck::passing(format!("{name} is ON, allowed by --allow-read-only")))
                    .with_summary(format!("{target} is master ({name}=ON allowed), {replicas} replica(s) connected"));
            } else {
                let rule = Subcheck::critical(format!("{name} is ON (a returning old master, or a node not promoted yet)"));
                return Verdict::new(format!("{target} has no replication channel but {name}=ON: not writable"), [rule, connected]);
            }
        }
    }
    verdict.and(count.decided())
}

/// The write rule for a Galera node `g` (see [`super::galera`]): in service, a healthy member,
/// writable, and the writer (`writer`, from the one-writer rule).
pub fn decide_galera(target: &str, facts: &ServerFacts, g: &GaleraState, writer: &Writer, allow_read_only: bool) -> Verdict {
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why)]);
    }
    if let Some(why) = g.out_of_membership() {
        return Verdict::new(format!("{target} is out of the Galera cluster's service: {why}"), [Subcheck::critical(why)]);
    }
    let member = Subcheck::passing(format!("Synced member of the Primary component ({} members)", g.cluster_size));
    for (name, value) in [("read_only", Some(facts.read_only)), ("super_read_only", facts.super_read_only)] {
        if value == Some(true) && !allow_read_only {
            let rule = Subcheck::critical(format!("{name} is ON"));
            return Verdict::new(format!("{target} is a Galera member with {name}=ON: not writable"), [member, rule]);
        }
    }
    match writer {
        Writer::This(why) => Verdict::new(format!("{target} is the Galera writer: {why}"), [member, Subcheck::passing(why.clone())]),
        Writer::Another(why) => Verdict::new(
            format!("{target} is a Synced Galera member, not the writer: {why}"),
            [member, Subcheck::critical(format!("not the writer: {why}"))],
        ),
    }
}

/// The write rule for a Group Replication member `g` (see [`super::group`]): in service, ONLINE with
/// quorum in its view, the confirmed primary (`writer`), writable.
pub fn decide_group(target: &str, facts: &ServerFacts, g: &GroupState, writer: &Writer, allow_read_only: bool) -> Verdict {
    if let Some(why) = facts.out_of_service() {
        return Verdict::new(format!("{target} is out of service: {why}"), [Subcheck::critical(why)]);
    }
    if let Some(why) = g.out_of_group() {
        return Verdict::new(format!("{target} is out of the group's service: {why}"), [Subcheck::critical(why)]);
    }
    let (up, all) = g.reachable_count();
    let member = Subcheck::passing(format!("ONLINE member, quorum in its view ({up} of {all} reachable)"));
    let why = match writer {
        Writer::Another(why) => {
            return Verdict::new(
                format!("{target} is an ONLINE group member, not the writer: {why}"),
                [member, Subcheck::critical(why.clone())],
            )
        }
        Writer::This(why) => why.clone(),
    };
    for (name, value) in [("super_read_only", facts.super_read_only), ("read_only", Some(facts.read_only))] {
        if value == Some(true) && !allow_read_only {
            let rule = Subcheck::critical(format!("{name} is ON"));
            return Verdict::new(format!("{target} is the group's primary but {name}=ON: not writable"), [member, rule]);
        }
    }
    Verdict::new(format!("{target} is the group's writer: {why}"), [member, Subcheck::passing(why)])
}

/// The `check-mysql-master` check.
pub struct MysqlMaster;

impl Check for MysqlMaster {
    const NAME: &'static str = "mysql-master";
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
        let super::Observation { mut session, facts, login_warning } = super::observe(target, deadline)?;
        if let Some(outcome) = super::wrong_replication(&args.mysql, target, &facts) {
            return Ok(outcome);
        }
        let facts = &facts;
        if let Some(g) = &facts.group {
            let one_of_many = args.mysql.cluster.one_group_writer();
            let confirms = g.out_of_group().is_none() && g.writes(one_of_many);
            let peers = if confirms { group::ask_members(&g.others_online(), target, deadline.for_probes()) } else { Vec::new() };
            let writer = group::writer(g, &peers, one_of_many);
            let verdict = decide_group(&target.address.to_string(), facts, g, &writer, args.allow_read_only);
            let mut out = facts.facts(&args.mysql.repl_users, target);
            if !peers.is_empty() {
                out.set("confirmations", group::peers_fact(&peers));
            }
            return Ok(Outcome::new(super::with_login_warning(verdict, login_warning.as_deref()), out));
        }
        if let Some(g) = &facts.galera {
            let (verdict, peers) = galera_verdict(args, target, facts, g, &mut session, login_warning.as_deref(), deadline);
            let mut out = facts.facts(&args.mysql.repl_users, target);
            out.set("galera_writers", args.mysql.cluster.galera_writers.to_string());
            if !peers.is_empty() {
                out.set("members", galera::members_fact(&peers));
            }
            return Ok(Outcome::new(verdict, out));
        }
        let replicas = facts.replica_threads(&args.mysql.repl_users).count();
        let verdict = decide(&target.address.to_string(), facts, args.allow_read_only, replicas, args.min_replicas);
        Ok(Outcome::new(super::with_login_warning(verdict, login_warning.as_deref()), facts.facts(&args.mysql.repl_users, target)))
    }
}

/// The Galera write verdict: the members that may be the writer are asked only when the rule needs
/// them (a healthy member, one writer): those that joined earlier, when the members table says.
fn galera_verdict(
    args: &Args,
    target: &MysqlTarget,
    facts: &ServerFacts,
    g: &GaleraState,
    session: &mut super::session::Session,
    login_warning: Option<&str>,
    deadline: &Deadline,
) -> (Verdict, Vec<galera::Peer>) {
    let mode = args.mysql.cluster.galera_writers;
    let needs_peers = g.out_of_membership().is_none() && mode == galera::Writers::One;
    let peers = if needs_peers {
        let table = galera::members_table(session, g);
        galera::ask_members(&galera::to_ask(g, table.as_deref()), target, deadline.for_probes())
    } else {
        Vec::new()
    };
    let writer = galera::writer(g, &peers, mode);
    let verdict = decide_galera(&target.address.to_string(), facts, g, &writer, args.allow_read_only);
    (super::with_login_warning(verdict, login_warning), peers)
}

#[cfg(test)]
mod tests {
    use super::super::replication::{channels, samples, DumpThread};
    use super::*;
    use crate::report::Status;

    fn facts(rows: Vec<super::super::replication::RowMap>, read_only: bool, super_read_only: Option<bool>) -> ServerFacts {
        ServerFacts {
            version: "10.11.19-MariaDB".into(),
            read_only,
            super_read_only,
            innodb_read_only: false,
            offline_mode: None,
            port: Some(3306),
            status_statement: "SHOW ALL REPLICAS STATUS".into(),
            channels: channels(&rows).unwrap(),
            dump_threads: vec![DumpThread { user: "repl".into(), host: "10.0.0.3:4000".into() }],
            galera: None,
            group: None,
        }
    }

    /// The whole table: channels x read_only x super_read_only x --allow-read-only x --min-replicas.
    #[test]
    fn decision_table() {
        let row_sets = [vec![], samples::healthy(), samples::io_stopped(), samples::sql_error(), samples::multi_source()];
        for rows in row_sets {
            for ro in [false, true] {
                for sro in [None, Some(false), Some(true)] {
                    for allow in [false, true] {
                        for min in [0, 1, 2] {
                            let f = facts(rows.clone(), ro, sro);
                            let v = decide("m:3306", &f, allow, 1, min);
                            let expected = if !f.channels.is_empty() || ((ro || sro == Some(true)) && !allow) {
                                Status::Critical
                            } else if min > 1 {
                                Status::Warning
                            } else {
                                Status::Passing
                            };
                            assert_eq!(v.status(), expected, "rows={} ro={ro} sro={sro:?} allow={allow} min={min}: {v:?}", rows.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn messages_name_the_cause() {
        let v = decide("m:3306", &facts(samples::multi_source(), false, None), false, 0, 0);
        assert!(v.summary().contains("is a replica of 127.0.0.1:"), "{}", v.summary());
        // Both sources of a multi-source replica, as the read check names them.
        assert_eq!(
            v.summary().matches("127.0.0.1:").count(),
            facts(samples::multi_source(), false, None).channels.len(),
            "{}",
            v.summary()
        );
        assert!(v.reasons()[0].contains("channel 'second' from 127.0.0.1:1"), "{:?}", v.reasons());
        let v = decide("m:3306", &facts(vec![], true, None), false, 0, 0);
        assert_eq!(v.summary(), "m:3306 has no replication channel but read_only=ON: not writable");
        let v = decide("m:3306", &facts(vec![], false, Some(true)), false, 0, 0);
        assert!(v.summary().contains("super_read_only=ON"));
        // innodb_read_only and offline_mode take it out whatever else holds, --allow-read-only too.
        let mut f = facts(vec![], false, None);
        f.innodb_read_only = true;
        let v = decide("m:3306", &f, true, 1, 0);
        assert_eq!(v.status(), Status::Critical);
        assert!(v.summary().contains("innodb_read_only=ON"), "{v:?}");
        let mut f = facts(vec![], false, Some(false));
        f.offline_mode = Some(true);
        assert!(decide("m:3306", &f, false, 1, 0).summary().contains("offline_mode=ON"));
    }

    /// The whole text: `--min-replicas` shows in the perfdata and decides; the login warning
    /// follows the rules and worsens a passing master to warning.
    #[test]
    fn the_output_carries_the_limit_that_decided() {
        let render = |v: Verdict| crate::report::Report::new("mysql-master", "m", Outcome::bare(v)).render_text();
        let v = decide("m:3306", &facts(vec![], false, Some(false)), false, 1, 2);
        assert_eq!(
            render(v.clone()),
            "MYSQL-MASTER WARNING: m:3306 is master, writable, 1 replica(s) connected; 1 replica(s) connected, fewer than --min-replicas 2 | replicas=1;2:\n\
             - no replication channel\n\
             - 1 replica(s) connected, fewer than --min-replicas 2\n"
        );
        let v = super::super::with_login_warning(decide("m:3306", &facts(vec![], false, Some(false)), false, 2, 2), Some("cached login"));
        assert_eq!(render(v), "MYSQL-MASTER WARNING: m:3306 is master, writable, 2 replica(s) connected; cached login | replicas=2;2:\n- no replication channel\n- cached login\n");
    }
}
