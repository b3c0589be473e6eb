//! The generator against a planted output directory and hostile inventory values: it writes only
//! inside --out, never through a link, prunes only regular files it reaches without links, and
//! every value that reaches keepalived.conf either fits keepalived's grammar (keepalived's own
//! `-t` accepts the file) or is refused naming the entry, with nothing written.

use lab::*;
use std::os::unix::fs::symlink;
use std::path::Path;

const G: &str = GENERATOR;
const INVENTORY: &str = r#"[{"kind":"redis","name":"test","port":6029,"nodes":["198.18.0.11","198.18.0.12"],
  "password_file":"/etc/consul.d/secrets/redis","sentinels":["198.18.0.11:26379"],
  "vrrp":{"vip":"198.18.0.100/24","virtual_router_id":51,"interface":"eth0"}}]"#;

fn generate(dir: &TempDir, inventory: &str, extra: &[&str]) -> CheckRun {
    let inv = dir.join("inventory.json");
    std::fs::write(&inv, inventory).unwrap();
    let mut args = vec!["--inventory".to_string(), inv.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(G, &args)
}

/// Planted links at the temporary file's old predictable name, at the target files, and as a node
/// directory: each is refused (or, for the temporary name, no longer used), and the outside files
/// are untouched.
#[test]
fn nothing_is_written_through_a_link() {
    let dir = TempDir::new("gen-links");
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let out = dir.join("out");
    let out_arg = out.display().to_string();

    // 1. The temporary name the generator used to use (.NAME.PID.tmp) cannot be predicted any more:
    //    links planted at every pid-like name are left alone; the real file is written.
    std::fs::create_dir_all(out.join("198.18.0.11")).unwrap();
    for pid in 1..400 {
        let _ = symlink(&victim, out.join(format!("198.18.0.11/.w-6029-redis-test.json.{pid}.tmp")));
    }
    let r = generate(&dir, INVENTORY, &["--out", &out_arg]);
    r.exits(0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let written = out.join("198.18.0.11/w-6029-redis-test.json");
    assert!(std::fs::symlink_metadata(&written).unwrap().file_type().is_file());
    assert!(std::fs::read_to_string(&written).unwrap().contains("\"w-6029-redis-test\""));

    // 2. A target file replaced by a link: refused, naming it; the link and its target stay.
    std::fs::remove_file(&written).unwrap();
    symlink(&victim, &written).unwrap();
    let r = generate(&dir, &INVENTORY.replace("\"198.18.0.11:26379\"", "\"198.18.0.12:26379\""), &["--out", &out_arg]);
    r.exits(2);
    assert!(r.stderr.contains(&written.display().to_string()) && r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&written).unwrap().file_type().is_symlink());
    // --check refuses it too rather than reading the outside file.
    let r = generate(&dir, INVENTORY, &["--out", &out_arg, "--check"]);
    r.exits(2);
    std::fs::remove_file(&written).unwrap();

    // 3. A node directory that is a link to an outside directory: refused, nothing written there.
    let node_dir = out.join("198.18.0.12");
    std::fs::remove_dir_all(&node_dir).unwrap();
    symlink(&outside, &node_dir).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg]);
    r.exits(2);
    assert!(r.stderr.contains(&node_dir.display().to_string()) && r.stderr.contains("symbolic link"), "{}", r.stderr);
    let mut listed: Vec<String> = std::fs::read_dir(&outside).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    listed.sort();
    assert_eq!(listed, ["victim"], "nothing written outside --out");

    // 4. The manifest itself replaced by a link: refused.
    std::fs::remove_file(&node_dir).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg]);
    r.exits(0);
    let manifest = out.join(".gen-consul-services.manifest");
    std::fs::remove_file(&manifest).unwrap();
    symlink(&victim, &manifest).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg]);
    r.exits(2);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// --prune with a manifest line through a linked directory, or naming a link: nothing outside is
/// removed, and the refusal names the path.
#[test]
fn prune_removes_only_regular_files_reached_without_links() {
    let dir = TempDir::new("gen-prune-links");
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim.json");
    std::fs::write(&victim, "precious\n").unwrap();
    let out = dir.join("out");
    let out_arg = out.display().to_string();
    assert_eq!(generate(&dir, INVENTORY, &["--out", &out_arg]).exit(), 0);
    let manifest = out.join(".gen-consul-services.manifest");
    let listed = std::fs::read_to_string(&manifest).unwrap();

    symlink(&outside, out.join("lnk")).unwrap();
    std::fs::write(&manifest, format!("{listed}lnk/victim.json\n")).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg, "--prune"]);
    r.exits(2);
    assert!(r.stderr.contains("lnk") && r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    std::fs::remove_file(out.join("lnk")).unwrap();
    symlink(&victim, out.join("planted.json")).unwrap();
    std::fs::write(&manifest, format!("{listed}planted.json\n")).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg, "--prune"]);
    r.exits(2);
    assert!(std::fs::symlink_metadata(out.join("planted.json")).is_ok(), "the link is not removed either");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    // A regular file the manifest lists and the inventory no longer produces is pruned.
    std::fs::remove_file(out.join("planted.json")).unwrap();
    std::fs::write(out.join("old.json"), "{}\n").unwrap();
    std::fs::write(&manifest, format!("{listed}old.json\n")).unwrap();
    let r = generate(&dir, INVENTORY, &["--out", &out_arg, "--prune"]);
    r.exits(0);
    assert!(!out.join("old.json").exists());
}

/// The values an attacker (or a typo) could put in every field that reaches keepalived.conf.
const HOSTILE: &[&str] = &["e}PWNED{", "e\"x", "e#x", "e!x", "e{x", "e$x", "e~x", "e'x", "e\\x", "e;x", "e\nx", "e x", "eé"];

/// Where each field sits in the inventory, as a JSON fragment for a value.
fn with_value(field: &str, value: &str) -> String {
    let v = serde_json::to_string(value).unwrap();
    let path = serde_json::to_string(&format!("/etc/consul.d/{value}")).unwrap();
    let base = INVENTORY;
    match field {
        "interface" => base.replace("\"interface\":\"eth0\"", &format!("\"interface\":{v}")),
        "script_user" => base.replace("\"interface\":\"eth0\"", &format!("\"interface\":\"eth0\",\"script_user\":{v}")),
        "vip" => base.replace("\"198.18.0.100/24\"", &v),
        "password_file" => base.replace("\"/etc/consul.d/secrets/redis\"", &path),
        "user" => base.replace("\"port\":6029,", &format!("\"port\":6029,\"user\":{v},")),
        "tls_ca" => base.replace("\"port\":6029,", &format!("\"port\":6029,\"tls_ca\":{path},")),
        "sentinel_password_file" => base.replace("\"port\":6029,", &format!("\"port\":6029,\"sentinel_password_file\":{path},")),
        "master_name" => base.replace("\"port\":6029,", &format!("\"port\":6029,\"master_name\":{v},")),
        "sentinels" => base.replace("\"198.18.0.11:26379\"", &serde_json::to_string(&format!("{value}:26379")).unwrap()),
        "bin_dir" => format!("{{\"bin_dir\":{path},\"groups\":{base}}}"),
        other => panic!("no such field {other}"),
    }
}

#[test]
fn every_keepalived_value_fits_its_grammar_or_is_refused_naming_the_entry() {
    let dir = TempDir::new("gen-hostile");
    let fields = [
        "interface",
        "script_user",
        "vip",
        "password_file",
        "user",
        "tls_ca",
        "sentinel_password_file",
        "master_name",
        "sentinels",
        "bin_dir",
    ];
    let mut accepted = 0;
    let mut refused = 0;
    for field in fields {
        for value in HOSTILE {
            let out = dir.join(format!("out-{field}-{refused}-{accepted}"));
            let inventory = with_value(field, value);
            let r = generate(&dir, &inventory, &["--format", "keepalived", "--out", out.to_str().unwrap()]);
            let what = format!("{field}={value:?}");
            match r.exit() {
                0 => {
                    accepted += 1;
                    for node in ["198.18.0.11", "198.18.0.12"] {
                        let conf = out.join(node).join("keepalived.conf");
                        let (code, msg) = keepalived_check(&conf);
                        assert_eq!(code, Some(0), "{what}: keepalived -t refused what the generator accepted: {msg}");
                    }
                }
                _ => {
                    refused += 1;
                    let named = r.stderr.contains("groups[0] (redis test:6029)") || (field == "bin_dir" && r.stderr.contains("bin_dir"));
                    assert!(named, "{what}: the refusal does not name the entry: {}", r.stderr);
                    assert!(r.stderr.contains("nothing was written") && !out.exists(), "{what}: {}", r.stderr);
                }
            }
        }
    }
    println!("hostile keepalived values: {refused} refused, {accepted} accepted and parsed by keepalived -t");
    assert!(refused > 100, "{refused}");
}

/// `keepalived -t` on `conf` as root with the scripts' paths replaced by /bin/true (Debian 12's
/// 2.2.7 exits 143 from -t with a non-root script_user, and refuses scripts under writable
/// directories); keepalived's own parse otherwise judges the file as written.
fn keepalived_check(conf: &Path) -> (Option<i32>, String) {
    keepalived_test(Path::new("keepalived"), conf, &conf.with_extension("root.conf"), "root")
}

/// `program -t` on a copy (at `copy`) of `conf` whose scripts are /bin/true (with their arguments)
/// and whose script user is `user`: keepalived's own parse of what the generator wrote.
fn keepalived_test(program: &Path, conf: &Path, copy: &Path, user: &str) -> (Option<i32>, String) {
    lab::keepalived::keepalived_t(program, &std::fs::read_to_string(conf).unwrap(), copy, user, |_| "/bin/true".into())
}

/// keepalived 2.3.2+ reads sub-second script timing: with `keepalived_version` 2.3.3 the write
/// scripts run every 500 ms with a 250 ms deadline and `--fault-after 1s`, and trixie's keepalived
/// 2.3.3 (in its chroot) accepts the file, as an unprivileged script user; without it, whole
/// seconds as before.
#[test]
fn sub_second_write_timing_for_keepalived_2_3() {
    let dir = TempDir::new("gen-ka23");
    let out = dir.join("out");
    let inventory = format!("{{\"keepalived_version\":\"2.3.3\",\"groups\":{INVENTORY}}}");
    let r = generate(&dir, &inventory, &["--format", "keepalived", "--out", out.to_str().unwrap()]);
    r.exits(0);
    let conf = std::fs::read_to_string(out.join("198.18.0.11/keepalived.conf")).unwrap();
    let write = conf.split("vrrp_script chk_w_").nth(1).unwrap().split('}').next().unwrap().to_string();
    assert!(
        write.contains("--fault-after 500ms ") && write.contains("--timeout 250ms") && write.contains("interval 0.5\n    timeout 0.5\n"),
        "{write}"
    );
    let read = conf.split("vrrp_script chk_r_").nth(1).unwrap().split('}').next().unwrap().to_string();
    assert!(read.contains("interval 2\n    timeout 2\n"), "the read check keeps whole seconds: {read}");
    let old = generate(&dir, INVENTORY, &["--format", "keepalived"]);
    assert!(old.stdout.contains("interval 1\n    timeout 1\n") && old.stdout.contains("--fault-after 1s"), "{}", old.stdout);
    let r = generate(&dir, &inventory, &["--format", "keepalived", "--keepalived-version", "2.2.7"]);
    assert!(r.stdout.contains("interval 1\n    timeout 1\n"), "the flag wins over the inventory: {}", r.stdout);

    // keepalived 2.3.3's own parse, in trixie's chroot: the file, its scripts as /bin/true.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/chroots/trixie-servers");
    let keepalived = root.with_file_name("trixie-servers-bin").join("keepalived");
    if !keepalived.exists() || unsafe { libc::geteuid() } != 0 {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "keepalived 2.3 is missing under CI (make deps as root)");
        eprintln!("NOT RUN: keepalived 2.3 -t: no trixie chroot (make deps as root)");
        return;
    }
    // The copy under the chroot's /tmp: the same path inside and out. The chroot has no
    // keepalived_script user; nobody is as unprivileged (2.3 tests a non-root script_user fine,
    // unlike 2.2.7).
    let copy = root.join("tmp").join(format!("cdc-ka23-{}.conf", std::process::id()));
    let (code, output) = keepalived_test(&keepalived, &out.join("198.18.0.11/keepalived.conf"), &copy, "nobody");
    let _ = std::fs::remove_file(&copy);
    assert_eq!(code, Some(0), "keepalived 2.3.3 -t: {output}");
    // What keepalived said, before the copy of the file that follows it.
    let complaints = output.split("# keepalived configuration").next().unwrap_or("").to_lowercase();
    assert!(!complaints.contains("interval"), "keepalived complained about the timing: {output}");
}
