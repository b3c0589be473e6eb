//! check-mysql-master and check-mysql-slave on a real Group Replication group: three MySQL 9.7
//! members (the sid chroot) in single-primary mode, the monitor with only the documented grants.
//! One writer (the primary, confirmed by the members it lists), secondaries serving reads; a
//! stopped secondary out; the primary frozen until the others elect another, then resumed: its
//! own view says ONLINE PRIMARY for seconds, and its write check never passes beside the new
//! primary (the members it asks name the new one); the new primary killed, another elected, the
//! killed one restarted and rejoining without passing the write check; quorum lost: the lone
//! primary out of both pools; a secondary whose applier is blocked, over --max-recv-queue; multi-primary
//! mode: every member writes and reads; a member in ERROR (its applier failed) out of both pools; a member restarted without the plugin: a standalone master
//! when judged by what it runs, critical under --replication group-replication (the generator's).

use lab::oracle_mysql::{chroot_or_skip, GroupLab};
use lab::pools::{assert_invariants, read_pool, write_pool, Observable};
use lab::*;
use std::time::{Duration, Instant};

#[test]
fn the_group_decides_one_writer_and_a_stale_primary_takes_no_write() {
    let Some(root) = chroot_or_skip("group replication") else { return };
    let lab = GroupLab::start(&root, 3);
    let [m0, m1, m2] = [&lab.members[0], &lab.members[1], &lab.members[2]];

    // Healthy: the primary writes, the secondaries read; the primary is out of the read pool.
    let views = lab.observe().run();
    views.assert(&[m0.addr()], &[m1.addr(), m2.addr()]);
    assert_invariants(&views.0);
    let w = &views.node(m0.addr()).write;
    w.summary_has("is the group's writer: the primary, confirmed by 3 of 3 members (itself included)");
    w.fact_is("role", "group member").fact_is("group.mode", "single-primary");
    views.node(m1.addr()).write.summary_has(&format!("MEMBER_ROLE is SECONDARY: the primary is {}", m0.addr()));
    views.node(m2.addr()).read.summary_has("is an ONLINE SECONDARY member: it serves reads");

    // A secondary leaves the group: out of both pools, the other secondary still reads.
    m2.sql("STOP GROUP_REPLICATION");
    let views = lab.observe().run();
    views.assert(&[m0.addr()], &[m1.addr()]);
    views.node(m2.addr()).read.summary_has("MEMBER_STATE is OFFLINE");
    m2.sql("START GROUP_REPLICATION USER='repl', PASSWORD='repl-pw'");
    lab.wait_online(3);

    // The primary frozen until the others elect another, then resumed.
    m0.proc.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    let new_primary = lab::wait_for("the others elect a new primary", Duration::from_secs(60), || {
        lab.view(1).into_iter().find(|(h, s, r)| s == "ONLINE" && r == "PRIMARY" && *h != m0.host).map(|(h, _, _)| h)
    });
    println!("group: {new_primary} elected {:?} after the primary froze", frozen.elapsed());
    let inventory = lab.inventory();
    m0.proc.signal(libc::SIGCONT);
    let resumed = Instant::now();
    let (mut stale_view_seen, mut flagged) = (Duration::ZERO, false);
    while resumed.elapsed() < Duration::from_secs(8) {
        let old = check(MYSQL_MASTER, lab.check_args(m0));
        let stale = lab.view(0).iter().any(|(h, s, r)| *h == m0.host && s == "ONLINE" && r == "PRIMARY");
        if stale {
            stale_view_seen = resumed.elapsed();
            // check-topology names the two members that each think they are the primary.
            let topo = run(TOPOLOGY, ["--inventory", inventory.to_str().unwrap()]);
            flagged |= topo.stdout.contains("2 members each think they are the primary");
        }
        assert!(!old.in_pool(), "the resumed old primary passed its write check beside {new_primary}: {old}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(stale_view_seen.is_zero() || flagged, "check-topology never named the two members that think they are primary");
    println!("group: the resumed primary's own view said ONLINE PRIMARY until {stale_view_seen:?} after it resumed; its write check never passed");
    let views = lab.observe().run();
    assert_invariants(&views.0);
    assert_eq!(write_pool(&views.0), vec![format!("{new_primary}:{}", m0.port).as_str()], "{views:?}");
    // Expelled, it rejoins on its own (group_replication_autorejoin_tries) as a secondary: it reads
    // only once the group lists it ONLINE.
    let back = views.node(m0.addr());
    let online_again = lab.view(1).iter().any(|(h, s, _)| *h == m0.host && s == "ONLINE");
    assert_eq!(back.read.in_pool(), online_again, "{back:?}");
    println!("group: after the election the old primary is {}", back.read.summary());

    // The new primary killed: the two others elect one of them; the killed one, restarted and
    // started again, joins as a secondary (RECOVERING, then ONLINE) and never passes the write check.
    let port = m0.port;
    let i = lab.members.iter().position(|m| m.host == new_primary).unwrap();
    let mut lab = lab;
    lab.members[i].proc.kill();
    let killed = Instant::now();
    let survivor = if i == 0 { 1 } else { 0 };
    let next = lab::wait_for("the survivors elect a new primary", Duration::from_secs(60), || {
        lab.view(survivor).into_iter().find(|(h, s, r)| s == "ONLINE" && r == "PRIMARY" && *h != new_primary).map(|(h, _, _)| h)
    });
    println!("group: {next} elected {:?} after {new_primary} was killed", killed.elapsed());
    let views = lab.observe().run();
    assert_invariants(&views.0);
    assert_eq!(write_pool(&views.0), vec![format!("{next}:{port}").as_str()], "{views:?}");
    // Restarted without the plugin (a my.cnf that lost it): a standalone, writable server on the
    // member's address. Judged by what it runs it passes beside the primary; the
    // group-replication kind's checks (`--replication group-replication`) keep it out.
    lab.members[i].restart_without_group_replication();
    let standalone = &lab.members[i];
    check(MYSQL_MASTER, lab.check_args(standalone)).code_is(0).fact_is("role", "master");
    let expecting = [lab.check_args(standalone), vec!["--replication".into(), "group-replication".into()]].concat();
    check(MYSQL_MASTER, &expecting).code_is(2).summary_has(&format!(
        "{} is a standalone server (no Galera, no Group Replication, no replication channel), \
         but --replication group-replication expects a Group Replication member: a member started without the plugin takes writes alone",
        standalone.addr()
    ));
    check(MYSQL_SLAVE, &expecting).code_is(2).summary_has("--replication group-replication expects");
    let topo = run(TOPOLOGY, ["--inventory", lab.inventory().to_str().unwrap()]);
    topo.prints(&format!("in no pool (lost redundancy): {}", standalone.host)).prints("expects a Group Replication member");
    // Restarted with it, Group Replication started: it joins as a secondary.
    lab.members[i].restart();
    lab.members[i].sql("START GROUP_REPLICATION USER='repl', PASSWORD='repl-pw'");
    let rejoin = Instant::now();
    while rejoin.elapsed() < Duration::from_secs(30) {
        let v = check(MYSQL_MASTER, lab.check_args(&lab.members[i]));
        assert!(!v.in_pool(), "the restarted old primary passed its write check: {v}");
        if lab.view(survivor).iter().filter(|(_, s, _)| s == "ONLINE").count() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.wait_online(3);
    let views = lab.observe().run();
    assert_invariants(&views.0);
    assert_eq!(write_pool(&views.0), vec![format!("{next}:{port}").as_str()], "one writer after the rejoin: {views:?}");
    assert!(read_pool(&views.0).contains(&lab.members[i].addr().as_str()), "the rejoined member reads: {views:?}");
}

#[test]
fn a_primary_without_quorum_is_in_no_pool() {
    let Some(root) = chroot_or_skip("group replication quorum") else { return };
    let lab = GroupLab::start(&root, 3);
    let [m0, m1, m2] = [&lab.members[0], &lab.members[1], &lab.members[2]];
    m1.proc.signal(libc::SIGSTOP);
    m2.proc.signal(libc::SIGSTOP);
    let start = Instant::now();
    // Before the primary's view marks them UNREACHABLE, it cannot get them to confirm it.
    let (_, after) = check_until(MYSQL_MASTER, lab.check_args(m0), 2, Duration::from_secs(30));
    println!("group: the primary left the write pool {after:?} after both secondaries froze");
    lab::wait_for("the primary sees both secondaries UNREACHABLE", Duration::from_secs(60), || {
        (lab.view(0).iter().filter(|(_, s, _)| s == "UNREACHABLE").count() == 2).then_some(())
    });
    let views = lab.observe().run();
    let w = &views.node(m0.addr()).write;
    w.code_is(2).summary_has("no quorum in its view: 1 of 3 members reachable");
    assert!(write_pool(&views.0).is_empty() && read_pool(&views.0).is_empty(), "{views:?} ({:?})", start.elapsed());
    m1.proc.signal(libc::SIGCONT);
    m2.proc.signal(libc::SIGCONT);
    lab.wait_online(3);
    lab.observe().run().assert(&[m0.addr()], &[m1.addr(), m2.addr()]);

    // A secondary whose applier is blocked (a long LOCK TABLES): its backlog grows, and over
    // --max-recv-queue it leaves the read pool, in its own check and in the primary's view.
    let with_limit = |m: &lab::oracle_mysql::MysqlNode| [lab.check_args(m), vec!["--max-recv-queue".into(), "5".into()]].concat();
    check(MYSQL_SLAVE, with_limit(m1)).code_is(0);
    std::thread::scope(|s| {
        s.spawn(|| m1.try_sql("LOCK TABLES lab.t READ; SELECT SLEEP(12)"));
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..20 {
            m0.sql("INSERT INTO lab.t (node) VALUES ('primary')");
        }
        let lagging = lab::wait_for("the blocked secondary's backlog over the limit", Duration::from_secs(10), || {
            let v = check(MYSQL_SLAVE, with_limit(m1));
            (v.code() == 2).then_some(v)
        });
        lagging.summary_has("applier backlog").summary_has("over --max-recv-queue 5");
        println!("group: {}", lagging.summary());
    });
    lab::wait_for("the backlog applied", Duration::from_secs(30), || (check(MYSQL_SLAVE, with_limit(m1)).code() == 0).then_some(()));

    // Multi-primary mode: every ONLINE member takes writes and serves reads.
    m0.sql("SELECT group_replication_switch_to_multi_primary_mode()");
    let all = [m0.addr(), m1.addr(), m2.addr()];
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    // Each member lifts its own super_read_only as the action reaches it.
    let views = lab::wait_for("every member writing and reading", Duration::from_secs(20), || {
        let views = lab.observe().run();
        (write_pool(&views.0) == all && read_pool(&views.0) == all).then_some(views)
    });
    views
        .node(m1.addr())
        .write
        .summary_has("an ONLINE member in multi-primary mode, confirmed by 3 of 3")
        .fact_is("group.mode", "multi-primary");

    // A member in ERROR: its applier fails on a table it already has (made behind the group's
    // back, outside the binary log); it leaves the group and both pools. MySQL 8.4+ then puts it
    // in offline mode (group_replication_exit_state_action): it refuses the monitor's login, and
    // the checks say why in the server's words.
    m2.sql("SET SESSION sql_log_bin = 0; CREATE TABLE lab.clash (id INT PRIMARY KEY)");
    m0.sql("CREATE TABLE lab.clash (id INT PRIMARY KEY)");
    lab::wait_for("the clashing member in ERROR", Duration::from_secs(30), || {
        lab.view(2).iter().any(|(h, s, _)| *h == m2.host && s == "ERROR").then_some(())
    });
    let views = lab.observe().run();
    let healthy = [m0.addr(), m1.addr()];
    let healthy: Vec<&str> = healthy.iter().map(String::as_str).collect();
    assert_eq!((write_pool(&views.0), read_pool(&views.0)), (healthy.clone(), healthy), "{views:?}");
    let err = views.node(m2.addr());
    for v in [&err.write, &err.read] {
        v.code_is(2)
            .summary_has(&format!("log in to {}", m2.addr()))
            .summary_has("offline mode")
            .summary_has("(GR) leave group on failure");
    }
    println!("group: the member in ERROR: {}", err.read.summary());
}
