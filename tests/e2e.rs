//! End to end: gen-consul-services writes the files for a real Redis + Sentinel and MariaDB lab,
//! every check is run from its `args` as Consul runs it, and the DNS answers are asserted through
//! topology changes. The keepalived output is validated by keepalived itself.

use lab::consul_lab::{run_program, ConsulLab, MYSQL_HOSTS, REDIS_HOSTS};
use lab::pools::Answers;
use lab::redis_lab::RedisNode;
use lab::*;
use std::path::Path;
use std::time::Duration;

fn hosts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Evaluates until `ok` holds, else panics with the last answers.
fn settle(lab: &ConsulLab, what: &str, ok: impl Fn(&Answers) -> bool) -> Answers {
    lab.settle(ok).unwrap_or_else(|last| panic!("{what} never held:\n{}", last.describe()))
}

/// The write pool never holds two nodes, at any evaluation.
fn one_writer(lab: &ConsulLab, a: &Answers) {
    for s in [lab.redis_service("w"), lab.mysql_service("w")] {
        assert!(a.dns(&s).len() <= 1, "two writers for {s}:\n{}", a.describe());
    }
}

#[test]
fn generated_services_follow_the_topology() {
    let mut lab = ConsulLab::start();
    let (code, out) = lab.generate(&lab.out.0, &[]);
    assert_eq!(code, Some(0), "{out}");
    // Every file: args (never script), no secret.
    for node in REDIS_HOSTS.iter().chain(MYSQL_HOSTS.iter()) {
        assert!(lab.out.0.join(node).is_dir(), "no files for {node}");
    }
    let all = std::fs::read_dir(&lab.out.0)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten());
    for f in all {
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("\"args\"") && !text.contains("\"script\""), "{text}");
        assert!(!text.contains(lab::mysql_lab::CHECKER.1) && !text.contains(lab::mysql_lab::REPL_PASSWORD), "{text}");
    }
    // --check agrees with what was written, and notices an edited file.
    assert_eq!(lab.generate(&lab.out.0, &["--check"]).0, Some(0));
    let some_file = lab.out.0.join(REDIS_HOSTS[0]).join(format!("{}.json", lab.redis_service("w")));
    std::fs::write(&some_file, "{}\n").unwrap();
    let (code, out) = lab.generate(&lab.out.0, &["--check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("would change") && out.contains(&lab.redis_service("w")), "{out}");
    assert_eq!(lab.generate(&lab.out.0, &[]).0, Some(0));

    let (rw, rr, mw, mr) = (lab.redis_service("w"), lab.redis_service("r"), lab.mysql_service("w"), lab.mysql_service("r"));
    // Healthy.
    let a = settle(&lab, "healthy answers", |a| {
        a.dns(&rw) == hosts(&REDIS_HOSTS[..1])
            && a.dns(&rr) == hosts(&REDIS_HOSTS[1..])
            && a.dns(&mw) == hosts(&MYSQL_HOSTS[..1])
            && a.dns(&mr) == hosts(&MYSQL_HOSTS[1..])
    });
    assert_eq!(a.results.len(), 10);
    one_writer(&lab, &a);

    // A Redis replica stops: it leaves the read pool.
    lab.redis.replicas[1].proc.kill();
    let a = settle(&lab, "one replica left", |a| a.dns(&rr) == hosts(&REDIS_HOSTS[1..2]));
    one_writer(&lab, &a);
    // All Redis replicas stop: the master serves reads.
    lab.redis.replicas[0].proc.kill();
    let a = settle(&lab, "master serves reads", |a| a.dns(&rr) == hosts(&REDIS_HOSTS[..1]) && a.dns(&rw) == hosts(&REDIS_HOSTS[..1]));
    one_writer(&lab, &a);
    for r in lab.redis.replicas.iter_mut() {
        r.restart();
    }
    let master = &lab.redis.master;
    lab.redis.wait_online(master, 2);
    settle(&lab, "replicas back", |a| a.dns(&rr) == hosts(&REDIS_HOSTS[1..]));

    // Sentinel fails over after the master is killed: the names follow.
    let old = lab.redis.master.addr();
    lab.redis.master.proc.kill();
    lab.redis.wait_new_master(&old);
    let a = settle(&lab, "answers after the failover", |a| lab.redis_follows_sentinel(a, &REDIS_HOSTS[1..]).is_some());
    one_writer(&lab, &a);
    // The old master comes back as a master (empty, stale): in no pool while it says so, until
    // Sentinel demotes it and it catches up as a replica.
    lab.redis.master.restart_as_master();
    let old_host = REDIS_HOSTS[0].to_string();
    let mut seen_as_master = 0;
    for _ in 0..10 {
        let says_master = lab.redis.master.role().as_deref() == Some("master");
        let a = lab.evaluate();
        one_writer(&lab, &a);
        if says_master && lab.redis.master.role().as_deref() == Some("master") {
            seen_as_master += 1;
            assert!(!a.dns(&rw).contains(&old_host) && !a.dns(&rr).contains(&old_host), "stale old master in a pool:\n{}", a.describe());
        }
    }
    assert!(seen_as_master > 0, "Sentinel demoted the old master before any evaluation saw it");
    let _: &RedisNode = &lab.redis.master;

    // MySQL: the master dies, the replica is promoted.
    lab.mysql[0].proc.kill();
    let a = settle(&lab, "MySQL master gone", |a| a.dns(&mw).is_empty());
    assert!(a.dns(&mr).is_empty(), "the replica's IO thread is down: {}", a.describe());
    lab.mysql[1].sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    let a =
        settle(&lab, "answers after the promotion", |a| a.dns(&mw) == hosts(&MYSQL_HOSTS[1..]) && a.dns(&mr) == hosts(&MYSQL_HOSTS[1..]));
    one_writer(&lab, &a);
}

/// A directory only root can write (keepalived's script security refuses scripts below a
/// directory another user could write, such as a clone under /tmp), holding copies of the checks.
struct SafeBinDir(std::path::PathBuf);

impl SafeBinDir {
    fn new() -> SafeBinDir {
        use std::os::unix::fs::PermissionsExt;
        let base = if unsafe { libc::geteuid() } == 0 {
            std::path::PathBuf::from("/run")
        } else {
            bin(REDIS_MASTER).parent().unwrap().to_path_buf()
        };
        let dir = base.join(format!("cdc-kt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for exe in consul_db_checks::checks::node_checks().map(|e| e.name) {
            std::fs::copy(bin(exe), dir.join(exe)).unwrap();
        }
        SafeBinDir(dir)
    }
}

impl Drop for SafeBinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `keepalived -t` on a configuration, with the checks in `safe`. Debian 12's keepalived 2.2.7
/// exits 143 from `-t` whenever `script_user` is not root (fixed in 2.2.8), so the copy tested
/// names root; the namespace lab (tests/netlab.rs) runs the unmodified file for real, as an
/// unprivileged script user.
fn keepalived_test(conf: &Path, body: &str, safe: &SafeBinDir) -> (Option<i32>, String) {
    let copy = conf.with_extension("root.conf");
    lab::keepalived::keepalived_t(Path::new("keepalived"), body, &copy, "root", |name| safe.0.join(name).display().to_string())
}

#[test]
fn keepalived_accepts_the_generated_configuration() {
    let lab = ConsulLab::start();
    let out = TempDir::new("keepalived");
    let (code, text) = lab.generate(&out.0, &["--format", "keepalived", "--weight", "-20", "--fall", "3"]);
    assert_eq!(code, Some(0), "{text}");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples/keepalived");
    let generated = REDIS_HOSTS.iter().chain(MYSQL_HOSTS.iter()).map(|node| out.0.join(node).join("keepalived.conf"));
    let checked_in =
        std::fs::read_dir(&examples).unwrap().flatten().filter(|d| d.path().is_dir()).map(|d| d.path().join("keepalived.conf"));
    let safe = SafeBinDir::new();
    let mut tested = 0;
    for conf in generated.chain(checked_in) {
        let body = std::fs::read_to_string(&conf).unwrap();
        assert!(body.contains("--warning-exit-code 0") && body.contains("enable_script_security"), "{body}");
        let copy_dir = TempDir::new("keepalived-t");
        let conf = copy_dir.join("keepalived.conf");
        let (code, msg) = keepalived_test(&conf, &body, &safe);
        assert_eq!(code, Some(0), "keepalived -t rejected {}: {msg}\n{body}", conf.display());
        // The same file with a broken quote is rejected: the test has teeth.
        let (code, _) = keepalived_test(&copy_dir.join("broken.conf"), &body.replacen("--host", "'--host", 1), &safe);
        assert_ne!(code, Some(0), "keepalived -t accepted a broken quote");
        tested += 1;
    }
    assert_eq!(tested, 8, "5 lab nodes and 3 example nodes");
    let lab_conf = std::fs::read_to_string(out.0.join(REDIS_HOSTS[0]).join("keepalived.conf")).unwrap();
    assert!(lab_conf.contains("weight -20") && lab_conf.contains("fall 3"), "{lab_conf}");
    let example = std::fs::read_to_string(examples.join("192.168.0.20/keepalived.conf")).unwrap();
    assert!(
        example.contains("vrrp_instance VI_w_6029_redis_test {") && example.contains("track_script {\n        chk_w_6029_redis_test"),
        "{example}"
    );
    // The scripts keepalived would run are the checks, and they pass or fail like the Consul ones.
    let line = lab_conf.lines().find(|l| l.trim_start().starts_with("script ") && l.contains(REDIS_MASTER)).unwrap();
    let argv: Vec<String> = line.trim().trim_start_matches("script \"").trim_end_matches('"').split(' ').map(String::from).collect();
    let (code, stdout) = run_program(Path::new(&argv[0]), &argv[1..], Duration::from_secs(5));
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn checked_in_examples_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("consul.d-examples");
    for (format, sub, extra) in [
        ("consul", "consul", None),
        ("consul", "consul-http", Some("--check-type=http")),
        ("keepalived", "keepalived", None),
        ("haproxy", "haproxy", None),
    ] {
        let out = TempDir::new("examples");
        let args: Vec<String> =
            ["--inventory", root.join("inventory.json").to_str().unwrap(), "--format", format, "--out", out.0.to_str().unwrap()]
                .into_iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect();
        let (code, text) = run_program(&bin(GENERATOR), &args, Duration::from_secs(20));
        assert_eq!(code, Some(0), "{text}");
        let listing = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut v = Vec::new();
            for f in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().is_file()) {
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    v.push((name, std::fs::read(f.path()).unwrap()));
                }
            }
            for node in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
                for f in std::fs::read_dir(node.path()).unwrap().flatten() {
                    v.push((
                        format!("{}/{}", node.file_name().to_string_lossy(), f.file_name().to_string_lossy()),
                        std::fs::read(f.path()).unwrap(),
                    ));
                }
            }
            v.sort();
            v
        };
        let expected = listing(&out.0);
        let checked_in = listing(&root.join(sub));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&checked_in), names(&expected), "consul.d-examples/{sub}: run `make examples`");
        for ((name, a), (_, b)) in checked_in.iter().zip(&expected) {
            assert!(a == b, "consul.d-examples/{sub}/{name} differs from the generator's output: run `make examples`");
        }
    }
}
