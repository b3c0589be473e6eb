//! Every deadline, measured from outside as Consul measures it: a check exits within its
//! `--timeout` plus 250 ms whatever the server does. One test runs the scenarios one after another, so that no
//! server start-up competes with a timed run (test binaries run one at a time).

use lab::mysql_lab::MariaLab;
use lab::pki::Pki;
use lab::redis_lab::RedisLab;
use lab::*;
use std::time::Duration;

/// The spec's bound: the deadline plus 250 ms.
fn bound(timeout: &str) -> Duration {
    consul_db_checks::duration::parse_duration(timeout).unwrap() + Duration::from_millis(250)
}

/// Runs `bin` with `args` and `--timeout`, asserting exit `code` within the bound; returns the JSON.
fn timed(bin: &str, args: &[&str], timeout: &str, code: i32) -> CheckOutput {
    let mut a = args.to_vec();
    a.extend(["--timeout", timeout]);
    let v = check(bin, &a);
    assert_eq!(v.code(), code, "{bin} {args:?}: {v}");
    assert!(v.run.elapsed < bound(timeout), "{bin} {args:?} took {:?} with --timeout {timeout}: {v}", v.run.elapsed);
    v
}

#[test]
fn every_deadline_holds_against_hostile_servers() {
    let silent = FakeServer::start(Fake::Silent);
    let sp = silent.port.to_string();
    let addr = format!("127.0.0.1:{sp}");
    let dir = TempDir::new("deadlines");
    let pw = dir.join("pw");
    write_file(&pw, "pw\n", 0o600);

    // A server that accepts and never answers: the step and the server are named.
    for (bin, timeout) in [(REDIS_MASTER, "1s"), (REDIS_SLAVE, "500ms")] {
        let v = timed(bin, &[&sp], timeout, 2);
        assert!(v.summary().contains(&format!("INFO replication on {addr}")) && v.summary().contains(timeout), "{v}");
    }
    let v = timed(REDIS_MASTER, &[&sp, "--password-file", pw.to_str().unwrap()], "1s", 2);
    assert!(v.summary().contains(&format!("log in to {addr}")), "{v}");
    // A timeout is no wrong password: no credential hint.
    assert!(!v.summary().contains("check --user"), "{v}");
    for (bin, timeout) in [(MYSQL_MASTER, "1s"), (MYSQL_SLAVE, "500ms")] {
        let v = timed(bin, &[&sp, "--user", "x"], timeout, 2);
        assert!(v.summary().contains(&addr) && v.summary().contains("handshake") && v.summary().contains(timeout), "{v}");
    }
    // A half-open TLS handshake.
    let pki = Pki::generate();
    let ca = pki.arg("ca.crt");
    timed(REDIS_MASTER, &[&sp, "--tls-ca", &ca], "1s", 2);
    timed(MYSQL_MASTER, &[&sp, "--user", "x", "--tls-ca", &ca], "1s", 2);
    // Servers that answer with something else are refused at once.
    let http = FakeServer::start(Fake::Answers(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    for bin in [REDIS_MASTER, MYSQL_SLAVE] {
        timed(bin, &[&http.port.to_string(), "--user", "x"], "1s", 2);
    }

    // A Sentinel that never answers does not take a healthy master (its replica attached) out:
    // warning, in time.
    let lab = RedisLab::builder().replicas(1).start();
    let v = timed(REDIS_MASTER, &[&lab.master.port_arg(), "--sentinel", &addr, "--master-name", "x"], "1s", 1);
    assert!(v.reason_contains(&format!("SENTINEL get-master-addr-by-name on {addr}: no answer within the 750ms deadline")), "{v}");
    // A Redis master that is frozen (SIGSTOP): the kernel still accepts.
    lab.master.proc.signal(libc::SIGSTOP);
    let v = timed(REDIS_MASTER, &[&lab.master.port_arg()], "500ms", 2);
    lab.master.proc.signal(libc::SIGCONT);
    assert!(v.summary().contains(&lab.master.addr()), "{v}");
    drop(lab);

    // A MySQL replica that hangs (SIGSTOP) does not time its master's read check out: the probe
    // gives up at 3/4 of the budget and the master keeps serving reads, warning which replica it
    // could not ask.
    let lab = MariaLab::start(1);
    lab.replicas[0].proc.signal(libc::SIGSTOP);
    let mut a = vec![lab.master.port_arg()];
    a.extend(lab.checker_args());
    let v = timed(MYSQL_SLAVE, &a.iter().map(String::as_str).collect::<Vec<_>>(), "1s", 1);
    lab.replicas[0].proc.signal(libc::SIGCONT);
    v.fact_is("probes.0.healthy", false).summary_has("it serves reads; could not probe");
    let problem = v.fact("probes.0.problem").as_str().unwrap();
    assert!(problem.contains(&lab.replicas[0].addr()) && problem.contains("within 750ms"), "{v}");
}
