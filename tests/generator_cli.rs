//! gen-consul-services as a command: exit codes, "nothing written" on errors, flags mode, --node.

use lab::*;
use std::path::Path;

const G: &str = GENERATOR;

/// The generated files under `dir` (the generator's own manifest left out).
fn files_under(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name() == ".gen-consul-services.manifest" {
                continue;
            }
            if e.path().is_dir() {
                v.extend(files_under(&e.path()).into_iter().map(|f| format!("{}/{f}", e.file_name().to_string_lossy())));
            } else {
                v.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    v.sort();
    v
}

#[test]
fn a_bad_inventory_writes_nothing_and_names_the_entry() {
    let dir = TempDir::new("gen-bad");
    let inv = dir.join("inv.json");
    // The first group is fine, the second is not: nothing at all may be written.
    std::fs::write(
        &inv,
        r#"[{"kind":"redis","name":"ok","port":6029,"nodes":["10.0.0.1"]},
            {"kind":"mysql","name":"main","port":3306,"nodes":["10.0.0.1"],"timeout":"20s","interval":"10s"}]"#,
    )
    .unwrap();
    let out = dir.join("out");
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    r.exits(2).complains("groups[1] (mysql main:3306): timeout 20s is not below the interval 10s");
    r.complains("nothing was written");
    assert!(files_under(&out).is_empty(), "{:?}", files_under(&out));
    // A literal password is refused without being echoed.
    std::fs::write(&inv, r#"[{"kind":"redis","name":"x","port":1,"nodes":["n"],"password":"hunter2"}]"#).unwrap();
    let r = run(G, ["--inventory", inv.to_str().unwrap()]);
    r.exits(2);
    assert!(!r.output().contains("hunter2") && r.stderr.contains("literal passwords"), "{}", r.stderr);
    // Unreadable and malformed inventories.
    let r = run(G, ["--inventory", dir.join("missing.json").to_str().unwrap()]);
    assert!(r.exit() == 2 && r.stderr.contains("cannot read inventory"), "{}", r.stderr);
    std::fs::write(&inv, "{not json").unwrap();
    let r = run(G, ["--inventory", inv.to_str().unwrap()]);
    assert!(r.exit() == 2 && r.stderr.contains("not valid JSON"), "{}", r.stderr);
}

#[test]
fn flags_mode_node_selection_and_stdout() {
    let dir = TempDir::new("gen-flags");
    let out = dir.join("out");
    let flags = [
        "--kind",
        "redis",
        "--name",
        "test",
        "--port",
        "6029",
        "--address",
        "192.168.0.20",
        "--password-file",
        "/etc/consul.d/secrets/redis-6029",
        "--max-lag",
        "30s",
        "--meta",
        "team=dba",
        "--out",
        out.to_str().unwrap(),
    ];
    let r = run(G, flags);
    r.exits(0);
    assert_eq!(files_under(&out), vec!["r-6029-redis-test.json", "w-6029-redis-test.json"]);
    let w: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("w-6029-redis-test.json")).unwrap()).unwrap();
    assert_eq!(w["service"]["meta"]["team"], "dba");
    assert_eq!(w["service"]["tags"][0], "master-test-6029");
    // Running again changes nothing; --check agrees.
    let again = run(G, flags.iter().chain(&["--check"]));
    again.exits(0);
    // Missing flags and a flag with an inventory are usage errors.
    let r = run(G, ["--kind", "redis", "--name", "test", "--port", "6029"]);
    assert!(r.exit() == 2 && r.stderr.contains("--address"), "{}", r.stderr);

    let inv = Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples/inventory.json");
    let one = dir.join("one");
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--node", "192.168.0.30", "--out", one.to_str().unwrap()]);
    r.exits(0);
    assert_eq!(
        files_under(&one),
        vec!["r-3306-mysql-main.json", "r-6029-redis-test.json", "w-3306-mysql-main.json", "w-6029-redis-test.json"]
    );
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--node", "10.9.9.9"]);
    assert!(r.exit() == 2 && r.stderr.contains("node 10.9.9.9 is in no group"), "{}", r.stderr);
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--name", "x"]);
    assert!(r.exit() == 2, "{r:?}");
    // Without --out every file is printed under a header.
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--node", "192.168.0.40", "--format", "keepalived"]);
    r.exits(0);
    assert!(r.stdout.starts_with("==> keepalived.conf <==\n") && r.stdout.contains("vrrp_script chk_w_6029_redis_test {"), "{}", r.stdout);
    run(G, ["--help"]).exits(0);
    assert_eq!(run(G, ["--check"]).exit(), 2, "--check needs --out");
}

/// The agent snippet next to the examples is what the generated files need: script checks from
/// local files enabled, and DNS answering with warning instances too (the checks' warning means
/// "keep serving").
#[test]
fn agent_snippet_enables_local_script_checks() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples/agent/consul-db-checks.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["enable_local_script_checks"], true);
    assert_eq!(v["dns_config"]["only_passing"], false);
    assert!(v.get("enable_script_checks").is_none(), "remote script registration stays off");
}

/// --prune removes the files this generator wrote for groups no longer in the inventory, and
/// nothing else; --check --prune lists them.
#[test]
fn prune_removes_only_what_it_wrote() {
    let dir = TempDir::new("prune");
    let out = dir.join("out");
    let two = dir.join("two.json");
    std::fs::write(
        &two,
        r#"[{"kind":"redis","name":"a","port":6029,"nodes":["10.0.0.1"]},{"kind":"redis","name":"b","port":6030,"nodes":["10.0.0.1"]}]"#,
    )
    .unwrap();
    let one = dir.join("one.json");
    std::fs::write(&one, r#"[{"kind":"redis","name":"a","port":6029,"nodes":["10.0.0.1"]}]"#).unwrap();
    let gen = |inv: &std::path::Path, extra: &[&str]| {
        let mut a = vec!["--inventory", inv.to_str().unwrap(), "--node", "10.0.0.1", "--out", out.to_str().unwrap()];
        a.extend(extra);
        run(GENERATOR, &a)
    };
    assert_eq!(gen(&two, &[]).exit(), 0);
    std::fs::write(out.join("someone-elses.json"), "{}\n").unwrap();
    // Without --prune the old group's files stay (and stay remembered).
    assert_eq!(gen(&one, &[]).exit(), 0);
    assert!(out.join("w-6030-redis-b.json").exists());
    let check = gen(&one, &["--check", "--prune"]);
    check.exits(1);
    assert!(check.stdout.contains("would remove") && check.stdout.contains("w-6030-redis-b.json"), "{}", check.stdout);
    let pruned = gen(&one, &["--prune"]);
    pruned.exits(0).prints("removed");
    assert!(!out.join("w-6030-redis-b.json").exists() && !out.join("r-6030-redis-b.json").exists());
    assert!(out.join("w-6029-redis-a.json").exists() && out.join("someone-elses.json").exists(), "only its own files go");
    assert_eq!(gen(&one, &["--check", "--prune"]).exit(), 0);
}

/// `--format haproxy`: HAProxy 2.6's own `haproxy -c` accepts what the generator writes, without a
/// warning, for the examples' inventory and for IPv6 nodes and explicit binds; a bind that would
/// smuggle HAProxy keywords is refused. `--check-type http` writes HTTP checks against serve-checks.
#[test]
fn haproxy_accepts_the_generated_configuration() {
    let dir = TempDir::new("haproxy");
    let inv = Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples/inventory.json");
    let v6 = dir.join("v6.json");
    std::fs::write(
        &v6,
        r#"{"serve_port": 8008, "groups": [{"kind":"redis","name":"six","port":6380,"nodes":["fd00::11","fd00::12"],
            "haproxy":{"write_bind":"127.0.0.1:16380","read_bind":"[::1]:16381"}}]}"#,
    )
    .unwrap();
    for inventory in [inv.as_path(), v6.as_path()] {
        let out = dir.join("out");
        let r = run(G, ["--inventory", inventory.to_str().unwrap(), "--format", "haproxy", "--out", out.to_str().unwrap()]);
        r.exits(0);
        let cfg = out.join("haproxy.cfg");
        let check = std::process::Command::new("haproxy").arg("-c").arg("-f").arg(&cfg).output().expect("haproxy (make deps installs it)");
        let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        assert!(check.status.success() && said.contains("Configuration file is valid"), "{said}");
        assert!(!said.contains("WARNING"), "{said}");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("on-marked-down shutdown-sessions") && text.contains("balance first"), "{text}");
        std::fs::remove_dir_all(&out).unwrap();
    }
    let text = run(G, ["--inventory", v6.to_str().unwrap(), "--format", "haproxy"]).stdout;
    assert!(text.contains("server fd00__11 ipv6@fd00::11:6380 check port 8008"), "{text}");
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--format", "haproxy", "--node", "192.168.0.30"]);
    assert!(r.exit() == 2 && r.stderr.contains("drop --node"), "{r:?}");
    let http = run(G, ["--inventory", inv.to_str().unwrap(), "--node", "192.168.0.30", "--check-type", "http"]);
    assert!(
        http.stdout.contains(r#""http": "http://192.168.0.30:9200/w-6029-redis-test""#) && !http.stdout.contains(r#""args""#),
        "{}",
        http.stdout
    );
    let r = run(G, ["--inventory", inv.to_str().unwrap(), "--format", "keepalived", "--check-type", "http"]);
    assert!(r.exit() == 2 && r.stderr.contains("--check-type http is for --format consul"), "{r:?}");
}

/// The agent snippet for HTTP checks: no script checks at all.
#[test]
fn http_agent_snippet_enables_no_script_checks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples/agent/consul-db-checks-http.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["enable_local_script_checks"], false);
    assert!(v.get("enable_script_checks").is_none());
    assert_eq!(v["dns_config"]["only_passing"], false);
}

/// Without --bin-dir or an inventory bin_dir, the generated checks are the ones installed beside
/// the generator (/usr/bin from the package, /usr/local/bin from make install; here the build's).
#[test]
fn the_default_bin_dir_is_where_the_generator_is() {
    let r = run(G, ["--kind", "redis", "--name", "t", "--port", "6029", "--address", "10.0.0.1"]);
    let beside = bin(REDIS_MASTER);
    r.exits(0).prints(&format!("\"{}\"", beside.display()));
}
