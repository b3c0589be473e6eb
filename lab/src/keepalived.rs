//! keepalived on the lab's hosts, running exactly what `gen-consul-services --format keepalived`
//! wrote; where the VIP is over time; and `keepalived -t` on a generated file.

use crate::netlab::{start_proc, Host, NetLab};
use crate::vip_lab::generate_for;
use crate::Proc;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The keepalived the lab runs: this machine's, or, with `CDC_KEEPALIVED_ROOT` naming a chroot
/// (scripts/chroot.sh), the one of that chroot's release.
pub struct Keepalived {
    /// The chroot it runs in, if any.
    root: Option<PathBuf>,
    /// Its version (`2.2.7`), passed to the generator as `--keepalived-version`.
    pub version: String,
}

impl Keepalived {
    /// The keepalived of this run (asked for its version once).
    pub fn in_use() -> &'static Keepalived {
        static IN_USE: std::sync::OnceLock<Keepalived> = std::sync::OnceLock::new();
        IN_USE.get_or_init(|| {
            let root = std::env::var_os("CDC_KEEPALIVED_ROOT").map(PathBuf::from);
            let mut cmd = match &root {
                Some(root) => {
                    let mut c = std::process::Command::new("chroot");
                    c.arg(root).arg("keepalived");
                    c
                }
                None => std::process::Command::new("keepalived"),
            };
            let out = cmd.arg("--version").output().expect("keepalived --version");
            // "Keepalived v2.3.3 (03/30,2025)", on stderr for some versions.
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let version = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix('v').filter(|v| v.starts_with(|c: char| c.is_ascii_digit())))
                .unwrap_or_else(|| panic!("no version in keepalived --version: {text}"))
                .to_string();
            Keepalived { root, version }
        })
    }

    /// The command that starts keepalived inside namespace `ns` (arguments to be added). In a
    /// chroot, the chroot gets /proc, /sys and this machine's /run (where the lab's files are)
    /// mounted inside the mount namespace `ip netns exec` makes for it: the mounts go with it.
    pub fn command(&self, ns: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        match &self.root {
            None => {
                cmd.arg("keepalived");
            }
            Some(root) => {
                cmd.args([
                    "sh",
                    "-c",
                    r#"mount -t proc proc "$0/proc" && mount --rbind /sys "$0/sys" && mount --bind /run "$0/run" && exec chroot "$0" keepalived "$@""#,
                ])
                .arg(root);
            }
        }
        cmd
    }
}

/// Writes `inventory` into the lab, generates each host's keepalived.conf from it with the real
/// `gen-consul-services` (checks in the lab's `bin/`), and starts keepalived on every host with
/// exactly that file.
pub fn keepalived_on(net: &NetLab, hosts: &[Host], inventory: &str) -> Vec<Proc> {
    hosts
        .iter()
        .map(|host| {
            let out = generate_for(net, host, inventory, "keepalived");
            let log = std::fs::File::create(out.join("keepalived.log")).unwrap();
            let mut cmd = Keepalived::in_use().command(&host.ns);
            cmd.args(["--dont-fork", "--log-console", "--log-detail", "--vrrp"])
                .arg("--use-file")
                .arg(out.join("keepalived.conf"))
                .arg("--pid")
                .arg(out.join("keepalived.pid"))
                .arg("--vrrp_pid")
                .arg(out.join("vrrp.pid"))
                // Every pid file of the host's own (2.3 checks the BFD one even with --vrrp: two
                // hosts starting at once would find each other's in a shared /run).
                .arg("--checkers_pid")
                .arg(out.join("checkers.pid"))
                .arg("--bfd_pid")
                .arg(out.join("bfd.pid"))
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            start_proc(&format!("keepalived {}", host.name), &mut cmd)
        })
        .collect()
}

/// Waits up to 20 s for `vip` on `host` alone after keepalived started; panics with the holders
/// and the end of every host's keepalived log.
pub(crate) fn wait_for_first_vip(net: &NetLab, vip: &str, host: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while net.holders(vip) != [host] {
        if Instant::now() > until {
            let mut logs = String::new();
            for h in &net.hosts {
                if let Ok(log) = std::fs::read_to_string(net.dir.join("keepalived").join(&h.name).join("keepalived.log")) {
                    let lines: Vec<&str> = log.lines().collect();
                    logs += &format!("--- {} keepalived.log (end)\n{}\n", h.name, lines[lines.len().saturating_sub(25)..].join("\n"));
                }
            }
            panic!("timed out after 20s waiting for {vip} on {host} alone (holders: {:?})\n{logs}", net.holders(vip));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of every host's keepalived log that complain about the configuration (keepalived
/// ignores what it cannot read and carries on: a test must notice).
pub fn keepalived_complaints(net: &NetLab) -> Vec<String> {
    let dir = net.dir.join("keepalived");
    let mut found = Vec::new();
    for host in &net.hosts {
        if let Ok(log) = std::fs::read_to_string(dir.join(&host.name).join("keepalived.log")) {
            for line in log.lines() {
                let l = line.to_ascii_lowercase();
                if ["invalid", "ignoring", "not valid", "unknown keyword", "error", "unsafe", "disabling"].iter().any(|w| l.contains(w)) {
                    found.push(format!("{}: {line}", host.name));
                }
            }
        }
    }
    found
}

/// Which hosts held the VIP, sampled every 50 ms.
pub struct VipWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Duration, Vec<String>)>>,
}

impl VipWatch {
    /// Starts sampling, every 50 ms, which of `hosts` hold `vip` (for at most 120 s), times counted
    /// from `epoch`.
    pub fn start(hosts: Vec<Host>, vip: &'static str, epoch: Instant) -> VipWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let until = Instant::now() + Duration::from_secs(120);
            while !stop_flag.load(Ordering::SeqCst) && Instant::now() < until {
                samples.push((epoch.elapsed(), crate::netlab::holders_of(&hosts, vip)));
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        VipWatch { stop, handle }
    }

    /// Stops sampling and returns the samples.
    pub fn finish(self) -> VipTimeline {
        self.stop.store(true, Ordering::SeqCst);
        VipTimeline(self.handle.join().unwrap())
    }
}

/// The VIP's holders over time: `(since the epoch, hosts)`.
#[derive(Clone, Debug)]
pub struct VipTimeline(pub Vec<(Duration, Vec<String>)>);

impl VipTimeline {
    /// The first sample after `from` in which `host` no longer holds the VIP (and never again before `until`).
    pub fn released_by(&self, host: &str, from: Duration, until: Duration) -> Option<Duration> {
        let window: Vec<&(Duration, Vec<String>)> = self.0.iter().filter(|(t, _)| *t >= from && *t <= until).collect();
        let last_held = window.iter().rposition(|(_, h)| h.iter().any(|x| x == host));
        match last_held {
            None => window.first().map(|(t, _)| *t),
            Some(i) => window.get(i + 1).map(|(t, _)| *t),
        }
    }

    /// The first sample after `from` in which exactly `host` holds the VIP.
    pub fn first_held_alone(&self, host: &str, from: Duration) -> Option<Duration> {
        self.0.iter().find(|(t, h)| *t >= from && h.len() == 1 && h[0] == host).map(|(t, _)| *t)
    }

    /// The most hosts that held the VIP in any one sample.
    pub fn max_holders(&self) -> usize {
        self.0.iter().map(|(_, h)| h.len()).max().unwrap_or(0)
    }
}

/// `program -t` (keepalived's own parse) on `body`, a generated keepalived.conf, written to `copy`
/// with its `script_user` set to `user` and each script's program replaced by `script(name)` (its
/// arguments kept): keepalived refuses scripts under directories others may write, and Debian
/// 12's 2.2.7 exits 143 from `-t` whenever `script_user` is not root (fixed in 2.2.8). Returns the
/// exit code, and what keepalived said followed by the file it read.
pub fn keepalived_t(program: &Path, body: &str, copy: &Path, user: &str, script: impl Fn(&str) -> String) -> (Option<i32>, String) {
    let body: String = body
        .lines()
        .map(|l| match l.split_once("script \"") {
            Some((indent, rest)) => {
                // The program is the first word, single-quoted when it holds a space.
                let (program, args) = match rest.strip_prefix('\'') {
                    Some(quoted) => quoted.split_once("' ").unwrap_or((quoted.trim_end_matches(['\'', '"']), "\"")),
                    None => rest.split_once(' ').unwrap_or((rest.trim_end_matches('"'), "\"")),
                };
                let name = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                format!("{indent}script \"{} {args}\n", script(&name))
            }
            None if l.trim_start().starts_with("script_user ") => format!("    script_user {user}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(copy, &body).unwrap();
    let mut cmd = std::process::Command::new(program);
    cmd.arg("-t").arg("-f").arg(copy);
    let r = crate::run_command(&mut cmd, Duration::from_secs(20));
    (r.code, format!("{}{}\n{body}", r.stdout, r.stderr))
}
