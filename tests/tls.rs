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
    let v = check(REDIS_MASTER, [&p, "--tls-ca", &pki.arg("ca.crt")]);
    v.code_is(0);
    assert_eq!(run(REDIS_SLAVE, [&p, "--tls-ca", &pki.arg("ca.crt")]).exit(), 0);
    // Without --tls the TLS port does not speak plain Redis.
    assert_eq!(run(REDIS_MASTER, [&p, "--timeout", "1s"]).exit(), 2);
    // A CA that did not sign the server's certificate.
    let v = check(REDIS_MASTER, [&p, "--tls-ca", &pki.arg("other-ca.crt")]);
    v.code_is(2);
    let s = v.summary().to_lowercase();
    assert!(s.contains(&format!("127.0.0.1:{port}")) && s.contains("certificate"), "{s}");
    // A missing CA file is named.
    let r = run(REDIS_MASTER, [&p, "--tls-ca", "/nonexistent/ca.crt"]);
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
    run(REDIS_MASTER, a).exits(0);
    // Without a client certificate the server refuses.
    let r = run(REDIS_MASTER, [&p, "--tls-ca", &pki.arg("ca.crt"), "--timeout", "2s"]);
    r.exits(2);
    // A key readable by every user is refused before anything is sent.
    let open_key = dir.join("open.key");
    std::fs::copy(pki.path("client.key"), &open_key).unwrap();
    write_file(&open_key, &std::fs::read_to_string(pki.path("client.key")).unwrap(), 0o644);
    let r = run(
        REDIS_MASTER,
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
    let v = check(MYSQL_MASTER, [&port, "--defaults-file", cnf.to_str().unwrap()]);
    assert_eq!(v.code(), 0, "ssl-ca in the defaults file turns TLS on: {v}");
    let pw = dir.join("pw");
    write_file(&pw, &format!("{password}\n"), 0o600);
    let base = [port.as_str(), "--user", user, "--password-file", pw.to_str().unwrap()];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        check(MYSQL_SLAVE, &a)
    };
    assert_eq!(with(&["--tls-ca", &pki.arg("ca.crt")]).code(), 0);
    assert_eq!(
        with(&["--tls-ca", &pki.arg("ca.crt"), "--tls-cert", &pki.arg("client.crt"), "--tls-key", &pki.arg("client.key")]).code(),
        0
    );
    let v = with(&[]);
    assert_eq!(v.code(), 2, "plain text must be refused for a REQUIRE SSL user: {v}");
    v.summary_has("1045");
    let v = with(&["--tls-ca", &pki.arg("other-ca.crt")]);
    v.code_is(2);
    assert!(v.summary().starts_with(&format!("TLS with 127.0.0.1:{port}")), "{v}");
}

/// MySQL's auto-generated certificates name no host: full verification (the default) refuses them
/// by name; `--tls-verify ca` (and `ssl-mode=VERIFY_CA`) checks the chain to `--tls-ca` only, and
/// still refuses a certificate from another CA, even one naming the right address.
#[test]
fn mariadb_chain_only_verification() {
    let pki = Pki::generate();
    let dir = TempDir::new("mariadb-verify-ca");
    let (user, password) = TLS_USER;
    let pw = dir.join("pw");
    write_file(&pw, &format!("{password}\n"), 0o600);
    let nosan = MariaNode::start_tls_as(&dir, "nosan", &pki, "nosan");
    let port = nosan.port_arg();
    let base = [port.as_str(), "--user", user, "--password-file", pw.to_str().unwrap()];
    let with = |port: &str, extra: &[&str]| {
        let mut a: Vec<&str> = vec![port, "--user", user, "--password-file", pw.to_str().unwrap()];
        a.extend(extra);
        check(MYSQL_MASTER, &a)
    };
    let ca = pki.arg("ca.crt");
    let v = with(&port, &["--tls-ca", &ca]);
    v.code_is(2);
    assert!(v.summary().starts_with(&format!("TLS with 127.0.0.1:{port}")) && v.summary().contains("name"), "{v}");
    let v = with(&port, &["--tls-ca", &ca, "--tls-verify", "ca"]);
    v.code_is(0);
    assert!(v.fact("transport").as_str().unwrap().contains("chain verified against --tls-ca"), "{v}");
    let v = with(&port, &["--tls-ca", &pki.arg("other-ca.crt"), "--tls-verify", "ca"]);
    assert_eq!(v.code(), 2, "another CA: {v}");
    let r = run(MYSQL_MASTER, [&base[..], &["--tls-verify", "ca"]].concat());
    assert!(r.exit() == 2 && r.stdout.contains("--tls-verify ca checks the chain against --tls-ca"), "{}", r.stdout);
    // The same from a defaults file, as the mysql client writes it.
    let cnf = dir.join("verify-ca.cnf");
    write_file(&cnf, &format!("[client]\nuser={user}\npassword={password}\nssl-ca={ca}\nssl-mode=VERIFY_CA\n"), 0o600);
    assert_eq!(check(MYSQL_SLAVE, [&port, "--defaults-file", cnf.to_str().unwrap()]).code(), 0);

    // A certificate for the right address from a CA the check was not given: refused in both modes.
    let foreign = MariaNode::start_tls_as(&dir, "foreign", &pki, "foreign");
    let fport = foreign.port_arg();
    for mode in ["full", "ca"] {
        let v = with(&fport, &["--tls-ca", &ca, "--tls-verify", mode]);
        assert_eq!(v.code(), 2, "{mode}: {v}");
        assert!(v.summary().contains("UnknownIssuer") || v.summary().to_lowercase().contains("issuer"), "{mode}: {v}");
    }
}

/// The MySQL driver trusts no CA compiled into the executable (its webpki-roots list is replaced by
/// an empty one), so a given CA is the only one: chain-only verification cannot be met by any
/// publicly issued certificate.
#[test]
fn the_mysql_driver_has_no_public_roots() {
    assert!(webpki_roots::TLS_SERVER_ROOTS.is_empty());
}

/// A Sentinel for the TLS master on `port`: plain text on its own port, or TLS only (`tls`); it
/// reaches the master over TLS either way (`tls-replication`).
fn tls_master_sentinel(pki: &Pki, dir: &TempDir, master_port: u16, tls: bool) -> (Proc, u16) {
    let port = free_port();
    let (plain, tls_port) = if tls { (0, port) } else { (port, 0) };
    let conf = dir.join(format!("sentinel-{port}.conf"));
    let text = format!(
        "port {plain}\ntls-port {tls_port}\nbind 127.0.0.1\ndir {}\ntls-replication yes\ntls-cert-file {}\ntls-key-file {}\n\
         tls-ca-cert-file {}\ntls-auth-clients no\nsentinel monitor tlsmaster 127.0.0.1 {master_port} 1\n",
        dir.0.display(),
        pki.arg("server.crt"),
        pki.arg("server.key"),
        pki.arg("ca.crt"),
    );
    write_file(&conf, &text, 0o600);
    let child = spawn_tied(redis_lab::sentinel_command(&conf).stdout(std::process::Stdio::null()));
    wait_for("Sentinel port", std::time::Duration::from_secs(10), || redis_lab::listening(port));
    (Proc { child: Some(child), name: "sentinel".into() }, port)
}

/// The server's TLS options do not apply to the Sentinels: a TLS master with plain-text Sentinels
/// passes; TLS Sentinels are reached with --sentinel-tls-ca; a TLS mismatch or a wrong CA is a
/// configuration error, named as such, never "cut off from the Sentinel majority".
#[test]
fn sentinels_have_their_own_tls() {
    let pki = Pki::generate();
    let dir = TempDir::new("redis-tls-sentinel");
    let (_server, port) = redis_lab::start_tls(&pki, &dir.0, "no");
    let (_plain, plain_port) = tls_master_sentinel(&pki, &dir, port, false);
    let (_tls, tls_port) = tls_master_sentinel(&pki, &dir, port, true);
    let (p, ca, other) = (port.to_string(), pki.arg("ca.crt"), pki.arg("other-ca.crt"));
    let guarded = |sentinel: u16, extra: &[&str]| {
        let s = format!("127.0.0.1:{sentinel}");
        let mut a = vec![p.as_str(), "--tls-ca", &ca, "--sentinel", &s, "--master-name", "tlsmaster"];
        a.extend(extra);
        check(REDIS_MASTER, &a)
    };
    guarded(plain_port, &[]).code_is(0).reason_has("1 of 1 Sentinels name this node");
    guarded(tls_port, &["--sentinel-tls-ca", &ca]).code_is(0);

    let v = guarded(tls_port, &[]);
    v.code_is(2);
    v.summary_has("the check cannot talk to the Sentinels as configured (a configuration error)");
    v.reason_has("give --sentinel-tls-ca");
    assert!(!v.json.to_string().contains("cut off"), "a configuration error is no partition: {v}");
    let v = guarded(tls_port, &["--sentinel-tls-ca", &other]);
    v.code_is(2);
    v.summary_has("a configuration error");
    v.reason_has("check --sentinel-tls-ca");
    // TLS towards a plain-text Sentinel gets no answer at all: the check cannot tell that from a
    // frozen Sentinel, and says what it may be.
    let v = guarded(plain_port, &["--sentinel-tls-ca", &ca, "--timeout", "1s"]);
    v.code_is(2).reason_has("a plain-text port never answers a TLS handshake");
}

/// Plain text to a TLS port, TLS to a plain-text port: each points at the TLS options.
#[test]
fn tls_mismatch_points_at_the_tls_options() {
    let pki = Pki::generate();
    let dir = TempDir::new("redis-tls-mismatch");
    let (_server, port) = redis_lab::start_tls(&pki, &dir.0, "no");
    let plain = redis_lab::RedisNode::start(&dir, "plain", free_port(), &[]);
    let v = check(REDIS_MASTER, [&port.to_string()]);
    v.code_is(2);
    v.summary_has("the server closed the connection (a TLS port closes plain-text connections: if this is one, give --tls-ca");
    let v = check(REDIS_SLAVE, [&plain.port_arg(), "--tls-ca", &pki.arg("ca.crt"), "--timeout", "500ms"]);
    v.code_is(2);
    v.summary_has("no answer within the 500ms deadline (nothing came back over TLS: a plain-text port never answers a TLS handshake");
    let v = check(REDIS_MASTER, [&port.to_string(), "--tls-ca", &pki.arg("other-ca.crt")]);
    v.code_is(2);
    v.summary_has("TLS: invalid peer certificate");
    v.summary_has("(check --tls-ca, --tls-cert and --tls-key");
    assert!(!v.summary().contains("--user"), "a TLS failure is not a login failure: {v}");
}
