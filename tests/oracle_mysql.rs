//! The MySQL checks against real Oracle MySQL 9.x (Debian sid's, in its own chroot: see
//! `lab/src/oracle_mysql.rs`): the MariaDB suite's topology states, what is MySQL's own
//! (`super_read_only`, `offline_mode`, `SHOW REPLICA STATUS` / `SHOW REPLICAS` names), and every
//! `caching_sha2_password` full-authentication path against the real server.

use lab::oracle_mysql::{chroot_or_skip, MysqlLab, MysqlNode, CHECKER};
use lab::pools::Observable;
use lab::*;

const M: &str = MYSQL_MASTER;
const S: &str = MYSQL_SLAVE;

/// The checks' arguments for `node` (address, defaults file, pinned key), plus `extra`.
fn args(lab: &MysqlLab, node: &MysqlNode, extra: &[&str]) -> Vec<String> {
    let mut a = lab.check_args(node);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn topology_states_on_mysql_9() {
    let Some(root) = chroot_or_skip("topology") else { return };
    let lab = MysqlLab::start(&root, 2);
    let (source, r0, r1) = (&lab.source, &lab.replicas[0], &lab.replicas[1]);
    let views = lab.observe().run();
    views.assert(&[source.addr()], &[r0.addr(), r1.addr()]);
    let master = &views.node(lab.source.addr()).write;
    assert!(master.fact("version").as_str().unwrap().starts_with("9."), "{master}");
    master.fact_is("super_read_only", false).fact_is("offline_mode", false);
    assert_eq!(master.fact("connected_replicas").as_array().unwrap().len(), 2, "{master}");
    let replica = &views.node(lab.replicas[0].addr()).read;
    assert_eq!(replica.fact("status_statement"), "SHOW REPLICA STATUS", "{replica}");
    assert!(replica.summary().contains(&format!("replica of {}", source.addr())), "{replica}");
    // The source's read check probes both replicas, found with SHOW REPLICAS (report_host).
    let on_source = &views.node(lab.source.addr()).read;
    assert_eq!(on_source.code(), 2, "healthy replicas serve reads: {on_source}");
    assert!(on_source.fact("replica_discovery").as_str().unwrap().contains("SHOW REPLICAS"), "{on_source}");
    // Without REPLICATION SLAVE, SHOW REPLICAS is refused: the processlist hosts (each replica's
    // own address, SOURCE_BIND) with the source's port find the same replicas, and the fact says why.
    source.sql("CREATE USER weak@'%' IDENTIFIED BY 'weak-pw'; GRANT REPLICATION CLIENT, PROCESS ON *.* TO weak@'%'");
    let weak_pw = lab.checker_cnf.parent().unwrap().join("weak.pw");
    write_file(&weak_pw, "weak-pw\n", 0o600);
    let key = source.data_file("public_key.pem").display().to_string();
    let v = check(
        S,
        [
            "--host",
            &source.host,
            "--port",
            &source.port.to_string(),
            "--user",
            "weak",
            "--password-file",
            weak_pw.to_str().unwrap(),
            "--server-public-key",
            &key,
        ],
    );
    v.code_is(2);
    let how = v.fact("replica_discovery").as_str().unwrap().to_string();
    assert!(how.contains("from the processlist hosts") && how.contains("REPLICATION SLAVE"), "{v}");
    assert_eq!(v.fact("probes").as_array().unwrap().len(), 2, "{v}");

    // A replica with its IO thread stopped leaves the read pool, naming the thread.
    r0.sql("STOP REPLICA IO_THREAD");
    r0.wait_status("Replica_IO_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    views.assert(&[source.addr()], &[r1.addr()]);
    views.node(lab.replicas[0].addr()).read.summary_has("IO thread");

    // A replication error (a row the replica already has) leaves the read pool, naming the error.
    r1.sql("SET GLOBAL super_read_only=0; INSERT INTO lab.t VALUES (1, 'replica'); SET GLOBAL super_read_only=1");
    source.sql("INSERT INTO lab.t VALUES (1, 'source')");
    r1.wait_status("Replica_SQL_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    // No replica is healthy: the source serves reads too.
    views.assert(&[source.addr()], &[source.addr()]);
    let broken = &views.node(lab.replicas[1].addr()).read;
    assert!(broken.summary().contains("SQL thread") && broken.run.stdout.contains("Duplicate entry"), "{broken}");

    // Lag: the replica's SQL thread applies with a delay over --max-lag.
    r0.sql("START REPLICA IO_THREAD");
    r0.wait_status("Replica_IO_Running", |v| v == Some("Yes"));
    let v = check(S, args(&lab, r0, &["--max-lag", "1"]));
    assert_eq!(v.code(), 0, "caught up: {v}");

    // offline_mode: the monitor may not log in at all; the server is in no pool.
    source.sql("SET GLOBAL offline_mode=ON");
    let v = check(M, args(&lab, source, &[]));
    source.sql("SET GLOBAL offline_mode=OFF");
    v.code_is(2);
}

#[test]
fn promotion_and_the_old_source_back_super_read_only() {
    let Some(root) = chroot_or_skip("promotion") else { return };
    let mut lab = MysqlLab::start(&root, 2);
    lab.source.proc.kill();
    // Promote replica0 by hand (as an operator or orchestrator would); replica1 follows it.
    let (r0, r1) = (&lab.replicas[0], &lab.replicas[1]);
    r0.sql("STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF");
    r1.sql("STOP REPLICA; RESET REPLICA ALL");
    r1.replicate_from(r0);
    // The old source comes back read-only, as every server's my.cnf should say.
    lab.source.restart_with(&["--read-only", "--super-read-only"]);
    let views = lab.observe().run();
    views.assert(&[lab.replicas[0].addr()], &[lab.replicas[1].addr()]);
    let old = &views.node(lab.source.addr());
    assert!(old.write.summary().contains("read_only=ON") || old.write.summary().contains("super_read_only=ON"), "{}", old.write);
    assert!(old.read.summary().contains("isolated"), "{}", old.read);
}

/// `caching_sha2_password` full authentication, forced with `FLUSH PRIVILEGES` before each run:
/// refused by default over plain TCP (critical, naming the ways out); done with the pinned key,
/// with the opt-in, over TLS with the server's auto-generated certificates (`--tls-verify ca`; the
/// default full verification refuses them by name), and over the socket. A login that works only
/// by the server's cache is warning.
#[test]
fn caching_sha2_full_authentication_paths() {
    let Some(root) = chroot_or_skip("caching_sha2_password") else { return };
    let lab = MysqlLab::start(&root, 0);
    let node = &lab.source;
    let pw = lab.checker_cnf.parent().unwrap().join("checker.pw");
    write_file(&pw, &format!("{}\n", CHECKER.1), 0o600);
    let plain = ["--host".to_string(), node.host.clone(), "--port".into(), node.port.to_string()];
    let run_fresh = |extra: &[&str]| {
        node.sql("FLUSH PRIVILEGES");
        let mut a: Vec<String> = plain.to_vec();
        a.extend(["--user".to_string(), CHECKER.0.into(), "--password-file".into(), pw.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        check(M, &a)
    };
    let v = run_fresh(&[]);
    v.code_is(2);
    for way in ["full authentication", "--server-public-key", "--tls", "--socket", "--get-server-public-key"] {
        assert!(v.summary().contains(way), "{way}: {v}");
    }
    let key = node.data_file("public_key.pem").display().to_string();
    let ca = node.data_file("ca.pem").display().to_string();
    let v = run_fresh(&["--server-public-key", &key]);
    assert_eq!(v.code(), 0, "pinned key: {v}");
    assert!(v.fact("transport").as_str().unwrap().contains("pinned key"), "{v}");
    assert_eq!(run_fresh(&["--get-server-public-key"]).code(), 0, "opt-in");
    let v = run_fresh(&["--tls-ca", &ca]);
    assert_eq!(v.code(), 2, "auto-generated certificates name no host: {v}");
    v.summary_has("not valid for name");
    assert_eq!(run_fresh(&["--tls-ca", &ca, "--tls-verify", "ca"]).code(), 0, "chain-only verification");
    node.sql("FLUSH PRIVILEGES");
    let socket = node.socket().display().to_string();
    let v = check(M, ["--socket", &socket, "--user", CHECKER.0, "--password-file", pw.to_str().unwrap()]);
    assert_eq!(v.code(), 0, "socket: {v}");
    // Now the account is in the server's cache: plain TCP logs in by the fast path, and says it
    // will not after the next restart.
    let mut a: Vec<String> = plain.to_vec();
    a.extend(["--user".to_string(), CHECKER.0.into(), "--password-file".into(), pw.display().to_string()]);
    let v = check(M, &a);
    v.code_is(1);
    assert!(v.reason_contains("cached fast path") && v.reason_contains("next restart"), "{v}");
    let v = check(S, &a);
    assert_eq!(v.code(), 1, "the read check says so too: {v}");
}

/// The silently stalled link on MySQL 9 (a relay that stops forwarding, both sockets open): with the
/// default heartbeat period (30 s) the check can tell nothing within --max-lag 5s from the server
/// and says so; with SOURCE_HEARTBEAT_PERIOD=1 MySQL's own last-heartbeat time catches the stall
/// with no heartbeat table; with the heartbeat event's table, the age of its row does too.
#[test]
fn a_silently_stalled_link_on_mysql_9() {
    let Some(root) = chroot_or_skip("stalled link") else { return };
    let lab = MysqlLab::start(&root, 1);
    let (source, replica) = (&lab.source, &lab.replicas[0]);
    source.sql(lab::mysql_lab::HEARTBEAT_EVENT_SQL);
    let default = check(S, args(&lab, replica, &["--max-lag", "5"]));
    default.code_is(0);
    assert!(default.fact("lag_evidence").as_str().unwrap().contains("heartbeat period is 30s"), "{default}");
    let relay = lab::relay::Relay::start(&source.host, source.port);
    replica.sql(&format!(
        "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={}, SOURCE_HEARTBEAT_PERIOD=1; START REPLICA",
        relay.port
    ));
    replica.wait_caught_up(source);
    let plain = args(&lab, replica, &["--max-lag", "5"]);
    let with_heartbeat = args(&lab, replica, &["--max-lag", "5", "--heartbeat-table", lab::mysql_lab::HEARTBEAT_TABLE]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    check(S, &plain).code_is(0).fact_is("channels.0.source_heartbeat_period_seconds", 1.0);
    check(S, &with_heartbeat).code_is(0).summary_has("(heartbeat ");

    relay.pause();
    let stalled = std::time::Instant::now();
    let mut seen: [Option<std::time::Duration>; 2] = [None, None];
    while seen.iter().any(Option::is_none) {
        assert!(stalled.elapsed() < std::time::Duration::from_secs(20), "not caught: {seen:?}");
        for (i, a) in [&plain, &with_heartbeat].into_iter().enumerate() {
            if seen[i].is_none() && run(S, a).exit() == 2 {
                seen[i] = Some(stalled.elapsed());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let silent = check(S, &plain);
    silent
        .code_is(2)
        .summary_has("the link has been silent for")
        .fact_is("channels.0.io_running", "Yes")
        .fact_is("channels.0.lag_seconds", 0);
    check(S, &with_heartbeat).code_is(2).summary_has("old, Seconds_Behind_Source 0s)");
    println!("MySQL 9 stalled link: caught by the server's last heartbeat after {:?}, by the heartbeat table after {:?}", seen[0], seen[1]);
    for t in seen.iter().flatten() {
        assert!(*t <= std::time::Duration::from_secs(5 + 2), "caught only {t:?} after the stall (--max-lag 5s)");
    }
    relay.resume();
    lab::wait_for("back in the read pool", std::time::Duration::from_secs(40), || (run(S, &with_heartbeat).exit() == 0).then_some(()));
}
