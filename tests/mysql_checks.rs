//! check-mysql-master and check-mysql-slave against real MariaDB servers with real replication.

use lab::mysql_lab::{create_users, MariaLab, MariaNode, CHECKER, MONITOR};
use lab::pools::{assert_invariants, read_pool, write_pool, Observable, NOBODY};
use lab::*;
use std::time::Duration;

const M: &str = MYSQL_MASTER;
const S: &str = MYSQL_SLAVE;

#[test]
fn healthy_threads_stopped_and_replication_error() {
    let lab = MariaLab::start(2);
    let (r0, r1) = (&lab.replicas[0], &lab.replicas[1]);

    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr(), lab.replicas[1].addr()]);
    assert_invariants(&views);
    let m = &views.node(lab.master.addr());
    assert_eq!(m.write.fact("connected_replicas").as_array().unwrap().len(), 2);
    assert_eq!(m.read.fact("replica_discovery"), "from SHOW REPLICA HOSTS");
    assert!(m.read.summary().ends_with("2 healthy replica(s) serve reads"), "{}", m.read);
    let rep = &views.node(lab.replicas[0].addr()).read;
    assert_eq!(rep.fact("channels.0.io_running"), "Yes");
    assert_eq!(rep.fact("status_statement"), "SHOW ALL REPLICAS STATUS");
    assert_eq!(
        rep.summary(),
        format!("{} replica of {}, IO and SQL threads running, Seconds_Behind_Master 0s (no heartbeat)", r0.addr(), lab.master.addr())
    );
    assert!(views.node(lab.replicas[0].addr()).write.summary().contains("is a replica of"), "{}", views.node(lab.replicas[0].addr()).write);

    // IO thread stopped: that replica leaves the read pool, naming the thread.
    r0.sql("STOP SLAVE IO_THREAD");
    r0.wait_status("", "Slave_IO_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[1].addr()]);
    assert_eq!(
        views.node(lab.replicas[0].addr()).read.summary(),
        format!("{}: the default channel from {}: the IO thread has stopped (Running: No)", r0.addr(), lab.master.addr())
    );
    assert_invariants(&views);
    r0.sql("START SLAVE IO_THREAD");
    r0.wait_channel_running("");

    // SQL thread stopped.
    r1.sql("STOP SLAVE SQL_THREAD");
    r1.wait_status("", "Slave_SQL_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr()]);
    assert!(
        views.node(lab.replicas[1].addr()).read.summary().contains("the SQL thread has stopped (Running: No)"),
        "{}",
        views.node(lab.replicas[1].addr()).read
    );
    assert_invariants(&views);
    r1.sql("START SLAVE SQL_THREAD");
    r1.wait_channel_running("");

    // A replication error: a conflicting row on the replica, then the same key on the master.
    r0.sql("SET SESSION sql_log_bin=0; SET GLOBAL read_only=0; INSERT INTO lab.t VALUES (1, 'replica'); SET GLOBAL read_only=1");
    lab.master.sql("INSERT INTO lab.t VALUES (1, 'master')");
    r0.wait_status("", "Slave_SQL_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[1].addr()]);
    let broken = &views.node(lab.replicas[0].addr()).read;
    broken.summary_has("Duplicate entry '1'");
    assert_eq!(broken.fact("channels.0.sql_running"), "No");
    assert!(
        views.node(lab.master.addr()).read.reason_contains(&format!("{}: the default channel", r0.addr())),
        "{}",
        views.node(lab.master.addr()).read
    );
    assert_invariants(&views);

    // The other replica's IO thread stops too: no healthy replica, the master joins the read pool.
    r1.sql("STOP SLAVE IO_THREAD");
    r1.wait_status("", "Slave_IO_Running", |v| v == Some("No"));
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.master.addr()]);
    assert_eq!(read_pool(&views), vec![lab.master.addr().as_str()]);
    assert!(
        views.node(lab.master.addr()).read.summary().contains("none of its 2 replica(s) is healthy: it serves reads"),
        "{}",
        views.node(lab.master.addr()).read
    );
    assert_invariants(&views);

    // read_only on the master: out of the write pool, unless --allow-read-only (the original's behaviour).
    lab.master.sql("SET GLOBAL read_only=1");
    let args = [lab.master.port_arg(), "--defaults-file".into(), lab.checker_cnf.display().to_string()];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = check(M, &a);
    v.code_is(2).summary_has("read_only=ON: not writable");
    let mut allowed = a.clone();
    allowed.push("--allow-read-only");
    run(M, &allowed).exits(0);

    // MariaDB's read_only enum (`NO_LOCK`, `NO_LOCK_NO_ADMIN`: read-only without the lock), on the
    // server that takes it: read-only, out of the write pool. A server that rejects it (10.11 and
    // 11.8.9 do) must say so with "wrong value" (1231), and the values stay read-only in the unit
    // table (`switch_on`).
    use mysql::prelude::Queryable;
    for value in ["NO_LOCK", "NO_LOCK_NO_ADMIN"] {
        match lab.master.conn().query_drop(format!("SET GLOBAL read_only='{value}'")) {
            Ok(()) => {
                let v = check(M, &a);
                assert_eq!(v.code(), 2, "read_only={value}: {v:?}");
                assert!(v.summary().contains("read_only=ON: not writable"), "read_only={value}: {v:?}");
                println!("read_only={value}: taken by the server, read as read-only");
            }
            Err(mysql::Error::MySqlError(e)) if e.code == 1231 => println!("read_only={value}: this server rejects it ({})", e.message),
            Err(e) => panic!("SET GLOBAL read_only='{value}': {e}"),
        }
    }
    lab.master.sql("SET GLOBAL read_only=1");
}

#[test]
fn lag_over_max_lag() {
    let lab = MariaLab::start(1);
    let r0 = &lab.replicas[0];
    r0.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=60; START SLAVE");
    lab.master.sql("INSERT INTO lab.t VALUES (10, 'delayed')");
    r0.wait_status("", "Seconds_Behind_Master", |v| v.and_then(|l| l.parse::<u64>().ok()).is_some_and(|l| l >= 3));
    let views = lab.observe().read_args(&["--max-lag", "2"]).run();
    views.assert(&[lab.master.addr()], &[lab.master.addr()]);
    let lagging = &views.node(lab.replicas[0].addr()).read;
    lagging.summary_has("over --max-lag 2s");
    assert!(lagging.fact("channels.0.lag_seconds").as_u64().unwrap() >= 3);
    assert!(views.node(lab.master.addr()).read.summary().contains("it serves reads"), "{}", views.node(lab.master.addr()).read);
    assert_invariants(&views);
    // Under the default --max-lag 120 the same replica serves reads, and the master leaves the pool.
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr()]);
    assert_invariants(&views);
}

#[test]
fn replica_down_then_all_replicas_down() {
    let mut lab = MariaLab::start(2);
    lab.replicas[1].proc.kill();
    // The master may keep a dead replica's dump thread until it next writes to it: checks must
    // be right either way (its probe fails), so nothing waits for it to go.
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.replicas[0].addr()]);
    assert_eq!(
        views.node(lab.replicas[1].addr()).read.summary(),
        format!("cannot connect to {}: connection refused", lab.replicas[1].addr())
    );
    assert_invariants(&views);

    lab.replicas[0].proc.kill();
    let views = lab.observe().run();
    views.assert(&[lab.master.addr()], &[lab.master.addr()]);
    assert_eq!(write_pool(&views), read_pool(&views));
    assert_invariants(&views);
}

#[test]
fn master_down() {
    let mut lab = MariaLab::start(2);
    lab.master.proc.kill();
    for r in &lab.replicas {
        r.wait_status("", "Slave_IO_Running", |v| v != Some("Yes"));
    }
    let views = lab.observe().run();
    views.assert(&NOBODY, &NOBODY);
    let s1 = views.node(lab.replicas[0].addr()).read.summary();
    assert!(s1.contains("the IO thread is not connected") || s1.contains("the IO thread has stopped"), "{s1}");
    assert!(write_pool(&views).is_empty() && read_pool(&views).is_empty());
    assert_invariants(&views);
}

/// A replica is promoted by hand, the other repointed, and the old master returns read_only.
#[test]
fn promotion_and_old_master_back_read_only() {
    let mut lab = MariaLab::start(2);
    lab.master.proc.kill();
    let (new, other) = (&lab.replicas[0], &lab.replicas[1]);
    new.sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    other.sql(&format!("STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}; START SLAVE", new.port));
    other.wait_channel_running("");
    wait_for("dump thread on the new master", Duration::from_secs(20), || (new.dump_threads(Some("repl")) == 1).then_some(()));
    new.sql("INSERT INTO lab.t VALUES (20, 'after promotion')");
    let views = lab.observe().run();
    views.assert(&[lab.replicas[0].addr()], &[lab.replicas[1].addr()]);
    assert_eq!(write_pool(&views), vec![new.addr().as_str()]);
    assert_invariants(&views);

    // The old master comes back with read_only=ON (as every server's my.cnf should say).
    lab.master.restart_with(&["--read-only"]);
    let views = lab.observe().run();
    views.assert(&[lab.replicas[0].addr()], &[lab.replicas[1].addr()]);
    assert!(views.node(lab.master.addr()).write.summary().contains("read_only=ON"), "{}", views.node(lab.master.addr()).write);
    assert!(views.node(lab.master.addr()).read.summary().contains("an isolated node"), "{}", views.node(lab.master.addr()).read);
    assert_eq!(write_pool(&views), vec![new.addr().as_str()]);
    assert_eq!(read_pool(&views), vec![other.addr().as_str()]);
    assert_invariants(&views);
}

#[test]
fn multi_source_replica_with_one_broken_connection() {
    let dir = TempDir::new("multi");
    let m1 = MariaNode::start(&dir, "m1", 11, &[]);
    // Each master writes its own GTID domain; m2's replication user is not binlogged (m1's users
    // reach the replica through channel 'a').
    let mut m2 = MariaNode::start(&dir, "m2", 12, &["--gtid-domain-id=2"]);
    create_users(&m1);
    m2.sql(&format!(
        "SET SESSION sql_log_bin=0; CREATE USER repl@'%' IDENTIFIED BY '{}'; GRANT REPLICATION SLAVE ON *.* TO repl@'%'; \
         SET SESSION sql_log_bin=1; CREATE DATABASE other",
        lab::mysql_lab::REPL_PASSWORD
    ));
    let r = MariaNode::start(&dir, "r", 13, &["--read-only"]);
    r.replicate_from(&m1, "a");
    r.replicate_from(&m2, "b");
    let cnf = dir.join("checker.cnf");
    write_file(&cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
    let login = ["--defaults-file", cnf.to_str().unwrap()];
    let check_node = |bin: &str, node: &MariaNode| {
        let mut a = vec![node.port.to_string()];
        a.extend(login.iter().map(|x| x.to_string()));
        check(bin, a)
    };
    let v = check_node(S, &r);
    v.code_is(0);
    assert_eq!(v.fact("channels").as_array().unwrap().len(), 2);
    assert_eq!(check_node(S, &m1).code(), 2, "m1's replica is healthy");

    m2.proc.kill();
    r.wait_status("b", "Slave_IO_Running", |v| v != Some("Yes"));
    let v = check_node(S, &r);
    v.code_is(2).summary_has("channel 'b' from");
    assert_eq!(v.fact("channels").as_array().unwrap().len(), 2);
    assert_eq!(check_node(M, &r).code(), 2);
    // m1's only replica is unhealthy (one of its channels is broken): m1 serves reads itself.
    let v = check_node(S, &m1);
    v.code_is(0).reason_has("channel 'b'");
}

/// A CDC reader (mariadb-binlog) opens a dump thread as another user: --repl-user tells them apart.
#[test]
fn cdc_dump_thread_and_repl_user() {
    let lab = MariaLab::start(1);
    lab.master.sql("CREATE USER cdc@'%' IDENTIFIED BY 'cdc-pw'; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO cdc@'%'");
    let mut cmd = std::process::Command::new("mariadb-binlog");
    cmd.args(["--read-from-remote-server", "--stop-never", "-h", "127.0.0.1", "-u", "cdc", "-pcdc-pw"])
        .arg(format!("--port={}", lab.master.port))
        .arg("--result-file=/dev/null")
        .arg("mysql-bin.000001")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _cdc = Proc { child: Some(spawn_tied(&mut cmd)), name: "mariadb-binlog".into() };
    wait_for("the CDC dump thread", Duration::from_secs(20), || (lab.master.dump_threads(Some("cdc")) == 1).then_some(()));

    let mut base = vec![lab.master.port_arg()];
    base.extend(lab.checker_args());
    let with = |extra: &[&'static str]| -> Vec<String> {
        let mut a = base.clone();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    // Counting every dump thread, the CDC reader looks like a second replica.
    let v = check(M, with(&["--min-replicas", "2"]));
    v.code_is(0);
    assert_eq!(v.fact("connected_replicas").as_array().unwrap().len(), 2);
    // With --repl-user only the real replica counts.
    let v = check(M, with(&["--min-replicas", "2", "--repl-user", "repl"]));
    v.code_is(1);
    assert_eq!(v.fact("connected_replicas").as_array().unwrap().len(), 1);
    v.fact_is("other_dump_threads", 1);
    let v = check(S, with(&["--repl-user", "repl"]));
    assert_eq!(v.code(), 2, "the one real replica is healthy: {v:?}");
    // Only the CDC reader, no real replica: the master is a single master for reads.
    lab.replicas[0].sql("STOP SLAVE");
    wait_for("replica dump thread gone", Duration::from_secs(20), || {
        lab.master.sql("INSERT INTO lab.t VALUES (FLOOR(RAND() * 1000000) + 100, 'poke') ON DUPLICATE KEY UPDATE v = 'poke'");
        (lab.master.dump_threads(Some("repl")) == 0).then_some(())
    });
    let v = check(S, with(&["--repl-user", "repl"]));
    v.code_is(0).summary_has("single master");
}

/// A monitor user without REPLICATION MASTER ADMIN cannot list replica hosts: the check falls back
/// to the processlist hosts, which need --replica-port when replicas listen on another port.
#[test]
fn least_privilege_user_and_replica_port() {
    let lab = MariaLab::start_with(1, false);
    let r0 = &lab.replicas[0];
    let mon = ["--defaults-file", lab.monitor_cnf.to_str().unwrap()];
    let mut a = vec![lab.master.port_arg()];
    a.extend(mon.iter().map(|x| x.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // Without --replica-port the master probes its own port, finds no replica there, and keeps serving.
    let v = check(S, &a);
    v.code_is(0);
    let how = v.fact("replica_discovery").as_str().unwrap();
    assert!(how.contains("processlist") && how.contains("1227"), "{how}");
    // With --replica-port it finds the healthy replica and leaves the read pool to it.
    let port = r0.port_arg();
    let mut b = a.clone();
    b.extend(["--replica-port", &port]);
    let v = check(S, &b);
    v.code_is(2).fact_is("probes.0.replica", r0.addr().as_str()).fact_is("probes.0.healthy", true);
    // The monitor user checks replicas fine.
    let mut c = vec![r0.port_arg()];
    c.extend(mon.iter().map(|x| x.to_string()));
    let c: Vec<&str> = c.iter().map(String::as_str).collect();
    run(S, &c).exits(0);
    // A user who may not read the replication status is an error, never "not a replica".
    let weak = lab.dir.join("weak.cnf");
    write_file(&weak, "[client]\nuser=weak\npassword=weak-pw\n", 0o600);
    for bin in [M, S] {
        let v = check(bin, [&r0.port_arg(), "--defaults-file", weak.to_str().unwrap()]);
        v.code_is(2);
        let s = v.summary();
        assert!(s.contains("SHOW ALL REPLICAS STATUS on") && s.contains("1227") && s.contains("SLAVE MONITOR"), "{s}");
    }
}

#[test]
fn credentials_sockets_and_secrets() {
    let lab = MariaLab::start(0);
    let port = lab.master.port_arg();
    let dir = &lab.dir;
    let good = dir.join("pw");
    write_file(&good, &format!("{}\n", CHECKER.1), 0o600);
    let bad_cnf = dir.join("bad.cnf");
    write_file(&bad_cnf, &format!("[client]\nuser={}\npassword=not-the-password\n", CHECKER.0), 0o600);
    let world_cnf = dir.join("world.cnf");
    write_file(&world_cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o644);
    let sock_cnf = dir.join("sock.cnf");
    write_file(
        &sock_cnf,
        &format!("[client]\nuser={}\npassword={}\nsocket={}\n", CHECKER.0, CHECKER.1, lab.master.socket.display()),
        0o600,
    );

    let by_cnf = run(M, [&port, "--defaults-file", lab.checker_cnf.to_str().unwrap()]);
    by_cnf.exits(0);
    assert!(by_cnf.stdout.contains(&format!("login: {}, password from defaults file", CHECKER.0)), "{}", by_cnf.stdout);
    let by_file = run(M, [&port, "--user", CHECKER.0, "--password-file", good.to_str().unwrap()]);
    by_file.exits(0);
    let by_env = run_env(S, [&port, "--user", CHECKER.0], &[("MYSQL_PWD", CHECKER.1)]);
    by_env.exits(0).prints("password from environment (MYSQL_PWD)");
    let by_arg = run(M, [&port, CHECKER.1, "--user", CHECKER.0]);
    by_arg.exits(0).prints("note: the password was given on the command line");
    let wrong = run(M, [&port, "--defaults-file", bad_cnf.to_str().unwrap()]);
    wrong.exits(2);
    assert!(wrong.stdout.starts_with(&format!("MYSQL-MASTER CRITICAL: log in to {}: ERROR 1045", lab.master.addr())), "{}", wrong.stdout);
    let world = run(M, [&port, "--defaults-file", world_cnf.to_str().unwrap()]);
    world.exits(2).prints("chmod o-rwx");
    let missing = run(S, [&port, "--defaults-file", dir.join("nope.cnf").to_str().unwrap()]);
    missing.exits(2).prints("cannot read defaults file");
    // The socket, from --socket or from the defaults file.
    let v = check(M, ["--socket", lab.master.socket.to_str().unwrap(), "--defaults-file", lab.checker_cnf.to_str().unwrap()]);
    v.code_is(0);
    assert_eq!(v.target(), lab.master.socket.to_str().unwrap());
    let v = check(S, ["--defaults-file", sock_cnf.to_str().unwrap()]);
    v.code_is(0);
    assert_eq!(v.target(), lab.master.socket.to_str().unwrap());
    assert_no_secret(&[&by_cnf, &by_file, &by_env, &by_arg, &wrong, &world, &missing], CHECKER.1);
    assert_no_secret(&[&wrong], "not-the-password");
}

#[test]
fn nothing_listening_and_foreign_servers() {
    let port = free_port().to_string();
    for bin in [M, S] {
        let v = check(bin, [&port, "--user", "x"]);
        v.code_is(2);
        assert_eq!(v.summary(), format!("cannot connect to 127.0.0.1:{port}: connection refused"));
    }
    // A server that accepts and never answers the handshake: tests/deadlines.rs.
    let http = FakeServer::start(Fake::Sends(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    let garbage = FakeServer::start(Fake::Sends(b"\x05\x00\x00\x00\xff\xfe\x00garbage\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"));
    for srv in [&http, &garbage] {
        for bin in [M, S] {
            let v = check(bin, [&srv.port.to_string(), "--user", "x", "--timeout", "1s"]);
            v.code_is(2);
            assert!(v.summary().contains(&format!("127.0.0.1:{}", srv.port)), "{v:?}");
        }
    }
}

#[test]
fn bad_usage_exits_2() {
    for a in [
        vec!["abc"],
        vec!["--max-lag", "soon"],
        vec!["--replica-port", "0"],
        vec!["--min-replicas", "-1"],
        vec!["--format", "yaml"],
        vec!["--bogus"],
    ] {
        for bin in [M, S] {
            let r = run(bin, &a);
            assert_eq!(r.exit(), 2, "{bin} {a:?}: {r:?}");
            r.prints("CRITICAL: bad usage");
        }
    }
    for bin in [M, S] {
        let h = run(bin, ["--help"]);
        h.exits(0);
        assert!(h.stdout.contains("--defaults-file") && h.stdout.contains("--repl-user"));
    }
    assert!(run(S, ["--help"]).stdout.contains("--replica-port"));
    let _ = MONITOR;
}

/// `innodb_read_only` (a server that cannot write at all) is in no pool, whatever else it says.
#[test]
fn innodb_read_only_server_is_in_no_pool() {
    let dir = TempDir::new("innodb-ro");
    let node = MariaNode::start(&dir, "ro", 21, &["--innodb-read-only", "--skip-log-bin"]);
    let cnf = dir.join("root.cnf");
    write_file(&cnf, "[client]\nuser=root\n", 0o600);
    for bin in [M, S] {
        let v = check(bin, [node.port_arg(), "--defaults-file".into(), cnf.display().to_string(), "--allow-read-only".into()]);
        v.code_is(2).summary_has("innodb_read_only=ON").fact_is("innodb_read_only", true);
    }
}

/// The facts read in one multi-statement round trip are the ones read statement by statement, on a
/// master with dump threads, a healthy replica and a broken one; a dialect the server contradicts
/// (MySQL 8.4's `@@super_read_only` on MariaDB) is not understood, so the check falls back.
#[test]
fn one_round_trip_reads_the_same_facts_as_step_by_step() {
    use consul_db_checks::cli::{Address, TlsArgs};
    use consul_db_checks::credentials::{PasswordSource, Secret};
    use consul_db_checks::deadline::Deadline;
    use consul_db_checks::mysql_checks::dialect::{Dialect, Flavour};
    use consul_db_checks::mysql_checks::login::MysqlTarget;
    use consul_db_checks::mysql_checks::session::{Batch, Session, Statement};
    use consul_db_checks::mysql_checks::ServerFacts;

    let lab = MariaLab::start(2);
    lab.replicas[1].sql("STOP SLAVE IO_THREAD");
    lab.replicas[1].wait_status("", "Slave_IO_Running", |v| v == Some("No"));
    let deadline = Deadline::new(Duration::from_secs(5));
    for node in lab.nodes() {
        let target = MysqlTarget {
            address: Address::Tcp { host: node.host.clone(), port: node.port },
            user: CHECKER.0.into(),
            password: Some(Secret::new(CHECKER.1)),
            password_source: PasswordSource::File,
            tls: TlsArgs::default(),
            tls_verify: Default::default(),
            server_public_key: None,
            get_server_public_key: false,
        };
        let mut session = Session::open(&target, &deadline).unwrap();
        let dialect = session.dialect().expect("MariaDB's greeting has a version");
        assert_eq!(dialect.flavour, Flavour::MariaDb);
        let batched = ServerFacts::read_batched(&mut session, dialect).unwrap().expect("MariaDB 10.11 understands the batch");
        let stepped = ServerFacts::read_step_by_step(&mut session).unwrap();
        assert_eq!(batched, stepped, "{}", node.addr());
        if node.port == lab.master.port {
            assert_eq!((batched.dump_threads.len(), batched.channels.len()), (2, 0), "{batched:?}");
        } else {
            assert_eq!((batched.dump_threads.len(), batched.channels.len()), (0, 1), "{batched:?}");
        }
        assert_eq!(ServerFacts::read(&mut session).unwrap(), batched);

        let mysql84 = Dialect { flavour: Flavour::MySql((8, 4, 3)) };
        assert_eq!(ServerFacts::read_batched(&mut session, mysql84).unwrap(), None, "{}", node.addr());
        match session.batch(&[Statement::all(&mysql84.variables_select())]).unwrap() {
            Batch::NotUnderstood(words) => assert!(words.contains("1193") && words.contains("super_read_only"), "{words}"),
            other => panic!("{other:?}"),
        }
        // The session is still usable after a refused statement.
        assert_eq!(ServerFacts::read(&mut session).unwrap(), batched);
    }
}

/// The replication link stalls silently: a relay between replica and source stops forwarding and
/// keeps both sockets open (a stateful firewall, a dead NAT entry, a frozen middlebox). The IO
/// thread says Yes and Seconds_Behind_Master stays 0 until slave_net_timeout (60 s). With a
/// heartbeat table the replica is critical within --max-lag + one check interval of the stall,
/// saying how old the heartbeat is; without one the check says it has only the server's figure.
/// The source idle for longer than --max-lag is no alarm (the heartbeat keeps coming); once the
/// relay forwards again the replica is back.
fn stalled_link(writer: lab::mysql_lab::HeartbeatWriter) {
    use lab::mysql_lab::HEARTBEAT_TABLE;
    let dir = TempDir::new("stall");
    let master = MariaNode::start(&dir, "m", 1, &[]);
    create_users(&master);
    let relay = lab::relay::Relay::start(&master.host, master.port);
    let replica = MariaNode::start(&dir, "r", 2, &["--read-only"]);
    replica.replicate_through(&master, "127.0.0.1", relay.port, "");
    let _writer = master.write_heartbeat(writer);
    if writer == lab::mysql_lab::HeartbeatWriter::Event {
        replica.sql(lab::mysql_lab::HEARTBEAT_EVENT_SQL);
    }
    replica.wait_caught_up(&master);
    let cnf = dir.join("checker.cnf");
    write_file(&cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
    let base = [replica.port_arg(), "--defaults-file".into(), cnf.display().to_string(), "--max-lag".into(), "5".into()];
    let with_heartbeat: Vec<String> = base.iter().cloned().chain(["--heartbeat-table".into(), HEARTBEAT_TABLE.into()]).collect();
    // Idle for longer than --max-lag: no alarm, the heartbeat keeps the lag honest and small.
    std::thread::sleep(Duration::from_secs(6));
    check(S, &with_heartbeat).code_is(0).summary_has("(heartbeat ").fact_is("channels.0.source_server_id", 1);
    check(S, &base).code_is(0).summary_has("Seconds_Behind_Master 0s (no heartbeat)");

    relay.pause();
    let (critical, after) = check_until(S, &with_heartbeat, 2, Duration::from_secs(20));
    // The server's own figure says all is well, the heartbeat does not.
    critical.fact_is("channels.0.io_running", "Yes").fact_is("channels.0.lag_seconds", 0).summary_has("old, Seconds_Behind_Master 0s)");
    let blind = check(S, &base);
    blind.code_is(0).summary_has("Seconds_Behind_Master 0s (no heartbeat)");
    assert!(blind.fact("lag_evidence").as_str().unwrap().contains("stalls silently"), "{blind}");
    println!(
        "stalled link ({writer:?}): critical {} ms after the stall with --max-lag 5s; without a heartbeat: {}",
        after.as_millis(),
        blind.summary()
    );
    assert!(after <= Duration::from_secs(5 + 2), "critical only {after:?} after the stall (--max-lag 5s, checks every 0.5s)");

    relay.resume();
    wait_for("the replica back in the read pool", Duration::from_secs(30), || (check(S, &with_heartbeat).code() == 0).then_some(()));
}

#[test]
fn a_silently_stalled_link_is_caught_by_pt_heartbeat() {
    stalled_link(lab::mysql_lab::HeartbeatWriter::PtHeartbeat);
}

#[test]
fn a_silently_stalled_link_is_caught_by_the_heartbeat_event() {
    stalled_link(lab::mysql_lab::HeartbeatWriter::Event);
}

/// The row read is the one of the replica's own source (Master_Server_Id), never another server's:
/// a fresh row of a former source does not hide a stale one, a stale row of a former source does
/// not make a healthy replica lag; a missing row and a missing table are critical, named.
#[test]
fn the_heartbeat_row_is_the_current_sources() {
    use lab::mysql_lab::HEARTBEAT_TABLE;
    let lab = MariaLab::start(1);
    let _writer = lab.master.write_heartbeat(lab::mysql_lab::HeartbeatWriter::PtHeartbeat);
    // A former source's row, an hour old.
    lab.master.sql(&format!("REPLACE INTO {HEARTBEAT_TABLE} (ts, server_id) VALUES ('2026-01-01T00:00:00.000000', 99)"));
    lab.replicas[0].wait_caught_up(&lab.master);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![lab.replicas[0].port_arg()];
        a.extend(lab.checker_args());
        a.extend(["--max-lag", "5", "--heartbeat-table"].iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    check(S, args(&[HEARTBEAT_TABLE])).code_is(0).summary_has("(heartbeat ");
    check(S, args(&[HEARTBEAT_TABLE, "--heartbeat-server-id", "99"])).code_is(2).summary_has("(heartbeat ");
    check(S, args(&[HEARTBEAT_TABLE, "--heartbeat-server-id", "7"]))
        .code_is(2)
        .summary_has("no heartbeat: there is no row for server_id 7 (the source of the default channel) in percona.heartbeat");
    check(S, args(&["percona.nosuch"])).code_is(2).summary_has("heartbeat table percona.nosuch does not exist");
    // The master's read check probes its replica with the same heartbeat: the replica is healthy.
    let mut m = vec![lab.master.port_arg()];
    m.extend(lab.checker_args());
    m.extend(["--heartbeat-table", HEARTBEAT_TABLE].iter().map(|s| s.to_string()));
    check(S, &m).code_is(2).summary_has("1 healthy replica(s) serve reads");
    m.extend(["--heartbeat-server-id", "99"].iter().map(|s| s.to_string()));
    check(S, &m).code_is(0).reason_has("(heartbeat ");
}

/// A multi-source replica whose channel 'b' stalls silently: each channel's heartbeat is its own
/// source's row (Master_Server_Id), so channel 'b' is named, lagging, while 'a' is fine.
#[test]
fn a_multi_source_replica_with_one_stalled_channel() {
    use lab::mysql_lab::{HEARTBEAT_EVENT_SQL, HEARTBEAT_TABLE};
    let dir = TempDir::new("multi-stall");
    let m1 = MariaNode::start(&dir, "m1", 11, &[]);
    let m2 = MariaNode::start(&dir, "m2", 12, &["--gtid-domain-id=2"]);
    create_users(&m1);
    m2.sql(&format!(
        "SET SESSION sql_log_bin=0; CREATE USER repl@'%' IDENTIFIED BY '{}'; GRANT REPLICATION SLAVE ON *.* TO repl@'%'; SET SESSION sql_log_bin=1; CREATE DATABASE other",
        lab::mysql_lab::REPL_PASSWORD
    ));
    let relay = lab::relay::Relay::start(&m2.host, m2.port);
    let r = MariaNode::start(&dir, "r", 13, &["--read-only"]);
    r.replicate_from(&m1, "a");
    r.replicate_through(&m2, "127.0.0.1", relay.port, "b");
    m1.sql(HEARTBEAT_EVENT_SQL);
    m2.sql(HEARTBEAT_EVENT_SQL);
    wait_for("both sources' heartbeat rows on the replica", Duration::from_secs(30), || {
        r.row(&format!("SELECT COUNT(*) AS n FROM {HEARTBEAT_TABLE} WHERE server_id IN (11, 12)"))?
            .get("n")
            .cloned()
            .flatten()
            .filter(|n| n == "2")
    });
    let cnf = dir.join("checker.cnf");
    write_file(&cnf, &format!("[client]\nuser={}\npassword={}\n", CHECKER.0, CHECKER.1), 0o600);
    let a = [r.port_arg(), "--defaults-file".into(), cnf.display().to_string(), "--max-lag".into(), "5".into()];
    let a: Vec<String> = a.into_iter().chain(["--heartbeat-table".to_string(), HEARTBEAT_TABLE.to_string()]).collect();
    let v = check(S, &a);
    v.code_is(0).fact_is("channels.0.source_server_id", 11).fact_is("channels.1.source_server_id", 12);
    assert!(v.fact("channels.1.heartbeat_age_seconds").as_f64().unwrap() < 3.0, "{v}");

    relay.pause();
    let (v, after) = check_until(S, &a, 2, Duration::from_secs(20));
    v.summary_has("channel 'b' from").summary_has("(heartbeat ");
    assert_eq!(v.reasons().len(), 1, "channel 'a' is healthy: {v}");
    assert!(v.fact("channels.0.heartbeat_age_seconds").as_f64().unwrap() < 3.0, "{v}");
    println!("multi-source: channel 'b' critical {} ms after its stall", after.as_millis());
    assert!(after <= Duration::from_secs(7), "{v}");
}

/// A replica slowed down (its applier waits on a lock a long transaction on the replica holds):
/// the heartbeat rows queue behind the blocked write and age, so the replica leaves the read pool
/// within --max-lag + one check interval, and is back once the lock is gone.
#[test]
fn a_blocked_applier_is_lag_the_heartbeat_sees() {
    use mysql::prelude::Queryable;
    let lab = MariaLab::start(1);
    let _writer = lab.master.write_heartbeat(lab::mysql_lab::HeartbeatWriter::PtHeartbeat);
    let replica = &lab.replicas[0];
    replica.wait_caught_up(&lab.master);
    let mut a = vec![replica.port_arg()];
    a.extend(lab.checker_args());
    a.extend(["--max-lag", "5", "--heartbeat-table", lab::mysql_lab::HEARTBEAT_TABLE].iter().map(|s| s.to_string()));
    check(S, &a).code_is(0);
    let mut holder = replica.conn();
    holder.query_drop("LOCK TABLES lab.t WRITE").unwrap();
    lab.master.sql("INSERT INTO lab.t VALUES (1, 'blocked')");
    let (v, after) = check_until(S, &a, 2, Duration::from_secs(20));
    v.summary_has("over --max-lag 5s").fact_is("channels.0.sql_running", "Yes");
    println!("blocked applier: critical {} ms after the blocked write", after.as_millis());
    assert!(after <= Duration::from_secs(7), "{v}");
    holder.query_drop("UNLOCK TABLES").unwrap();
    wait_for("the replica caught up again", Duration::from_secs(30), || (run(S, &a).exit() == 0).then_some(()));
}
