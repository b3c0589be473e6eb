//! check-mysql-master and check-mysql-slave on a real Galera cluster: three MariaDB nodes with
//! Debian's galera-4 on loopback. One writer (the healthy member that joined the component first),
//! a read pool of the other Synced members, nothing from a desynced node, a node
//! rejecting queries or a node alone in a non-Primary component; the writer killed and the next one
//! taking over; the old writer back without a second writer; a node restarted without Galera: a
//! second writer when judged by what it runs, in no pool under --replication galera (the
//! generator's, for the `galera` kind); an asynchronous read replica of the cluster keeping the
//! asynchronous rules.

use lab::galera_lab::GaleraLab;
use lab::pools::{assert_invariants, read_pool, write_pool, Observable};
use lab::*;
use std::time::{Duration, Instant};

/// What a client sees: whether an INSERT on `node` is acknowledged, or the server's refusal.
fn client_write(node: &lab::galera_lab::GaleraNode) -> Result<(), String> {
    use mysql::prelude::Queryable;
    let opts = mysql::OptsBuilder::new()
        .user(Some("root"))
        .ip_or_hostname(Some(node.host.clone()))
        .tcp_port(node.port)
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(2)))
        .read_timeout(Some(Duration::from_secs(5)))
        .write_timeout(Some(Duration::from_secs(5)));
    let mut c = mysql::Conn::new(opts).map_err(|e| e.to_string())?;
    c.query_drop(format!("INSERT INTO lab.t (node) VALUES ('{}')", node.name)).map_err(|e| e.to_string())
}

#[test]
fn one_writer_synced_readers_and_every_out_of_service_state() {
    let Some(lab) = GaleraLab::start_or_skip(3, "pools") else { return };
    let [g0, g1, g2] = [&lab.nodes[0], &lab.nodes[1], &lab.nodes[2]];

    // Healthy: one writer (index 0), the two others serve reads, the writer does not.
    let views = lab.observe().run();
    views.assert(&[g0.addr()], &[g1.addr(), g2.addr()]);
    assert_invariants(&views.0);
    let w = &views.node(g0.addr()).write;
    w.summary_has("is the Galera writer: the healthy member that joined the component first");
    assert!(w.fact("members").is_null(), "the writer asks nobody when the members table says it joined first: {w}");
    w.fact_is("role", "galera member").fact_is("galera.cluster_status", "Primary").fact_is("galera.cluster_size", 3);
    views.node(g1.addr()).write.summary_has(&format!("not the writer: {} joined the component earlier: it is the writer", g0.addr()));
    views.node(g0.addr()).read.summary_has("(the Galera writer) is the master; 2 healthy replica(s) serve reads");
    views.node(g2.addr()).read.summary_has("is a Synced Galera member: it serves reads");
    assert_eq!(client_write(g0), Ok(()), "the writer acknowledges a client's write");
    // check-topology, as an operator reads it: one writer, two readers, the writer named.
    let inv = lab.inventory("");
    let inv = inv.to_str().unwrap();
    let topo = check(TOPOLOGY, ["--inventory", inv]);
    topo.code_is(0);
    let group = &topo.fact("groups")[0];
    assert_eq!(
        (group["write"].clone(), group["read"].clone()),
        (serde_json::json!([g0.host]), serde_json::json!([g1.host, g2.host])),
        "{topo}"
    );
    let text = run(TOPOLOGY, ["--inventory", inv]);
    text.prints(&format!("galera galera:{} {}: write: MYSQL-MASTER OK: {} is the Galera writer", g0.port, g0.host, g0.addr()));
    // The cluster as its nodes see it: one Primary component of 3, every node in it.
    text.prints(&format!("galera galera:{}: Primary component (configuration ", g0.port))
        .prints(&format!(") of 3: {}, {}, {}", g0.host, g1.host, g2.host));
    assert_eq!(topo.fact("groups")[0]["components"].as_array().map(Vec::len), Some(1), "{topo}");
    // A monitor that may not read mysql.wsrep_cluster_members: every other member is asked, same answer.
    let blind = lab.dir.file("blind.cnf", "[client]\nuser=blind\npassword=blind-pw\n", 0o600);
    for (node, code) in [(g0, 0), (g1, 2), (g2, 2)] {
        let v = check(MYSQL_MASTER, [node.target_args(), vec!["--defaults-file".into(), blind.display().to_string()]].concat());
        v.code_is(code);
        assert_eq!(v.fact("members").as_array().map(Vec::len), Some(2), "{v}");
    }

    // Desynced (a backup, say): out of both pools; the next member is the writer.
    g0.sql("SET GLOBAL wsrep_desync = ON");
    let views = lab.observe().run();
    views.assert(&[g1.addr()], &[g2.addr()]);
    views.node(g0.addr()).write.summary_has("wsrep_desync is ON");
    views.node(g1.addr()).write.summary_has("is the Galera writer: the healthy member that joined the component first");
    assert_invariants(&views.0);
    let topo = run(TOPOLOGY, ["--inventory", inv]);
    topo.exits(1).prints(&format!("in no pool (lost redundancy): {}: MYSQL-SLAVE CRITICAL", g0.host)).prints("wsrep_desync is ON");
    g0.sql("SET GLOBAL wsrep_desync = OFF");

    // Rejecting queries: out of the read pool; a client's query there fails.
    g2.sql("SET GLOBAL wsrep_reject_queries = ALL");
    let views = lab.observe().run();
    views.assert(&[g0.addr()], &[g1.addr()]);
    views.node(g2.addr()).read.summary_has("wsrep_reject_queries is ALL");
    assert!(client_write(g2).is_err(), "a node rejecting queries refuses the client");
    g2.sql("SET GLOBAL wsrep_reject_queries = NONE");

    // Every member writable on request.
    let views = lab.observe().write_args(&["--galera-writers", "all"]).read_args(&["--galera-writers", "all"]).run();
    let all = [g0.addr(), g1.addr(), g2.addr()];
    assert_eq!(
        (write_pool(&views.0), read_pool(&views.0)),
        (all.iter().map(String::as_str).collect(), all.iter().map(String::as_str).collect())
    );

    // Two members frozen: the third is alone in a non-Primary component within the suspect
    // timeout (2 s in the lab) and leaves both pools; a client's write there is refused.
    g1.freeze();
    g2.freeze();
    let args = [g0.target_args(), vec!["--defaults-file".into(), lab.checker_cnf.display().to_string()]].concat();
    let (_, after) = check_until(MYSQL_MASTER, &args, 2, Duration::from_secs(20));
    println!("the lone node left the write pool {after:?} after its peers froze");
    let alone = check(MYSQL_MASTER, &args);
    alone.code_is(2).summary_has("wsrep_cluster_status is non-Primary: not in the Primary component (no quorum)");
    let refused = client_write(g0);
    assert!(refused.as_ref().is_err_and(|e| e.contains("1047") || e.contains("WSREP")), "{refused:?}");
    let views = lab.observe().run();
    assert!(write_pool(&views.0).is_empty() && read_pool(&views.0).is_empty(), "{views:?}");
    let topo = check(TOPOLOGY, ["--inventory", inv, "--timeout", "5s"]);
    topo.code_is(2).summary_has("no write member");
    // The lone node's view: a non-Primary component of 1 (the frozen ones do not answer).
    assert_eq!(
        topo.fact("groups")[0]["components"],
        serde_json::json!([{"view": "non-Primary component of 1", "nodes": [g0.host]}]),
        "{topo}"
    );
    g1.thaw();
    g2.thaw();
    for n in &lab.nodes {
        n.wait_synced(3);
    }
    lab.observe().run().assert(&[g0.addr()], &[g1.addr(), g2.addr()]);
}

/// The writer killed: the next member takes over once the component has evicted it; the old
/// writer back (a new node identity, state transfer): still exactly one writer, sampled through the
/// rejoin, every node that is not Synced (joiner, donor) in no pool, and no failback.
#[test]
fn the_writer_killed_then_back() {
    let Some(mut lab) = GaleraLab::start_or_skip(3, "failover") else { return };
    lab.observe().run().assert(&[lab.nodes[0].addr()], &[lab.nodes[1].addr(), lab.nodes[2].addr()]);
    let killed = Instant::now();
    lab.nodes[0].proc.kill();
    let took_over = lab::wait_for("a new writer", Duration::from_secs(30), || {
        let views = lab.observe().run();
        assert_invariants(&views.0);
        let writers: Vec<String> = write_pool(&views.0).into_iter().map(String::from).collect();
        (writers.len() == 1).then(|| writers[0].clone())
    });
    println!("new writer {took_over} {:?} after the writer was killed", killed.elapsed());
    assert_ne!(took_over, lab.nodes[0].addr());
    let survivor = lab.nodes.iter().find(|n| n.addr() == took_over).unwrap();
    assert_eq!(client_write(survivor), Ok(()), "the new writer acknowledges a client's write");

    // Back: sample the pools while it rejoins (state transfer) and after.
    let (stop, seen) =
        (std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)), std::sync::Arc::new(std::sync::Mutex::new(Vec::new())));
    let targets = lab.targets();
    let sampler = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for _ in 0..600 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let writers: Vec<String> =
                    targets.iter().filter(|t| check(MYSQL_MASTER, &t.args).in_pool()).map(|t| t.addr.clone()).collect();
                seen.lock().unwrap().push(writers);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    lab.rejoin(0, 3);
    for _ in 0..10 {
        let views = lab.observe().run();
        assert_invariants(&views.0);
        assert_eq!(write_pool(&views.0).len(), 1, "{views:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let seen = seen.lock().unwrap();
    let most = seen.iter().map(Vec::len).max().unwrap_or(0);
    println!("{} samples during the rejoin, at most {most} writer(s) at once", seen.len());
    assert!(most <= 1, "two writers during the rejoin: {:?}", seen.iter().find(|w| w.len() > 1));
    let views = lab.observe().run();
    let writer = write_pool(&views.0)[0].to_string();
    println!("after the rejoin: writer {writer}, readers {:?}", read_pool(&views.0));
    // Killed, it came back with its old identity (Galera's pc.recovery keeps it in gvwstate.dat):
    // the earliest-joined member again, it may take the role back once Synced, and only then.
    assert!([took_over.as_str(), lab.nodes[0].addr().as_str()].contains(&writer.as_str()), "{views:?}");

    // A clean restart gives a node a new identity: it joins last and never takes the role back.
    let i = lab.nodes.iter().position(|n| n.addr() == writer).unwrap();
    lab.nodes[i].stop_cleanly();
    let next = lab::wait_for("the next writer", Duration::from_secs(30), || {
        let w: Vec<String> = write_pool(&lab.observe().run().0).into_iter().map(String::from).collect();
        (w.len() == 1).then(|| w[0].clone())
    });
    lab.rejoin(i, 3);
    for _ in 0..5 {
        let views = lab.observe().run();
        assert_invariants(&views.0);
        assert_eq!(write_pool(&views.0), vec![next.as_str()], "no failback after a clean restart: {views:?}");
    }
    println!("{writer} stopped cleanly: {next} took over and kept the role after {writer} rejoined");
}

/// A node restarted without Galera (its my.cnf lost the provider: `wsrep_on=OFF`) is a standalone,
/// writable server on the cluster's address: judged by what it runs, it passes beside the writer
/// and a client's write there is acknowledged and never reaches the cluster. The `galera` kind's
/// checks (`--replication galera`, what the generator passes) keep it out of both pools; a Galera
/// node under `--replication async` (a `mysql` group) is refused the same way.
#[test]
fn a_node_restarted_without_galera_is_in_no_pool_of_the_galera_kind() {
    let Some(mut lab) = GaleraLab::start_or_skip(3, "expected replication") else { return };
    lab.nodes[2].stop_cleanly();
    lab.nodes[2].launch_without_galera();
    let [g0, g1, g2] = [&lab.nodes[0], &lab.nodes[1], &lab.nodes[2]];
    for n in [g0, g1] {
        n.wait_synced(2);
    }

    // Judged by what it runs: two writers.
    let views = lab.observe().run();
    assert_eq!(write_pool(&views.0), vec![g0.addr().as_str(), g2.addr().as_str()], "{views:?}");
    views.node(g2.addr()).write.fact_is("role", "master");
    assert_eq!(client_write(g2), Ok(()), "the standalone node acknowledges a write the cluster never sees");

    // The galera kind: only the cluster's writer, and the standalone node named.
    let galera = ["--replication", "galera"];
    let views = lab.observe().write_args(&galera).read_args(&galera).run();
    views.assert(&[g0.addr()], &[g1.addr()]);
    assert_invariants(&views.0);
    views.node(g2.addr()).write.code_is(2).summary_has(&format!(
        "{} is a standalone server (no Galera, no Group Replication, no replication channel), \
         but --replication galera expects a Galera node (wsrep_on=ON): a Galera node started without its provider takes writes alone",
        g2.addr()
    ));
    views.node(g2.addr()).read.code_is(2).summary_has("--replication galera expects a Galera node");
    // The same through the generated checks (the inventory's kind galera), as an operator reads it.
    let inv = lab.inventory("");
    let topo = run(TOPOLOGY, ["--inventory", inv.to_str().unwrap()]);
    topo.exits(1).prints(&format!("in no pool (lost redundancy): {}", g2.host)).prints("expects a Galera node");
    assert_eq!(check(TOPOLOGY, ["--inventory", inv.to_str().unwrap()]).fact("groups")[0]["write"], serde_json::json!([g0.host]));

    // A Galera node in a group of asynchronous replication (`--replication async`): refused, named.
    let args = [g0.target_args(), lab.checker_args(), vec!["--replication".into(), "async".into()]].concat();
    check(MYSQL_MASTER, &args).code_is(2).summary_has(&format!(
        "{} is a Galera node (wsrep_on=ON), but --replication async expects no Galera and no Group Replication (asynchronous replication or none)",
        g0.addr()
    ));
}

/// An asynchronous replica of the cluster (a read replica replicating from a member's binary log)
/// keeps the asynchronous rules under the `galera` kind: it serves reads while its link is healthy,
/// never writes, and leaves the read pool when its link stops; the cluster keeps one writer.
#[test]
fn an_asynchronous_replica_of_the_cluster_keeps_the_asynchronous_rules() {
    let binlog = ["--log-bin=galera-bin", "--log-slave-updates", "--server-id=1"];
    let Some(lab) = GaleraLab::start_with_or_skip(3, &binlog, "read replica") else { return };
    let g0 = &lab.nodes[0];
    g0.sql(&format!("CREATE USER repl@'%' IDENTIFIED BY '{}'; GRANT REPLICATION SLAVE ON *.* TO repl@'%'", lab::mysql_lab::REPL_PASSWORD));
    let dir = TempDir::new("galera-replica");
    let replica = lab::mysql_lab::MariaNode::start_on(&dir, "r", 9, "127.0.0.5", g0.port, &[]);
    let (file, pos) = g0.master_status();
    replica.sql(&format!(
        "SET SESSION sql_log_bin = 0;
         CREATE USER {u}@'%' IDENTIFIED BY '{p}'; GRANT SLAVE MONITOR, PROCESS ON *.* TO {u}@'%';
         CREATE DATABASE lab; CREATE TABLE lab.t (id INT PRIMARY KEY AUTO_INCREMENT, k VARCHAR(40), node VARCHAR(20));
         CHANGE MASTER TO MASTER_HOST='{h}', MASTER_PORT={port}, MASTER_USER='repl', MASTER_PASSWORD='{rp}',
           MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=1;
         START SLAVE",
        u = lab::galera_lab::CHECKER.0,
        p = lab::galera_lab::CHECKER.1,
        h = g0.host,
        port = g0.port,
        rp = lab::mysql_lab::REPL_PASSWORD,
    ));
    replica.wait_channel_running("");
    assert_eq!(client_write(g0), Ok(()));
    lab::wait_for("the write on the read replica", Duration::from_secs(20), || {
        replica.row("SELECT COUNT(*) AS n FROM lab.t").and_then(|r| r.get("n").cloned().flatten()).filter(|n| n != "0")
    });

    let galera = ["--replication".to_string(), "galera".to_string()];
    let args =
        [vec!["--host".into(), replica.host.clone(), "--port".into(), replica.port.to_string()], lab.checker_args(), galera.to_vec()]
            .concat();
    let read = check(MYSQL_SLAVE, &args);
    read.code_is(0).fact_is("role", "replica");
    check(MYSQL_MASTER, &args).code_is(2).summary_has(&format!("is a replica of {}, not the master", g0.addr()));
    // Through the generated checks: the replica in the group's inventory reads, the cluster writes.
    let nodes: Vec<String> = lab.nodes.iter().map(|n| format!("\"{}\"", n.host)).chain([format!("\"{}\"", replica.host)]).collect();
    let inv = dir.file(
        "inventory.json",
        &format!(
            r#"[{{"kind":"galera","name":"galera","port":{},"nodes":[{}],"defaults_file":"{}"}}]"#,
            g0.port,
            nodes.join(","),
            lab.checker_cnf.display()
        ),
        0o644,
    );
    let topo = check(TOPOLOGY, ["--inventory", inv.to_str().unwrap()]);
    topo.code_is(0);
    assert_eq!(
        (topo.fact("groups")[0]["write"].clone(), topo.fact("groups")[0]["read"].clone()),
        (serde_json::json!([g0.host]), serde_json::json!([lab.nodes[1].host, lab.nodes[2].host, replica.host])),
        "{topo}"
    );
    // Its link stopped: out of the read pool, named.
    replica.sql("STOP SLAVE IO_THREAD");
    check(MYSQL_SLAVE, &args).code_is(2).summary_has("IO thread");
}
