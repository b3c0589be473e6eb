//! `make deb`: the Debian package holds every executable, its man page and completions, and the
//! examples; it declares its C library dependency; every binary runs from the extracted package,
//! and, built static and not position-independent (scripts/release-env.sh), still resolves host
//! names, looks up the user running it and speaks TLS; lintian (where installed) reports no error.

use lab::mysql_lab::{MariaNode, TLS_USER};
use lab::pki::Pki;
use lab::redis_lab::RedisLab;
use lab::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn debian_package_contents_and_binaries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut build = Command::new("bash");
    build.arg(root.join("scripts/deb.sh")).current_dir(root);
    let built = run_command(&mut build, Duration::from_secs(600));
    assert_eq!(built.code, Some(0), "scripts/deb.sh: {}", built.stderr);
    let deb = root.join(built.stdout.trim());
    let info = Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package").arg("Depends").arg("Description").output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(info.contains("Package: consul-db-checks") && info.contains("Depends: libc6 (>= 2."), "{info}");
    for exe in consul_db_checks::executables::all().map(|e| e.name) {
        assert!(info.contains(exe), "the package description does not name {exe}: {info}");
    }
    let listing = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let executables = consul_db_checks::executables::all().map(|e| e.name);
    for exe in executables.clone() {
        for path in [
            format!("./usr/bin/{exe}"),
            format!("./usr/share/man/man1/{exe}.1.gz"),
            format!("./usr/share/bash-completion/completions/{exe}"),
            format!("./usr/share/zsh/vendor-completions/_{exe}"),
        ] {
            assert!(listing.contains(&path), "{path} missing from the package:\n{listing}");
        }
    }
    assert!(listing.contains("./usr/share/doc/consul-db-checks/examples/inventory.json"), "{listing}");
    assert!(listing.contains("./usr/share/doc/consul-db-checks/copyright"), "{listing}");
    for doc in ["README.md", "docs/checks.md", "docs/generator.md", "examples/README.md"] {
        assert!(listing.contains(&format!("./usr/share/doc/consul-db-checks/{doc}")), "{doc} missing:\n{listing}");
    }
    let fields = Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Recommends").output().unwrap();
    assert!(String::from_utf8_lossy(&fields.stdout).contains("bash-completion"), "Recommends: bash-completion");
    // Every binary runs from the extracted package.
    let dir = TempDir::new("deb");
    assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir.0).status().unwrap().success());
    for exe in executables {
        let r = run_command(Command::new(dir.join(format!("usr/bin/{exe}"))).arg("--version"), Duration::from_secs(10));
        assert_eq!(r.code, Some(0), "{exe} --version: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(env!("CARGO_PKG_VERSION")), "{exe}: {}", r.stdout);
    }
    names_users_and_tls(&dir.join("usr/bin"));
    installed_in_a_throwaway_debian(&deb);
    // lintian, where installed: no error.
    if let Ok(out) = Command::new("lintian").arg("--no-tag-display-limit").arg(&deb).output() {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!text.lines().any(|l| l.starts_with("E:")), "lintian errors:\n{text}");
    } else {
        println!("lintian is not installed: not run");
    }
}

/// The packaged executables against real servers: a host name resolved by glibc (`localhost`, from
/// /etc/hosts), the login name of an unnamed user read with getpwuid, TLS with rustls.
fn names_users_and_tls(bin_dir: &Path) {
    let bin = |exe: &str| bin_dir.join(exe);
    let limit = Duration::from_secs(10);
    let redis = RedisLab::start(0, 0);
    let port = redis.master.port_arg();
    let r = run_command(Command::new(bin(REDIS_MASTER)).args(["--host", "localhost", "--port", &port]), limit);
    assert_eq!(r.code, Some(0), "check-redis-master --host localhost: {}", r.stdout);
    assert!(r.stdout.contains(&format!("localhost:{port}")), "{}", r.stdout);

    let pki = Pki::generate();
    let data = TempDir::new("deb-servers");
    let node = MariaNode::start_tls(&data, "static", &pki);
    let pw = data.join("pw");
    write_file(&pw, &format!("{}\n", TLS_USER.1), 0o600);
    let port = node.port_arg();
    let tls = |ca: &str, host: &str| {
        let args = ["--host", host, "--port", &port, "--user", TLS_USER.0, "--password-file", pw.to_str().unwrap(), "--tls-ca", ca];
        run_command(Command::new(bin(MYSQL_MASTER)).args(args), limit)
    };
    let r = tls(&pki.arg("ca.crt"), "127.0.0.1");
    assert_eq!(r.code, Some(0), "check-mysql-master over TLS: {}", r.stdout);
    let r = tls(&pki.arg("other-ca.crt"), "127.0.0.1");
    assert!(r.code == Some(2) && r.stdout.contains(&format!("TLS with 127.0.0.1:{port}")), "{}", r.stdout);
    // The certificate names 127.0.0.1, not localhost: reaching the server by name proves the
    // lookup, and the name check refuses it.
    let r = tls(&pki.arg("ca.crt"), "localhost");
    assert!(r.code == Some(2) && r.stdout.contains(&format!("TLS with localhost:{port}")), "{}", r.stdout);

    // No USER or LOGNAME, run as uid 65534: the login name comes from getpwuid (the server names it
    // in its refusal). The executable is copied where that user may run it.
    let exe_dir = TempDir::new("deb-nobody");
    std::fs::set_permissions(&exe_dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = exe_dir.join(MYSQL_MASTER);
    std::fs::copy(bin(MYSQL_MASTER), &exe).unwrap();
    let nobody = run_command(
        Command::new(&exe).args(["--host", "127.0.0.1", "--port", &port]).env_clear().env("PATH", "/usr/bin:/bin").uid(65534).gid(65534),
        limit,
    );
    let expected = lab::passwd_name(65534).expect("uid 65534 in /etc/passwd");
    nobody.exits(2);
    assert!(nobody.stdout.contains(&format!("user '{expected}'@")), "the login name should be {expected}: {}", nobody.stdout);
}

/// A throwaway copy of the trixie chroot (an overlay on it: the cached chroot is never changed),
/// unmounted and removed when dropped.
struct ThrowawayRoot {
    dir: TempDir,
    mounted: bool,
}

impl ThrowawayRoot {
    fn of(lower: &Path) -> ThrowawayRoot {
        let dir = TempDir::new("deb-root");
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        let options =
            format!("lowerdir={},upperdir={},workdir={}", lower.display(), dir.join("upper").display(), dir.join("work").display());
        let mounted =
            Command::new("mount").args(["-t", "overlay", "overlay", "-o", &options]).arg(dir.join("root")).status().unwrap().success();
        if !mounted {
            // No overlay file system here: a full copy (about 700 MB) does as well, slower.
            let copied = Command::new("cp").arg("-a").arg(format!("{}/.", lower.display())).arg(dir.join("root")).status().unwrap();
            assert!(copied.success(), "cannot copy {}", lower.display());
        }
        ThrowawayRoot { dir, mounted }
    }
    fn path(&self) -> std::path::PathBuf {
        self.dir.join("root")
    }
    /// Runs `argv` inside, as root, within 60 s.
    fn run(&self, argv: &[&str]) -> CheckRun {
        run_command(
            Command::new("chroot").arg(self.path()).args(argv).env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            Duration::from_secs(60),
        )
    }
    /// Runs `argv` inside as another user: `who` is setpriv's user and group options.
    fn run_as(&self, who: &[&str], argv: &[&str]) -> CheckRun {
        let mut a = vec!["setpriv"];
        a.extend(who);
        a.push("--");
        a.extend(argv);
        self.run(&a)
    }
}

impl Drop for ThrowawayRoot {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// The package installed with dpkg into a throwaway Debian trixie: it creates the group
/// consul-db-checks, the user keepalived_script in it and the secrets and drain directories; one
/// secret file, root:consul-db-checks 0640 as the README says, is read by keepalived's script user,
/// by a Consul agent's user added to the group and by an unnamed user with only that group
/// (serve-checks' DynamicUser), and refused to a user outside it, naming the file. The generated
/// Consul check runs as written, and its drain file takes the node out.
fn installed_in_a_throwaway_debian(deb: &Path) {
    let lower = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/chroots/trixie-servers");
    let usable = lower.join(".cdc-stamp").is_file() && unsafe { libc::geteuid() } == 0;
    if !usable {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "the package installation test needs root and the trixie chroot under CI");
        eprintln!("NOT RUN: package installation: needs root and {} (make deps)", lower.display());
        return;
    }
    let root = ThrowawayRoot::of(&lower);
    std::fs::copy(deb, root.path().join("tmp/pkg.deb")).unwrap();
    let installed = root.run(&["dpkg", "-i", "/tmp/pkg.deb"]);
    assert_eq!(installed.code, Some(0), "dpkg -i: {}{}", installed.stdout, installed.stderr);
    let id = root.run(&["id", "keepalived_script"]);
    assert!(id.code == Some(0) && id.stdout.contains("(consul-db-checks)"), "keepalived_script in consul-db-checks: {}", id.stdout);
    let stat = root.run(&["stat", "-c", "%U:%G %a", "/etc/consul-db-checks", "/var/lib/consul-db-checks/drain"]);
    assert_eq!(stat.stdout, "root:consul-db-checks 750\nroot:root 755\n", "{}", stat.stderr);
    assert!(root.path().join("usr/share/doc/consul-db-checks/README.md").is_file());
    // Installing again (an upgrade) keeps all that and does not fail.
    assert_eq!(root.run(&["dpkg", "-i", "/tmp/pkg.deb"]).code, Some(0));

    let redis = RedisLab::builder().password("pkg-secret").start();
    let port = redis.master.port;
    let secret = root.run(&[
        "sh",
        "-c",
        "umask 0027 && printf 'pkg-secret\\n' > /etc/consul-db-checks/redis && chgrp consul-db-checks /etc/consul-db-checks/redis",
    ]);
    assert_eq!(secret.code, Some(0), "{}", secret.stderr);
    for setup in [["useradd", "--system", "consul"], ["useradd", "--system", "outsider"]] {
        assert_eq!(root.run(&setup).code, Some(0));
    }
    assert_eq!(root.run(&["usermod", "-aG", "consul-db-checks", "consul"]).code, Some(0));
    let inventory = format!(
        r#"{{"groups":[{{"kind":"redis","name":"pkg","port":{port},"nodes":["127.0.0.1"],"password_file":"/etc/consul-db-checks/redis"}}]}}"#
    );
    write_file(&root.path().join("etc/consul-db-checks/inventory.json"), &inventory, 0o644);
    let generated = root.run(&[
        "gen-consul-services",
        "--inventory",
        "/etc/consul-db-checks/inventory.json",
        "--node",
        "127.0.0.1",
        "--out",
        "/tmp/consul.d",
    ]);
    assert_eq!(generated.code, Some(0), "{}{}", generated.stdout, generated.stderr);
    let service: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join(format!("tmp/consul.d/w-{port}-redis-pkg.json"))).unwrap()).unwrap();
    let args: Vec<&str> = service["service"]["checks"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "/usr/bin/check-redis-master", "the generator finds the packaged checks: {args:?}");
    let gid = root.run(&["getent", "group", "consul-db-checks"]).stdout.split(':').nth(2).unwrap().to_string();
    let dynamic = format!("--groups={gid}");
    let readers: [(&str, Vec<&str>); 3] = [
        ("keepalived_script", vec!["--reuid=keepalived_script", "--regid=keepalived_script", "--init-groups"]),
        ("the Consul agent's user", vec!["--reuid=consul", "--regid=consul", "--init-groups"]),
        ("serve-checks' DynamicUser", vec!["--reuid=61234", "--regid=61234", &dynamic]),
    ];
    for (who, how) in &readers {
        let r = root.run_as(how, &args);
        assert_eq!(r.code, Some(0), "{who} runs the generated check: {}{}", r.stdout, r.stderr);
    }
    let r = root.run_as(&["--reuid=outsider", "--regid=outsider", "--init-groups"], &args);
    assert_eq!(r.code, Some(2), "a user outside the group: {}", r.stdout);
    assert!(r.stdout.contains("/etc/consul-db-checks/redis") && r.stdout.to_lowercase().contains("permission denied"), "{}", r.stdout);
    // The drain file, where the generated check looks for it, takes the node out.
    let drain = format!("/var/lib/consul-db-checks/drain/w-{port}-redis-pkg");
    assert!(args.contains(&drain.as_str()), "{args:?}");
    assert_eq!(root.run(&["touch", &drain]).code, Some(0));
    let r = root.run_as(&readers[0].1, &args);
    assert!(r.code == Some(2) && r.stdout.contains("drained by the operator"), "{}", r.stdout);
}
