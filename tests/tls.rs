//! TLS (rustls) against real servers: Redis with --tls-port, MariaDB with --ssl-*, certificates made
//! by openssl for the test; verification, mutual TLS, a wrong CA, and a half-open TLS handshake.

use lab::mysql_lab::{MariaNode, TLS_USER};
use lab::pki::Pki;
use lab::redis_lab;
use lab::*;

#[test]
fn redis_over_tls() {
    let pki = Pki::generate();
    let dir = TempDir::new("redis-tls");
    let (_server, port) = redis_lab::start_tls(&pki, &dir.0, "no");
    let p = port.to_string();
    let v = check("check-redis-master", [&p, "--tls-ca", &pki.arg("ca.crt")]);
    assert_eq!(v.code(), 0, "{v}");
    assert_eq!(run("check-redis-slave", [&p, "--tls-ca", &pki.arg("ca.crt")]).exit(), 0);
    // Without --tls the TLS port does not speak plain Redis.
    assert_eq!(run("check-redis-master", [&p, "--timeout", "1s"]).exit(), 2);
    // A CA that did not sign the server's certificate.
    let v = check("check-redis-master", [&p, "--tls-ca", &pki.arg("other-ca.crt")]);
    assert_eq!(v.code(), 2);
    let s = v.summary().to_lowercase();
    assert!(s.contains(&format!("127.0.0.1:{port}")) && s.contains("certificate"), "{s}");
    // A missing CA file is named.
    let r = run("check-redis-master", [&p, "--tls-ca", "/nonexistent/ca.crt"]);
    assert!(r.exit() == 2 && r.stdout.contains("cannot read CA certificate /nonexistent/ca.crt"), "{}", r.stdout);
}

#[test]
fn redis_mutual_tls() {
    let pki = Pki::generate();
    let dir = TempDir::new("redis-mtls");
    let (_server, port) = redis_lab::start_tls(&pki, &dir.0, "yes");
    let p = port.to_string();
    let (ca, cert, key) = (pki.arg("ca.crt"), pki.arg("client.crt"), pki.arg("client.key"));
    let a = [p.as_str(), "--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    assert_eq!(run("check-redis-master", a).exit(), 0);
    // Without a client certificate the server refuses.
    let r = run("check-redis-master", [&p, "--tls-ca", &pki.arg("ca.crt"), "--timeout", "2s"]);
    assert_eq!(r.exit(), 2, "{r:?}");
    // A key readable by every user is refused before anything is sent.
    let open_key = dir.join("open.key");
    std::fs::copy(pki.path("client.key"), &open_key).unwrap();
    write_file(&open_key, &std::fs::read_to_string(pki.path("client.key")).unwrap(), 0o644);
    let r = run(
        "check-redis-master",
        [&p, "--tls-ca", &pki.arg("ca.crt"), "--tls-cert", &pki.arg("client.crt"), "--tls-key", open_key.to_str().unwrap()],
    );
    assert!(r.exit() == 2 && r.stdout.contains("TLS key") && r.stdout.contains("chmod"), "{}", r.stdout);
}

#[test]
fn mariadb_over_tls() {
    let pki = Pki::generate();
    let dir = TempDir::new("mariadb-tls");
    // Its user may only log in over TLS: a silent fallback to plain text would fail.
    let node = MariaNode::start_tls(&dir, "tls", &pki);
    let cnf = dir.join("tls.cnf");
    let (user, password) = TLS_USER;
    write_file(&cnf, &format!("[client]\nuser={user}\npassword={password}\nssl-ca={}\n", pki.arg("ca.crt")), 0o600);
    let port = node.port_arg();
    let v = check("check-mysql-master", [&port, "--defaults-file", cnf.to_str().unwrap()]);
    assert_eq!(v.code(), 0, "ssl-ca in the defaults file turns TLS on: {v}");
    let pw = dir.join("pw");
    write_file(&pw, &format!("{password}\n"), 0o600);
    let base = [port.as_str(), "--user", user, "--password-file", pw.to_str().unwrap()];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        check("check-mysql-slave", &a)
    };
    assert_eq!(with(&["--tls-ca", &pki.arg("ca.crt")]).code(), 0);
    assert_eq!(
        with(&["--tls-ca", &pki.arg("ca.crt"), "--tls-cert", &pki.arg("client.crt"), "--tls-key", &pki.arg("client.key")]).code(),
        0
    );
    let v = with(&[]);
    assert_eq!(v.code(), 2, "plain text must be refused for a REQUIRE SSL user: {v}");
    assert!(v.summary().contains("1045"), "{v}");
    let v = with(&["--tls-ca", &pki.arg("other-ca.crt")]);
    assert_eq!(v.code(), 2, "{v}");
    assert!(v.summary().starts_with(&format!("TLS with 127.0.0.1:{port}")), "{v}");
}
