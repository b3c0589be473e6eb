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
    // Every binary runs from the extracted package.
    let dir = TempDir::new("deb");
    assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir.0).status().unwrap().success());
    for exe in executables {
        let r = run_command(Command::new(dir.join(format!("usr/bin/{exe}"))).arg("--version"), Duration::from_secs(10));
        assert_eq!(r.code, Some(0), "{exe} --version: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(env!("CARGO_PKG_VERSION")), "{exe}: {}", r.stdout);
    }
    names_users_and_tls(&dir.join("usr/bin"));
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
