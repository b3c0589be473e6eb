//! `make deb`: the Debian package holds every executable, its man page and completions, and the
//! examples; it declares its C library dependency; every binary runs from the extracted package;
//! lintian (where installed) reports no error.

use lab::*;
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
    let info = Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package").arg("Depends").output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(info.contains("Package: consul-db-checks") && info.contains("Depends: libc6 (>= 2."), "{info}");
    let listing = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let executables =
        ["check-redis-master", "check-redis-slave", "check-mysql-master", "check-mysql-slave", "check-topology", "gen-consul-services"];
    for exe in executables {
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
        let r = run_command(Command::new(dir.join(&format!("usr/bin/{exe}"))).arg("--version"), Duration::from_secs(10));
        assert_eq!(r.code, Some(0), "{exe} --version: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(env!("CARGO_PKG_VERSION")), "{exe}: {}", r.stdout);
    }
    // lintian, where installed: no error.
    if let Ok(out) = Command::new("lintian").arg("--no-tag-display-limit").arg(&deb).output() {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!text.lines().any(|l| l.starts_with("E:")), "lintian errors:\n{text}");
    } else {
        println!("lintian is not installed: not run");
    }
}
