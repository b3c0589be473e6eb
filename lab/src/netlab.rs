//! Hosts in network namespaces: every host its own namespace, joined by a bridge (segment A), with
//! addresses from 198.18.0.0/24 (the range reserved for network test labs) and the same ports on
//! every host. A second bridge (segment B) takes a host cut off from the others while its link
//! stays up, with whatever client is moved there too.
//!
//! Everything created is removed when the lab is dropped, when the test panics, and on SIGINT or
//! SIGTERM; a lab left behind by a process that was killed outright is swept by the next one.
//! The root namespace gets no address: the harness talks to a host from a thread that entered
//! the host's namespace ([`in_namespace`]), and starts processes in it ([`ns_command`]).
//! Root is needed; [`NetLab::create`] says why not, for the caller to report the test as not run.

use crate::{spawn_tied, Proc};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};

/// The lab's /24: host `n` of a lab is `198.18.0.n`.
pub const LAB_PREFIX: &str = "198.18.0";

/// The interface of every host, as the generated keepalived configuration names it.
pub const LAB_INTERFACE: &str = "eth0";

/// One host: its namespace, address and the root end of its link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Short name (`h1`, `c1`).
    pub name: String,
    /// Network namespace name.
    pub ns: String,
    /// Its address on `eth0`.
    pub addr: String,
    /// The root-namespace end of its veth pair (what partitions move or take down).
    pub veth: String,
}

/// What to remove for one lab, kept where the signal handler can find it.
#[derive(Clone, Debug, Default)]
struct Created {
    namespaces: Vec<String>,
    links: Vec<String>,
    dirs: Vec<PathBuf>,
}

static CREATED: Mutex<Vec<(u32, Created)>> = Mutex::new(Vec::new());
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

/// Runs `ip` with `args`; `Err` with its message when it fails.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn remove(created: &Created) {
    for ns in &created.namespaces {
        let _ = ip(&["netns", "del", ns]);
    }
    for link in &created.links {
        let _ = ip(&["link", "del", link]);
    }
    for dir in &created.dirs {
        // CDC_KEEP_TEMP=1 keeps the servers' and keepalived's logs for a post-mortem.
        if std::env::var_os("CDC_KEEP_TEMP").is_some() {
            eprintln!("kept {}", dir.display());
            continue;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes every lab of this process now (for a program that handles SIGINT itself).
pub fn remove_all() {
    for (_, created) in CREATED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        remove(created);
    }
}

/// On SIGINT or SIGTERM: remove every lab of this process, then exit 130 (the servers die with
/// the process: they are tied to it).
fn clean_up_on_signals() {
    static ONCE: Once = Once::new();
    static mut PIPE: [libc::c_int; 2] = [-1, -1];
    extern "C" fn on_signal(_: libc::c_int) {
        // Only async-signal-safe work here: wake the cleaning thread.
        unsafe {
            let fd = PIPE[1];
            libc::write(fd, b"x".as_ptr().cast(), 1);
        }
    }
    ONCE.call_once(|| unsafe {
        let mut fds = [0; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        PIPE = fds;
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            libc::read(fds[0], b.as_mut_ptr().cast(), 1);
            eprintln!("netlab: interrupted, removing the lab's namespaces and links");
            remove_all();
            libc::_exit(130);
        });
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    });
}

/// Removes what labs of processes that no longer exist left behind (killed with SIGKILL).
fn sweep_stale() {
    let alive = |pid36: &str| u32::from_str_radix(pid36, 36).is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    if let Ok(list) = ip(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if let Some(pid36) = ns.strip_prefix("cdc-").and_then(|r| r.split('-').next()) {
                if !alive(pid36) {
                    let _ = ip(&["netns", "del", ns]);
                }
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        for name in list.lines().filter_map(|l| l.split(':').nth(1)).map(|n| n.trim().split('@').next().unwrap_or("").to_string()) {
            let stale =
                ["cb", "cv"].iter().any(|p| name.strip_prefix(p).and_then(|r| r.split_once('x')).is_some_and(|(pid36, _)| !alive(pid36)));
            if stale {
                let _ = ip(&["link", "del", &name]);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/run") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid36) = name.strip_prefix("cdc-lab-").and_then(|r| r.split('-').next()) {
                if !alive(pid36) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// A set of hosts in network namespaces on two bridge segments.
pub struct NetLab {
    /// Unique per lab: the process id and a counter, in base 36.
    pub tag: String,
    /// A root-owned directory, 0755 (keepalived runs scripts only from paths no other user can write).
    pub dir: PathBuf,
    /// Every host, in creation order.
    pub hosts: Vec<Host>,
    /// The two bridges: segment A (everyone) and segment B (the cut-off side).
    bridges: [String; 2],
    id: u32,
}

impl NetLab {
    /// Creates namespaces `names[i]` at `198.18.0.<addrs[i]>`, all on segment A. `Err` says why
    /// the lab cannot exist here (not root, no `ip`, no namespaces).
    pub fn create(names: &[(&str, u8)]) -> Result<NetLab, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        ip(&["-V"]).map_err(|e| format!("no iproute2: {e}"))?;
        clean_up_on_signals();
        sweep_stale();
        let id = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let pid36 = base36(std::process::id());
        let tag = format!("{pid36}x{}", base36(id));
        let dir = PathBuf::from(format!("/run/cdc-lab-{pid36}-{}", base36(id)));
        let bridges = [format!("cb{tag}a"), format!("cb{tag}b")];
        let mut lab = NetLab { tag: tag.clone(), dir: dir.clone(), hosts: Vec::new(), bridges: bridges.clone(), id };
        CREATED.lock().unwrap_or_else(|e| e.into_inner()).push((id, Created { dirs: vec![dir.clone()], ..Default::default() }));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        for b in &bridges {
            lab.record(|c| c.links.push(b.clone()));
            ip(&["link", "add", b, "type", "bridge"])?;
            ip(&["link", "set", b, "up"])?;
        }
        for (i, (name, n)) in names.iter().enumerate() {
            let host = Host {
                name: name.to_string(),
                ns: format!("cdc-{pid36}-{}-{name}", base36(id)),
                addr: format!("{LAB_PREFIX}.{n}"),
                veth: format!("cv{tag}{}", base36(i as u32)),
            };
            lab.record(|c| c.namespaces.push(host.ns.clone()));
            ip(&["netns", "add", &host.ns])?;
            lab.record(|c| c.links.push(host.veth.clone()));
            ip(&["link", "add", &host.veth, "type", "veth", "peer", "name", LAB_INTERFACE, "netns", &host.ns])?;
            ip(&["link", "set", &host.veth, "master", &bridges[0], "up"])?;
            ip(&["-n", &host.ns, "addr", "add", &format!("{}/24", host.addr), "dev", LAB_INTERFACE])?;
            ip(&["-n", &host.ns, "link", "set", LAB_INTERFACE, "up"])?;
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            lab.hosts.push(host);
        }
        Ok(lab)
    }

    fn record(&self, f: impl FnOnce(&mut Created)) {
        let mut all = CREATED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = all.iter_mut().find(|(id, _)| *id == self.id) {
            f(c);
        }
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Cuts `host` off from segment A while its link stays up: its port moves to segment B.
    pub fn cut_off(&self, host: &Host) {
        ip(&["link", "set", &host.veth, "master", &self.bridges[1]]).unwrap();
    }

    /// Takes `host`'s link down (its `eth0` loses carrier).
    pub fn link_down(&self, host: &Host) {
        ip(&["link", "set", &host.veth, "down"]).unwrap();
    }

    /// Puts `host` back on segment A with its link up.
    pub fn heal(&self, host: &Host) {
        ip(&["link", "set", &host.veth, "master", &self.bridges[0], "up"]).unwrap();
    }

    /// The hosts holding `vip` right now.
    pub fn holders(&self, vip: &str) -> Vec<String> {
        holders_of(&self.hosts, vip)
    }
}

/// The names of the `hosts` holding `vip` right now.
pub fn holders_of(hosts: &[Host], vip: &str) -> Vec<String> {
    hosts.iter().filter(|h| addresses_of(h).iter().any(|a| a == vip)).map(|h| h.name.clone()).collect()
}

/// The IPv4 addresses on `host`'s `eth0`.
pub fn addresses_of(host: &Host) -> Vec<String> {
    ip(&["-n", &host.ns, "-o", "-4", "addr", "show", "dev", LAB_INTERFACE])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .map(|a| a.split('/').next().unwrap_or("").to_string())
        .collect()
}

/// A command that will run inside the namespace `ns`.
pub fn ns_command(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new(program);
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("namespace {ns}: {e}"));
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Starts `cmd` tied to the test (it dies with the spawning thread), as a [`Proc`] named `name`.
pub fn start_proc(name: &str, cmd: &mut Command) -> Proc {
    Proc { child: Some(spawn_tied(cmd)), name: name.to_string() }
}

/// Runs `f` on a new thread that first enters the namespace `ns`.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("namespace {path}: {e}"));
        // Only this thread changes namespace (CLONE_NEWNET is per thread).
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {path}");
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Removes the namespaces, links and directory. The processes in the namespaces are owned by the
/// caller: declare them before the `NetLab` in a struct, so that they are stopped first.
impl Drop for NetLab {
    fn drop(&mut self) {
        let mut all = CREATED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = all.iter().position(|(id, _)| *id == self.id) {
            let (_, created) = all.remove(pos);
            remove(&created);
        }
    }
}
