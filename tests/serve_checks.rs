//! serve-checks: one node's checks over HTTP, against real servers (the Consul lab's Redis with
//! Sentinels and MariaDB), then as a hostile client would use it: garbage, huge and slow heads,
//! thousands of connections, pipelining, traversal, a check that hangs past its deadline.

use lab::consul_lab::{ConsulLab, MYSQL_HOSTS, REDIS_HOSTS};
use lab::http_lab::{exchange, ServeChecks};
use lab::mysql_lab::CHECKER;
use lab::*;
use serde_json::Value;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn serves_each_nodes_checks_with_their_status() {
    let lab = ConsulLab::start();
    let port = lab.redis.master.port;
    let (w, r) = (format!("w-{port}-redis-lab"), format!("r-{port}-redis-lab"));
    let master = ServeChecks::start(&lab.inventory, REDIS_HOSTS[0], &format!("{}:{}", REDIS_HOSTS[0], free_port()), &[]);
    let replica = ServeChecks::start(&lab.inventory, REDIS_HOSTS[1], &format!("{}:{}", REDIS_HOSTS[1], free_port()), &[]);

    // GET / lists the node's services.
    let list = master.get("/");
    assert_eq!(list.status, 200, "{}", list.raw);
    assert!(list.body.contains(&format!("/{w}\twrite\tcheck-redis-master")) && list.body.contains(&format!("/{r}\tread")), "{}", list.body);
    let list: Value = serde_json::from_str(&master.get("/?format=json").body).unwrap();
    assert_eq!(list["services"].as_array().unwrap().len(), 2, "{list}");

    // The master: write passing (200), read critical (503: its replicas serve reads). The body is
    // the check's own text output.
    let write = master.get(&format!("/{w}"));
    assert_eq!(write.status, 200, "{}", write.raw);
    assert!(write.body.starts_with(&format!("REDIS-MASTER OK: {}:{port}", REDIS_HOSTS[0])), "{}", write.body);
    assert_eq!(write.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(write.header("Content-Length").unwrap().parse::<usize>().unwrap(), write.body.len());
    assert_eq!(master.get(&format!("/{r}")).status, 503);
    assert_eq!(replica.get(&format!("/{w}")).status, 503);
    let read = replica.get(&format!("/{r}"));
    assert!(read.status == 200 && read.body.starts_with("REDIS-SLAVE OK"), "{}", read.raw);

    // Patroni's ?lag= on a read service tightens the generated limit, never loosens it; bytes
    // with a B; the write service and any other query are refused (400).
    let limit_of = |query: &str| -> Value {
        let v: Value = serde_json::from_str(&replica.get(&format!("/{r}?format=json&{query}")).body).unwrap();
        v["facts"]["max_lag_seconds"].clone()
    };
    let generated = limit_of("");
    assert_eq!(limit_of("lag=1s"), 1, "tightened below the generated {generated}");
    assert_eq!(limit_of("lag=1h"), generated, "never loosened");
    let bytes = replica.get(&format!("/{r}?lag=16MB"));
    assert!(bytes.status == 200 && bytes.body.contains(" bytes behind"), "{}", bytes.raw);
    for refused in [format!("/{w}?lag=5s"), format!("/{r}?lag=soon"), format!("/{r}?verbose=1")] {
        let answer = replica.get(&refused);
        assert_eq!(answer.status, 400, "{refused}: {}", answer.raw);
    }

    // JSON by query or by Accept; HEAD has the status and no body.
    let json = master.send(format!("GET /{w} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n").as_bytes());
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    let v: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!((v["check"].as_str(), v["status"].as_str()), (Some("redis-master"), Some("passing")), "{v}");
    let v: Value = serde_json::from_str(&master.get(&format!("/{r}?format=json")).body).unwrap();
    assert_eq!(v["status"], "critical", "{v}");
    let head = master.send(format!("HEAD /{w} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    assert!(head.status == 200 && head.body.is_empty() && head.header("Content-Length").is_some(), "{}", head.raw);

    // Warning is 429 (what Consul's HTTP check reads as warning): a group asking for more replicas.
    let text = std::fs::read_to_string(&lab.inventory).unwrap();
    let mut inv: Value = serde_json::from_str(&text).unwrap();
    inv["groups"][0]["min_replicas"] = 5.into();
    let warn_inv = lab.mysql_dir.join("warn.json");
    std::fs::write(&warn_inv, inv.to_string()).unwrap();
    let warn = ServeChecks::start(&warn_inv, REDIS_HOSTS[0], &format!("{}:{}", REDIS_HOSTS[0], free_port()), &[]);
    let answer = warn.get(&format!("/{w}"));
    assert!(answer.status == 429 && answer.body.starts_with("REDIS-MASTER WARNING"), "{}", answer.raw);

    // The operator drains the master's write service: 503, the body says so; back when removed.
    let drain = lab.drain_file(REDIS_HOSTS[0], &w);
    std::fs::create_dir_all(drain.parent().unwrap()).unwrap();
    std::fs::write(&drain, "").unwrap();
    let drained = master.get(&format!("/{w}"));
    assert!(drained.status == 503 && drained.body.contains("drained by the operator"), "{}", drained.raw);
    std::fs::remove_file(&drain).unwrap();
    assert_eq!(master.get(&format!("/{w}")).status, 200);

    // MariaDB: the master's write check, logged in with the checker's defaults file; the password
    // appears in no answer.
    let mysql_port = lab.mysql[0].port;
    let db = ServeChecks::start(&lab.inventory, MYSQL_HOSTS[0], &format!("{}:{}", MYSQL_HOSTS[0], free_port()), &[]);
    let mw = db.get(&format!("/w-{mysql_port}-mysql-lab"));
    assert!(mw.status == 200 && mw.body.starts_with("MYSQL-MASTER OK"), "{}", mw.raw);
    let mr = db.get(&format!("/r-{mysql_port}-mysql-lab?format=json"));
    assert_eq!(mr.status, 503, "{}", mr.raw);
    for reply in [&mw, &mr, &db.get("/")] {
        assert!(!reply.raw.contains(CHECKER.1), "a secret in an answer: {}", reply.raw);
    }

    // A failover: the master killed, Sentinel promotes a replica; the answers follow.
    let mut lab = lab;
    lab.redis.master.proc.kill();
    let other = ServeChecks::start(&lab.inventory, REDIS_HOSTS[2], &format!("{}:{}", REDIS_HOSTS[2], free_port()), &[]);
    wait_for("a promoted replica answering 200 for the write service", Duration::from_secs(40), || {
        let writers = [&replica, &other].iter().filter(|s| s.get(&format!("/{w}")).status == 200).count();
        (writers == 1).then_some(())
    });
    let gone = master.get(&format!("/{w}"));
    assert!(gone.status == 503 && gone.body.contains("cannot connect"), "the killed master: {}", gone.raw);
}

/// A node whose checks are stand-ins in a bin_dir of the test's own: one hangs past every
/// deadline, one counts its runs, one warns. (The server is what is under test here.)
struct FakeNode {
    dir: TempDir,
    inventory: std::path::PathBuf,
}

impl FakeNode {
    fn new(master_script: &str) -> FakeNode {
        let dir = TempDir::new("serve-fake");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        write_file(&bin.join(REDIS_MASTER), &format!("#!/bin/sh\n{master_script}\n"), 0o755);
        let count = dir.join("count");
        write_file(
            &bin.join(REDIS_SLAVE),
            &format!("#!/bin/sh\necho run >> {}\nsleep 0.3\necho 'REDIS-SLAVE WARNING: lagging'\nexit 1\n", count.display()),
            0o755,
        );
        let inventory = dir.join("inventory.json");
        let inv = serde_json::json!({"bin_dir": bin, "drain_dir": dir.join("drain"), "groups": [
            {"kind": "redis", "name": "fake", "port": 6029, "nodes": ["127.0.0.1"], "interval": "2s", "timeout": "1s"}]});
        std::fs::write(&inventory, inv.to_string()).unwrap();
        FakeNode { dir, inventory }
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.join("count")).map(|t| t.lines().count()).unwrap_or(0)
    }
}

#[test]
fn hostile_clients_and_a_hanging_check() {
    let node = FakeNode::new("sleep 30");
    let serve = ServeChecks::start(
        &node.inventory,
        "127.0.0.1",
        &format!("127.0.0.1:{}", free_port()),
        &["--max-connections", "8", "--header-timeout", "1s"],
    );
    let threads_idle = serve.status_field("Threads");

    // A check that hangs past its deadline: killed at Consul's timeout (1s), answered 503.
    let hung = serve.get("/w-6029-redis-fake");
    assert_eq!(hung.status, 503, "{}", hung.raw);
    assert!(hung.body.contains("did not finish within 1s"), "{}", hung.raw);
    assert!(hung.elapsed < Duration::from_millis(1500), "{:?}", hung.elapsed);
    // Warning is 429.
    assert_eq!(serve.get("/r-6029-redis-fake").status, 429);

    // Garbage, TLS hello, huge heads, unknown methods, traversal, percent-encoding: short answers.
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(), 400),
        (b"\x00\x01\x02\x03\n\n".to_vec(), 400),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000)).into_bytes(), 431),
        (format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(9000)).into_bytes(), 431),
        (b"POST /w-6029-redis-fake HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_vec(), 405),
        (b"GET /../w-6029-redis-fake HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /w%2D6029%2Dredis%2Dfake HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET /r-6029-redis-fake/../../etc/passwd HTTP/1.1\r\n\r\n".to_vec(), 404),
        // The absolute form (RFC 9112 3.2.2: a server must accept it): the path decides.
        (b"GET http://x/ HTTP/1.1\r\n\r\n".to_vec(), 200),
        (b"GET http://x/../etc/passwd HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"GET http:/x HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.0\r\n\r\n".to_vec(), 200),
    ];
    for (request, want) in &cases {
        let reply = serve.send(request);
        assert_eq!(reply.status, *want, "{:?} -> {}", String::from_utf8_lossy(&request[..request.len().min(60)]), reply.raw);
        assert!(reply.raw.len() < 4096 && reply.header("Connection") == Some("close"), "{}", reply.raw);
    }
    // Pipelined: the first request is answered, then the connection closes.
    let piped = serve.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /r-6029-redis-fake HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(piped.raw.matches("HTTP/1.1 ").count(), 1, "{}", piped.raw);

    // Slowloris: a head that never ends is answered 408 at the header timeout.
    let mut slow = TcpStream::connect(&serve.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    let started = Instant::now();
    let reply = lab::http_lab::read_reply(&mut slow, Duration::from_secs(5));
    assert!(reply.status == 408 && started.elapsed() < Duration::from_millis(1500), "{:?} {}", started.elapsed(), reply.raw);

    // Every slot held by idle clients: the next is answered 503 at once, then served again once
    // they are gone.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&serve.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let busy = serve.get("/");
    assert!(
        busy.status == 503 && busy.body.contains("busy") && busy.elapsed < Duration::from_millis(500),
        "{:?} {}",
        busy.elapsed,
        busy.raw
    );
    drop(idle);
    wait_for("a free slot", Duration::from_secs(3), || (serve.get("/").status == 200).then_some(()));

    // 10,000 connections, 200 at a time, each sending a few bytes and leaving: the server stays up,
    // its threads and memory bounded.
    let mut peak_threads = 0;
    for _ in 0..50 {
        let conns: Vec<TcpStream> = (0..200).filter_map(|_| TcpStream::connect(&serve.addr).ok()).collect();
        for mut c in &conns {
            let _ = c.write_all(b"GET /");
        }
        peak_threads = peak_threads.max(serve.status_field("Threads"));
    }
    assert!(peak_threads <= threads_idle + 8 * 2 + 2, "threads: {peak_threads} (idle {threads_idle})");
    wait_for("the server serving again", Duration::from_secs(5), || (serve.get("/").status == 200).then_some(()));
    let rss = serve.status_field("VmRSS");
    assert!(rss < 32 << 10, "RSS {rss} KiB");
    println!("serve-checks: after 10,000 connections: peak threads {peak_threads} (idle {threads_idle}), RSS {rss} KiB");
}

#[test]
fn concurrent_requests_share_one_run_with_coalesce() {
    let node = FakeNode::new("echo 'REDIS-MASTER OK: fine'");
    let serve = ServeChecks::start(&node.inventory, "127.0.0.1", &format!("127.0.0.1:{}", free_port()), &["--coalesce", "500ms"]);
    let replies: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5).map(|_| s.spawn(|| serve.get("/r-6029-redis-fake"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(replies.iter().all(|r| r.status == 429 && r.body.contains("lagging")), "{replies:?}");
    assert_eq!(node.runs(), 1, "five concurrent requests, one check run");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(serve.get("/r-6029-redis-fake").status, 429);
    assert_eq!(node.runs(), 2, "a request after the window runs the check again");
    // Without --coalesce every request runs the check.
    let plain = FakeNode::new("true");
    let serve = ServeChecks::start(&plain.inventory, "127.0.0.1", &format!("127.0.0.1:{}", free_port()), &[]);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| serve.get("/r-6029-redis-fake"));
        }
    });
    assert_eq!(plain.runs(), 3);
}

#[test]
fn inetd_mode_answers_one_request_on_stdio() {
    let node = FakeNode::new("echo 'REDIS-MASTER OK: fine'");
    let run = |input: &[u8]| {
        let mut child = std::process::Command::new(bin(SERVE_CHECKS))
            .args(["--inventory", node.inventory.to_str().unwrap(), "--node", "127.0.0.1", "--inetd", "--header-timeout", "1s"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.as_mut().unwrap().write_all(input).unwrap();
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), started.elapsed())
    };
    let (code, out, _) = run(b"GET /w-6029-redis-fake HTTP/1.0\r\n\r\n");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nREDIS-MASTER OK: fine\n"), "{out}");
    let (_, out, _) = run(b"\xff\xfe\n\n");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    // A wrong node or an unreadable inventory: exit 2, nothing served, the message names it.
    let bad = run_env(SERVE_CHECKS, ["--inventory", "/nonexistent.json", "--node", "127.0.0.1", "--inetd"], &[]);
    assert!(bad.code == Some(2) && bad.stderr.contains("/nonexistent.json"), "{}", bad.output());
    let bad = run_env(SERVE_CHECKS, ["--inventory", node.inventory.to_str().unwrap(), "--node", "127.0.0.9", "--inetd"], &[]);
    assert!(bad.code == Some(2) && bad.stderr.contains("node 127.0.0.9 is in no group"), "{}", bad.output());
}

#[test]
fn exchange_helper_bounds_itself() {
    // The client the tests use never waits past its limit (a server that says nothing).
    let silent = FakeServer::start(Fake::Silent);
    let r = exchange(&format!("127.0.0.1:{}", silent.port), b"GET / HTTP/1.0\r\n\r\n", Duration::from_millis(300));
    assert!(r.status == 0 && r.elapsed < Duration::from_secs(2), "{r:?}");
}

/// serve-checks refuses to start (exit 2, naming the path) when a check it would run is missing,
/// rather than answering every request 503.
#[test]
fn a_missing_check_is_refused_at_start() {
    let node = FakeNode::new("exit 0");
    std::fs::remove_file(node.dir.join("bin").join(REDIS_SLAVE)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let r = run(SERVE_CHECKS, ["--inventory", node.inventory.to_str().unwrap(), "--node", "127.0.0.1", "--listen", &listen]);
    r.exits(2).complains("r-6029-redis-fake: the check").complains(REDIS_SLAVE).complains("No such file");
}
