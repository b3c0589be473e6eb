//! check-redis-master and check-redis-slave against real redis-server and redis-sentinel processes.

use lab::pools::{assert_invariants, read_pool, write_pool, Observable, NOBODY};
use lab::redis_lab::{redis_cmd, replica_of, RedisLab, RedisNode};
use lab::*;
use std::time::{Duration, Instant};

const M: &str = REDIS_MASTER;
const S: &str = REDIS_SLAVE;

fn args(port: u16, extra: &[String]) -> Vec<String> {
    let mut v = vec![port.to_string()];
    v.extend(extra.iter().cloned());
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn healthy_topology() {
    let lab = RedisLab::builder().replicas(2).sentinels(3).start();
    let views = lab.observe().write_args(&lab.sentinel_args()).read_args(&["--max-lag", "30"]).run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr(), lab.replicas[1].addr()]);

    let master_json = &views.node(lab.master.addr()).write;
    // Whatever server runs (Redis 7.0, Redis 6.2, Valkey 8.1: see the Makefile), the facts name it.
    let server = std::process::Command::new(lab::redis_lab::server_program()).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&server.stdout).to_string();
    if version.starts_with("Valkey") {
        assert_eq!(master_json.fact("server_name"), "valkey", "{master_json}");
        assert!(version.contains(&format!("v={}", master_json.fact("valkey_version").as_str().unwrap())), "{version}: {master_json}");
    } else {
        assert!(version.contains(&format!("v={}", master_json.fact("redis_version").as_str().unwrap())), "{version}: {master_json}");
    }
    assert_eq!(master_json.json["check"], "redis-master");
    assert_eq!(master_json.target(), lab.master.addr());
    assert_eq!(master_json.fact("role"), "master");
    assert_eq!(master_json.fact("connected_replicas").as_array().unwrap().len(), 2);
    assert_eq!(master_json.fact("sentinels").as_array().unwrap().len(), 3);
    assert!(master_json.reasons()[1].starts_with("3 of 3 Sentinels name this node"), "{master_json}");
    let replica_json = &views.node(lab.replicas[0].addr()).read;
    assert_eq!(replica_json.json["check"], "redis-slave");
    assert_eq!(replica_json.fact("master_link_status"), "up");
    replica_json.fact_is("master", lab.master.addr().as_str());
    assert!(views.node(lab.master.addr()).read.summary().contains("2 healthy replica(s) serve reads"));

    // The drop-in call of the original scripts, text output in the monitoring-plugins style.
    let r = run(S, [&lab.replicas[0].port_arg()]);
    r.exits(0);
    let first = r.stdout.lines().next().unwrap();
    let expected = format!("REDIS-SLAVE OK: {} replica of {}, link up, lag ", lab.replicas[0].addr(), lab.master.addr());
    assert!(first.starts_with(&expected) && first.contains(" | lag="), "{first}");
    r.prints("master_link_status: up");
    let r = run(M, [&lab.replicas[0].port_arg()]);
    r.exits(2);
    assert!(
        r.stdout.starts_with(&format!("REDIS-MASTER CRITICAL: {} is a replica of {}", lab.replicas[0].addr(), lab.master.addr())),
        "{}",
        r.stdout
    );

    // --min-replicas: a warning, mapped to 0 for keepalived with --warning-exit-code.
    let v = check(M, [&lab.master.port_arg(), "--min-replicas", "3"]);
    v.code_is(1);
    assert_eq!(v.status(), "warning");
    let v = check(M, [&lab.master.port_arg(), "--min-replicas", "3", "--warning-exit-code", "0"]);
    assert_eq!((v.code(), v.status()), (0, "warning"));
    let r = run(M, [&lab.master.port_arg(), "--min-replicas", "2"]);
    r.exits(0);
}

#[test]
fn replica_stopped() {
    let mut lab = RedisLab::builder().replicas(2).start();
    lab.replicas[1].proc.kill();
    lab.wait_replicas_online(lab.master.port, 1);
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr()]);
    let msg = views.node(lab.replicas[1].addr()).read.summary();
    assert_eq!(msg, format!("cannot connect to {}: connection refused", lab.replicas[1].addr()));
    assert_invariants(&views);
    let r = run(M, [&lab.master.port_arg(), "--min-replicas", "2"]);
    r.exits(1).prints("fewer than --min-replicas 2");
}

#[test]
fn all_replicas_stopped_master_serves_reads() {
    let mut lab = RedisLab::builder().replicas(2).start();
    for r in &mut lab.replicas {
        r.proc.kill();
    }
    lab.wait_replicas_online(lab.master.port, 0);
    let views = lab.observe().read_args(&["--max-lag", "10"]).run();
    views.assert(&[lab.master.addr()], &[lab.master.addr()]);
    assert!(views.node(lab.master.addr()).read.summary().ends_with("is a single master: it serves reads"), "{views:#?}");

    let r = run(S, [&lab.master.port_arg(), "--no-master-fallback"]);
    r.exits(2).prints("--no-master-fallback");

    // Passing output stays the same from run to run when nothing changed.
    let a = run(S, [&lab.master.port_arg()]);
    let b = run(S, [&lab.master.port_arg()]);
    assert_eq!((a.exit(), &a.stdout), (0, &b.stdout));
}

#[test]
fn master_stopped_replicas_lose_their_link() {
    let mut lab = RedisLab::builder().replicas(2).start();
    lab.master.proc.kill();
    for r in &lab.replicas {
        r.wait_link_down();
    }
    let views = lab.observe().run();
    views.assert(&NOBODY, &NOBODY);
    let s = views.node(lab.replicas[0].addr()).read.summary();
    assert!(s.contains("link down"), "{s}");
    assert_eq!(views.node(lab.replicas[0].addr()).read.fact("master_link_status"), "down");
}

#[test]
fn replica_in_initial_sync_is_out_of_the_read_pool() {
    let lab = RedisLab::builder().start();
    // Make the full sync slow (a test-only delay per key saved), so the replica stays in it a while.
    for i in 0..20 {
        redis_cmd(lab.master.port, &["SET", &format!("key{i}"), "value"]).unwrap();
    }
    redis_cmd(lab.master.port, &["CONFIG", "SET", "rdb-key-save-delay", "200000"]).unwrap();
    let replica = RedisNode::start(&lab.dir, "late", free_port(), &replica_of(lab.master.port));
    replica.wait_sync_in_progress();
    let v = check(S, [&replica.port_arg()]);
    v.code_is(2).summary_has("initial sync in progress").fact_is("master_sync_in_progress", true);
    // Meanwhile the master, whose only replica is not online, serves reads.
    let v = check(S, [&lab.master.port_arg()]);
    v.code_is(0);
    assert_ne!(v.fact("connected_replicas.0.state"), "online", "{v:?}");
    // Once synced, the roles swap in the read pool.
    lab.wait_replicas_online(lab.master.port, 1);
    run(S, [&replica.port_arg()]).exits(0);
    run(S, [&lab.master.port_arg()]).exits(2);
}

#[test]
fn replica_lag_over_max_lag() {
    let lab = RedisLab::builder().replicas(1).start();
    let replica = &lab.replicas[0];
    lab.master.proc.signal(libc::SIGSTOP);
    replica.wait_lag_at_least(3);
    // The stopped master gets a short deadline; the replica's read check a lag limit.
    let views = lab.observe().write_args(&["--timeout", "500ms"]).read_args(&["--timeout", "500ms", "--max-lag", "2"]).run();
    // A master that does not answer is in no pool, and says which step timed out (how fast: deadlines.rs).
    // The replica's link still says up (repl-timeout is 60s), but its lag is over the limit.
    views.assert(&NOBODY, &NOBODY);
    let msg = views.node(lab.master.addr()).write.summary();
    assert!(msg.contains(&lab.master.addr()) && msg.contains("500ms"), "{msg}");
    assert_eq!(views.node(lab.replicas[0].addr()).read.fact("master_link_status"), "up");
    assert!(
        views.node(lab.replicas[0].addr()).read.summary().contains("over --max-lag 2s"),
        "{:?}",
        views.node(lab.replicas[0].addr()).read
    );
    assert_invariants(&views);
    // Without --max-lag the same replica would pass: that is why the option exists.
    run(S, [&replica.port_arg()]).exits(0);
    lab.master.proc.signal(libc::SIGCONT);
    wait_for("replica back within --max-lag", Duration::from_secs(10), || {
        (run(S, [&replica.port_arg(), "--max-lag", "2"]).exit() == 0).then_some(())
    });
}

/// Sentinel fails over after the master is killed; the old master comes back as a master with no
/// `replicaof`; the guard keeps it out of the write pool until Sentinel demotes it.
#[test]
fn sentinel_failover_and_returning_old_master() {
    let mut lab = RedisLab::builder().replicas(2).sentinels(3).start();
    let guard = lab.sentinel_args();
    let old = lab.master.addr();
    lab.master.proc.kill();
    lab.wait_new_master(&old);
    // The one writer is the node the Sentinels name (they may fail over more than once under load);
    // the other replica follows it and serves reads.
    let views = wait_for("the pools to follow Sentinel", Duration::from_secs(30), || {
        let named = lab.agreed_master()?;
        let views = lab.observe().write_args(&guard).read_args(&guard).run();
        let others: Vec<String> = lab.replicas.iter().map(RedisNode::addr).filter(|a| *a != named).collect();
        (write_pool(&views) == vec![named.as_str()] && read_pool(&views) == others.iter().map(String::as_str).collect::<Vec<_>>())
            .then_some(views)
    });
    assert!(!views.node(&old).write.in_pool() && !views.node(&old).read.in_pool(), "old master is down: {views:#?}");
    assert_invariants(&views);

    // The old master returns as a master. Without the guard it would pass: a second writer.
    lab.master.restart_as_master();
    let unguarded = run(M, [&lab.master.port_arg()]);
    if lab.master.role().as_deref() == Some("master") {
        assert_eq!(unguarded.exit(), 0, "without Sentinel the check cannot know: {unguarded:?}");
    }
    // With the guard it is in no pool while it says role:master, and the write pool never holds two.
    let start = Instant::now();
    let mut guarded_runs = 0;
    loop {
        let role_before = lab.master.role();
        let views = lab.observe().write_args(&guard).read_args(&guard).run();
        assert!(write_pool(&views).len() <= 1, "two writers: {views:#?}");
        let (old_view, role_after) = (&views.node(lab.master.addr()), lab.master.role());
        if role_before.as_deref() == Some("master") && role_after.as_deref() == Some("master") && old_view.write.fact("role") == "master" {
            assert_eq!(old_view.write.code(), 2, "returning old master not kept out: {old_view:#?}");
            assert_eq!(old_view.read.code(), 2, "returning old master serves reads: {old_view:#?}");
            assert!(old_view.read.summary().contains("its data is stale"), "{old_view:#?}");
            // Sentinel names the new master, or is still failing this one over.
            let reason = old_view.write.reasons()[0];
            assert!(
                reason.contains("Sentinel says another node is master") || reason.contains("Sentinel is replacing this master"),
                "{old_view:#?}"
            );
            guarded_runs += 1;
        }
        if old_view.write.fact("role") == "slave" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "Sentinel never demoted the old master");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(guarded_runs > 0, "the old master was demoted before any check could see it as master");
    // Demoted: a replica of the new master, it joins the read pool once linked, never the write pool.
    wait_for("old master linked to the new one", Duration::from_secs(30), || (run(S, [&lab.master.port_arg()]).exit() == 0).then_some(()));
    let views = lab.observe().write_args(&guard).read_args(&guard).run();
    assert_eq!(views.node(&old).write.code(), 2, "{views:#?}");
    // The one writer is the node the Sentinels name now (Sentinel may have failed over again).
    let named = lab.sentinel_views();
    assert_eq!(write_pool(&views), vec![named[0].clone().unwrap().as_str()], "{named:?} {views:#?}");
    assert_invariants(&views);
}

/// `SENTINEL FAILOVER` of a live, reachable master (no drain): the Sentinel that runs it shows
/// `failover_in_progress` on the old master at once, so the old master's write check is critical from
/// its first run after the command, before any replica is promoted, and stays critical until Sentinel
/// demotes it; the write pool never holds two nodes on the way.
#[test]
fn a_live_failover_takes_the_old_master_out_before_the_promotion() {
    let lab = RedisLab::builder().replicas(2).sentinels(3).start();
    let guard = lab.sentinel_args();
    let old = args(lab.master.port, &guard);
    check(M, &old).code_is(0);
    let promoted = || lab.replicas.iter().find(|r| r.role().as_deref() == Some("master")).map(RedisNode::addr);
    let ordered = redis_cmd(lab.sentinel_ports[0], &["SENTINEL", "FAILOVER", lab::redis_lab::MASTER_NAME]);
    assert!(ordered.is_ok(), "SENTINEL FAILOVER: {ordered:?}");
    let first = check(M, &old);
    let promoted_by_then = promoted();
    first.code_is(2).summary_has("says master, but Sentinel is replacing it").reason_has("is failing it over (failover_in_progress)");
    assert_eq!(promoted_by_then, None, "the check was this slow or the promotion this fast: {first}");
    // Until the old master is demoted, every run of its write check is critical and one node at most writes.
    let start = Instant::now();
    let mut runs = 0;
    loop {
        let views = lab.observe().write_args(&guard).run();
        assert!(write_pool(&views).len() <= 1, "two writers: {views:#?}");
        let old_view = &views.node(lab.master.addr()).write;
        assert_eq!(old_view.code(), 2, "the old master is in the write pool during its failover: {old_view}");
        runs += 1;
        if old_view.fact("role") == "slave" && write_pool(&views).len() == 1 {
            assert_eq!(write_pool(&views), [lab.agreed_master().unwrap().as_str()], "{views:#?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(40), "Sentinel never finished the failover: {views:#?}");
    }
    println!("live failover: the old master critical from the first run; {runs} observations until it was demoted");
}

/// Sentinels out of reach alone (a Sentinel outage) only warn while the master's replica still
/// acknowledges; once the replica goes silent too, the master is cut off and being replaced:
/// critical for both checks. The replica is frozen (SIGSTOP), so the master keeps listing it
/// `state=online`, as it does for a silent link until `repl-timeout`: only its `lag` shows it.
#[test]
fn unreachable_sentinels_warn_until_the_replicas_go_silent_too() {
    let mut lab = RedisLab::builder().replicas(1).sentinels(3).start();
    let guard = lab.sentinel_args();
    let mut a = vec![lab.master.port_arg()];
    a.extend(guard.iter().cloned());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run(M, &a).exits(0);
    lab.sentinels[0].kill();
    let v = check(M, &a);
    v.code_is(1).reason_has("unreachable");
    for s in &mut lab.sentinels {
        s.kill();
    }
    let v = check(M, &a);
    v.code_is(1).reason_has("a Sentinel outage, not an isolation");

    lab.replicas[0].proc.signal(libc::SIGSTOP);
    wait_for("the master to see its replica's lag >= 3s", Duration::from_secs(15), || {
        let line = lab.master.field("slave0")?;
        let lag: i64 = line.split(',').find_map(|kv| kv.strip_prefix("lag="))?.parse().ok()?;
        (lag >= 3).then_some(())
    });
    let w = check(M, &a);
    let r = check(S, &a);
    lab.replicas[0].proc.signal(libc::SIGCONT);
    w.code_is(2);
    assert_eq!(
        w.summary(),
        format!("{} says master, but it is cut off from the Sentinel majority and from its replicas", lab.master.addr())
    );
    w.reason_has("no replica acknowledged within --replica-ack-max-lag 2s");
    assert_eq!(w.fact("connected_replicas.0.state"), "online", "Redis still lists the silent replica online: {w}");
    assert_eq!(r.code(), 2, "a master being replaced does not serve reads either: {r}");
    // With a longer limit the same master is only warned about.
    let mut longer = a.clone();
    longer.extend(["--replica-ack-max-lag", "1m"]);
    lab.replicas[0].proc.signal(libc::SIGSTOP);
    let v = check(M, &longer);
    lab.replicas[0].proc.signal(libc::SIGCONT);
    v.code_is(1);
    // A Sentinel that accepts and never answers: tests/deadlines.rs.
}

#[test]
fn passwords_and_acl_users() {
    let secret = "s3cret-pw-do-not-print";
    let lab = RedisLab::start_with(0, 0, &["--requirepass", secret]);
    let port = lab.master.port_arg();
    let dir = TempDir::new("pw");
    let good = dir.join("good");
    write_file(&good, &format!("{secret}\n"), 0o600);
    let bad = dir.join("bad");
    write_file(&bad, "wrong-password\n", 0o600);
    let world = dir.join("world");
    write_file(&world, &format!("{secret}\n"), 0o644);

    let none = run(M, [&port]);
    none.exits(2);
    assert!(none.stdout.contains("NOAUTH") && none.stdout.contains("--password-file"), "{}", none.stdout);
    let wrong = run(M, [&port, "--password-file", bad.to_str().unwrap()]);
    wrong.exits(2);
    assert!(wrong.stdout.starts_with(&format!("REDIS-MASTER CRITICAL: log in to {}: ", lab.master.addr())), "{}", wrong.stdout);
    let by_file = run(M, [&port, "--password-file", good.to_str().unwrap()]);
    by_file.exits(0);
    let by_env = run_env(S, [&port], &[("REDISCLI_AUTH", secret)]);
    by_env.exits(0).prints("login: default user, password from environment (REDISCLI_AUTH)");
    let by_arg = run(M, [&port, secret]);
    by_arg.exits(0).prints("note: the password was given on the command line");
    let world_readable = run(M, [&port, "--password-file", world.to_str().unwrap()]);
    world_readable.exits(2).prints("chmod o-rwx");
    let missing = run(M, [&port, "--password-file", dir.join("missing").to_str().unwrap()]);
    missing.exits(2).prints("cannot read password file");

    // An ACL user that may run INFO only; and one that may not.
    let auth = |args: &[&str]| {
        let client = redis::Client::open(("127.0.0.1", lab.master.port)).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("AUTH").arg(secret).query::<()>(&mut c).unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query::<()>(&mut c).unwrap();
    };
    auth(&["ACL", "SETUSER", "monitor", "on", ">monitor-pw", "-@all", "+info"]);
    auth(&["ACL", "SETUSER", "nobody", "on", ">nobody-pw", "-@all", "+ping"]);
    let mon = dir.join("mon");
    write_file(&mon, "monitor-pw\n", 0o600);
    let nob = dir.join("nob");
    write_file(&nob, "nobody-pw\n", 0o600);
    let acl = run(M, [&port, "--user", "monitor", "--password-file", mon.to_str().unwrap()]);
    acl.exits(0);
    let denied = run(S, [&port, "--user", "nobody", "--password-file", nob.to_str().unwrap()]);
    denied.exits(2);
    assert!(denied.stdout.contains("NOPERM") && denied.stdout.contains("INFO replication on"), "{}", denied.stdout);
    let wrong_user = run(M, [&port, "--user", "monitor", "--password-file", nob.to_str().unwrap()]);
    wrong_user.exits(2).prints("as monitor");

    assert_no_secret(&[&none, &wrong, &by_file, &by_env, &by_arg, &world_readable, &acl, &denied, &wrong_user], secret);
    assert_no_secret(&[&acl, &denied], "monitor-pw");
}

#[test]
fn unix_socket() {
    let dir = TempDir::new("sock");
    let sock = dir.join("redis.sock");
    let node = RedisNode::start(&dir, "sock", free_port(), &strs(&["--unixsocket", sock.to_str().unwrap(), "--unixsocketperm", "700"]));
    let v = check(M, ["--socket", sock.to_str().unwrap()]);
    v.code_is(0);
    assert_eq!(v.target(), sock.to_str().unwrap());
    drop(node);
    let r = run(M, ["--socket", sock.to_str().unwrap()]);
    r.exits(2);
    assert!(r.stdout.contains(&format!("cannot connect to {}", sock.display())), "{}", r.stdout);
}

#[test]
fn nothing_listening() {
    let port = free_port().to_string();
    for bin in [M, S] {
        let v = check(bin, [&port]);
        v.code_is(2);
        assert_eq!(v.summary(), format!("cannot connect to 127.0.0.1:{port}: connection refused"));
    }
}

#[test]
fn port_that_speaks_something_else() {
    let http = FakeServer::start(Fake::Answers(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    let garbage = FakeServer::start(Fake::Sends(b"\x00\xff\xfe\x13garbage\x07\r\n\x01"));
    let closes = FakeServer::start(Fake::Sends(b""));
    let error = FakeServer::start(Fake::Answers(b"-ERR unknown command\r\n-ERR unknown command\r\n-ERR unknown command\r\n"));
    let wrong_type = FakeServer::start(Fake::Answers(b":42\r\n:42\r\n:42\r\n"));
    for (srv, words) in [
        (&http, "not the Redis protocol"),
        (&garbage, "not the Redis protocol"),
        (&closes, "closed the connection"),
        (&error, "ERR unknown command"),
        (&wrong_type, "has no role: field"),
    ] {
        for bin in [M, S] {
            let v = check(bin, [&srv.port.to_string(), "--timeout", "1s"]);
            v.code_is(2);
            let summary = v.summary();
            assert!(summary.contains(&format!("127.0.0.1:{}", srv.port)) && summary.contains(words), "{summary}");
        }
    }
}

#[test]
fn bad_usage_exits_2_and_help_exits_0() {
    for a in [
        vec!["abc"],
        vec!["6029", "pw", "extra"],
        vec!["--port", "0"],
        vec!["--timeout", "soon"],
        vec!["--timeout", "0"],
        vec!["--format", "xml"],
        vec!["--warning-exit-code", "7"],
        vec!["--no-such-option"],
        vec!["--sentinel", "nohostport", "--master-name", "m"],
        vec!["--sentinel", "127.0.0.1:26379"],
        vec!["--max-lag", "-3"],
    ] {
        for bin in [M, S] {
            let r = run(bin, &a);
            // --max-lag is the slave check's, --sentinel the master's: both fail elsewhere too.
            assert_eq!(r.exit(), 2, "{bin} {a:?}: {r:?}");
            assert!(r.stdout.contains("CRITICAL: bad usage"), "{bin} {a:?}: {}", r.stdout);
            assert!(!r.stdout.contains("pw"), "{}", r.stdout);
        }
    }
    for bin in [M, S] {
        let h = run(bin, ["--help"]);
        h.exits(0);
        assert!(h.stdout.contains("--password-file") && h.stdout.contains("--timeout"));
        run(bin, ["--version"]).exits(0);
    }
    assert!(run(M, ["--help"]).stdout.contains("--sentinel"));
    assert!(run(S, ["--help"]).stdout.contains("--max-lag"));
    // The message says what is wrong: the missing option, the bad value and its choices, the option
    // meant; in JSON when --format json was asked for.
    run(M, ["--sentinel", "127.0.0.1:26379"]).exits(2).prints("bad usage: missing --master-name <NAME>");
    run(M, ["--format", "xml"]).exits(2).prints("invalid value 'xml' for --format <FORMAT>: one of text, json");
    run(M, ["--pasword-file", "/x"]).exits(2).prints("did you mean --password-file?");
    let json = check(M, ["--format", "json", "--no-such-option"]);
    json.code_is(2).summary_has("bad usage: unexpected argument '--no-such-option'");
}

/// The Sentinels' `down-after-milliseconds` (3000 in the lab) is reported with each answer; the
/// write check warns when it is shorter than the partition rule needs: `--replica-ack-max-lag` + 1 s
/// always, plus `--fault-after` when given (what the generator passes: keepalived's fall x
/// interval), and passes when it is not. Whether the master enforces `min-replicas-to-write` is in
/// the facts.
#[test]
fn sentinel_down_after_against_the_partition_rule() {
    let lab = RedisLab::builder().replicas(1).sentinels(2).start();
    lab.wait_sentinels_settled();
    let base = args(lab.master.port, &lab.sentinel_args());
    let with = |extra: &[&str]| {
        let mut a = base.clone();
        a.extend(strs(extra));
        check(M, &a)
    };
    let v = with(&[]);
    v.code_is(0).fact_is("sentinels.0.down_after_ms", 3000).fact_is("sentinels.1.quorum", 2);
    v.fact_is("partition_rule_needs_down_after_ms", 3000);
    assert!(v.fact("min_replicas_to_write").as_str().unwrap().starts_with("not set"), "{v}");

    // Without --fault-after, the floor: 3s of acknowledgements + 1s is more than 3s.
    let v = with(&["--replica-ack-max-lag", "3s"]);
    v.code_is(1).summary_has("Sentinel 127.0.0.1:");
    v.reason_has("down-after-milliseconds 3000, shorter than the 4s the partition rule needs (--replica-ack-max-lag 3s + 1s, before the caller's own delay: give --fault-after to count it)");
    let v = with(&["--fault-after", "2s"]);
    assert_eq!(v.code(), 1, "3s down-after < 2s ack + 1s + 2s: {v}");
    assert!(v.reason_contains("down-after-milliseconds 3000") && v.reason_contains("at least 5000"), "{v}");
    v.fact_is("partition_rule_needs_down_after_ms", 5000);
    let v = with(&["--fault-after", "400ms", "--replica-ack-max-lag", "1500ms"]);
    assert_eq!(v.code(), 0, "2.9s needed, 3s set: {v}");

    redis_cmd(lab.master.port, &["CONFIG", "SET", "min-replicas-to-write", "1"]).unwrap();
    let v = with(&[]);
    assert!(v.fact("min_replicas_to_write").as_str().unwrap().starts_with("enforced, 1 replica"), "{v}");
}

#[test]
fn a_drain_file_takes_a_node_out_until_removed() {
    let lab = RedisLab::builder().replicas(1).sentinels(0).start();
    let dir = TempDir::new("drain");
    let drain = dir.0.join("w-redis");
    let drain_arg = drain.display().to_string();
    let with_drain = |bin: &str, node: &RedisNode| check(bin, [node.port_arg(), "--drain-file".into(), drain_arg.clone()]);
    // No file: the check asks the server as always.
    with_drain(M, &lab.master).code_is(0).fact_is("role", "master");
    // The operator drains: critical, naming the file, the server not asked (no facts of it).
    std::fs::write(&drain, "").unwrap();
    let out = with_drain(M, &lab.master);
    out.code_is(2).summary_has(&format!("drained by the operator ({drain_arg})"));
    assert!(out.fact("role").is_null(), "{out}");
    let text = run(M, [lab.master.port_arg(), "--drain-file".into(), drain_arg.clone()]);
    assert!(text.stdout.starts_with(&format!("REDIS-MASTER CRITICAL: drained by the operator ({drain_arg})")), "{}", text.stdout);
    // Any entry counts, a dangling link too: what the operator made, the check honours.
    std::fs::remove_file(&drain).unwrap();
    std::os::unix::fs::symlink(dir.0.join("nowhere"), &drain).unwrap();
    with_drain(S, &lab.replicas[0]).code_is(2).summary_has("drained by the operator");
    // Removed: back in the pools at once.
    std::fs::remove_file(&drain).unwrap();
    with_drain(M, &lab.master).code_is(0);
    with_drain(S, &lab.replicas[0]).code_is(0);
}

/// `--max-lag-bytes`: a replica behind a slow link (a relay carrying 64 KiB/s) while its master
/// takes 4 MB has its link up and `master_last_io_seconds_ago` 0, yet it is megabytes behind:
/// critical with `--max-lag-bytes 1MB` (it asks its master), passing on time alone. The master's read
/// check sees the same from the replica's acknowledged offset. Idle, no alarm; a master that hangs
/// leaves the bytes unknown, which is critical, within the deadline.
#[test]
fn bytes_behind_the_master() {
    let dir = TempDir::new("bytes");
    let master = RedisNode::start(&dir, "m", free_port(), &[]);
    let relay = lab::relay::Relay::start("127.0.0.1", master.port);
    let replica = RedisNode::start(&dir, "r", free_port(), &replica_of(relay.port));
    wait_for("the replica linked through the relay", Duration::from_secs(20), || {
        (replica.field("master_link_status").as_deref() == Some("up")).then_some(())
    });
    let on = |node: &RedisNode, extra: &[&str]| -> Vec<String> {
        let mut a = vec![node.port_arg(), "--max-lag".into(), "10".into()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    check(S, on(&replica, &["--max-lag-bytes", "1MB"])).code_is(0).summary_has(" bytes behind");

    relay.limit(Some(64 << 10));
    let value = "x".repeat(100 << 10);
    for i in 0..40 {
        redis_cmd(master.port, &["SET", &format!("k{i}"), &value]).unwrap();
    }
    let v = check(S, on(&replica, &["--max-lag-bytes", "1MB"]));
    v.code_is(2).summary_has("bytes behind, over --max-lag-bytes 1048576").fact_is("master_link_status", "up");
    assert!(v.fact("master_last_io_seconds_ago").as_i64().unwrap() <= 1, "the link looks fresh: {v}");
    check(S, on(&replica, &[])).code_is(0).summary_has("link up, lag ");
    // The master's own view: its replica acknowledged megabytes less than it wrote.
    check(S, on(&master, &["--max-lag-bytes", "1MB"])).code_is(0).reason_has("bytes behind, over --max-lag-bytes 1048576");

    relay.limit(None);
    wait_for("the replica caught up", Duration::from_secs(30), || {
        (run(S, on(&replica, &["--max-lag-bytes", "1MB"])).exit() == 0).then_some(())
    });
    // A master that hangs: the bytes are unknown, critical, within the deadline.
    master.proc.signal(libc::SIGSTOP);
    let hung = check(S, on(&replica, &["--max-lag-bytes", "1MB", "--timeout", "1s"]));
    master.proc.signal(libc::SIGCONT);
    hung.code_is(2).summary_has("how far behind is unknown");
    assert!(hung.run.elapsed < Duration::from_millis(1500), "{hung}");
}

/// `--master-name` with a typo: every Sentinel answers that it monitors no such master. That is a
/// configuration error, said as one (critical: the guard cannot confirm anything), whether or not
/// the master's replicas acknowledge: never "a Sentinel outage" nor "cut off".
#[test]
fn a_master_name_typo_is_a_configuration_error() {
    let lab = RedisLab::builder().replicas(1).sentinels(3).start();
    let mut a = vec![lab.master.port_arg()];
    for p in &lab.sentinel_ports {
        a.extend(["--sentinel".to_string(), format!("127.0.0.1:{p}")]);
    }
    a.extend(["--master-name".to_string(), "labmastr".to_string()]);
    let v = check(M, &a);
    v.code_is(2).summary_has("the Sentinels do not monitor that master name (a configuration error)").reason_has("check --master-name");
    assert!(!v.summary().contains("cut off") && !v.reasons()[0].contains("outage"), "{v}");
}

/// Hints follow the cause: a Sentinel that wants a password it did not get names
/// --sentinel-password-file (not the server's --user), and is a configuration error (critical,
/// never an outage); a wrong server password names the server's credential options.
#[test]
fn login_hints_name_the_credentials_that_were_used() {
    let lab = RedisLab::builder().replicas(1).start();
    let noauth = FakeServer::start(Fake::Answers(b"-NOAUTH Authentication required.\r\n"));
    let sentinel = format!("127.0.0.1:{}", noauth.port);
    let v = check(M, [lab.master.port_arg(), "--sentinel".into(), sentinel, "--master-name".into(), "m".into()]);
    v.code_is(2).summary_has("the check cannot talk to the Sentinels as configured (a configuration error)");
    v.reason_has("NOAUTH Authentication required. (the Sentinel needs a password: give --sentinel-password-file)");
    assert!(!v.reasons()[0].contains("--user") && !v.reasons()[0].contains("outage"), "{v}");
    let dir = TempDir::new("wrongpw");
    let pw = dir.file("pw", "wrong\n", 0o600);
    let v = check(M, [lab.master.port_arg(), "--password-file".into(), pw.display().to_string()]);
    v.code_is(2).summary_has("(check --user and the password file or REDISCLI_AUTH)");
}

/// A replica the master lists under an address the check cannot reach (its announce address
/// points elsewhere): the master still serves reads (none is known healthy), but warns which
/// replica could not be probed and why, since clients that reach it are served by it too.
#[test]
fn an_unprobeable_replica_is_named() {
    let dir = TempDir::new("unprobed");
    let master = RedisNode::start(&dir, "m", free_port(), &[]);
    let mut extra = replica_of(master.port);
    extra.extend(["--replica-announce-ip".to_string(), "127.0.0.99".to_string()]);
    let _replica = RedisNode::start(&dir, "r", free_port(), &extra);
    wait_for("the replica online", Duration::from_secs(20), || (master.info()?.contains("state=online")).then_some(()));
    check(S, [master.port_arg()])
        .code_is(1)
        .summary_has("none of its 1 replica(s) is healthy: it serves reads")
        .summary_has("could not probe 127.0.0.99:")
        .reason_has("replica-announce-ip");
}

/// A master the Sentinels know by another of its addresses: it listens on 127.0.0.1, where they
/// monitor it, and on 127.0.0.6, the address the inventory lists (another network, a
/// `replica-announce-ip`). The generated write check on 127.0.0.6 is critical (the Sentinels name
/// 127.0.0.1), until the inventory's `announce` says how the Sentinels name that node.
#[test]
fn the_inventory_says_how_the_sentinels_name_a_node() {
    let lab = RedisLab::builder().replicas(1).sentinels(3).server_args(&["--bind", "127.0.0.1", "127.0.0.6"]).start();
    let sentinels: Vec<String> = lab.sentinel_ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let inventory = |announce: &str| {
        lab.dir.file(
            "inventory.json",
            &format!(
                r#"[{{"kind":"redis","name":"lab","port":{},"nodes":["127.0.0.6"],"sentinels":[{}],"master_name":"{}"{announce}}}]"#,
                lab.master.port,
                sentinels.join(","),
                lab::redis_lab::MASTER_NAME
            ),
            0o644,
        )
    };
    let write_members = |inv: &std::path::Path| {
        let topo = check(TOPOLOGY, ["--inventory", inv.to_str().unwrap()]);
        (topo.fact("groups")[0]["write"].clone(), topo)
    };
    let (write, topo) = write_members(&inventory(""));
    assert_eq!(write, serde_json::json!([]), "{topo}");
    let text = run(TOPOLOGY, ["--inventory", inventory("").to_str().unwrap()]);
    text.exits(2).prints("no write member").prints("127.0.0.6:").prints("says master, but Sentinel names another node");
    let announced = inventory(&format!(r#","announce":{{"127.0.0.6":"127.0.0.1:{}"}}"#, lab.master.port));
    let (write, topo) = write_members(&announced);
    assert_eq!(write, serde_json::json!(["127.0.0.6"]), "{topo}");
}
