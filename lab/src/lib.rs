//! Test harness of consul-db-checks, shared by the tests, the demo and the bench: throwaway servers
//! on free loopback ports, hostile fake servers, and a way to run the check executables and read
//! their verdicts the way Consul would.
//!
//! Adding a scenario (a test in `tests/redis_checks.rs`, for example):
//!
//! ```ignore
//! use lab::pools::{self, Observable};
//! use lab::redis_lab::RedisLab;
//! use lab::*;
//!
//! #[test]
//! fn replica_link_down_sends_reads_to_the_other_replica() {
//!     // 1. A topology: real servers on free loopback ports, stopped when `lab` is dropped.
//!     let mut lab = RedisLab::builder().replicas(2).sentinels(0).start();
//!     // 2. A fault, and a named wait for the server to show it.
//!     lab.master.proc.kill();
//!     lab.replicas[0].wait_link_down();
//!     // 3. One check, named once, with chained assertions on what an operator would read.
//!     check("check-redis-slave", [lab.replicas[0].port_arg()])
//!         .code_is(2)
//!         .summary_has("link down")
//!         .fact_is("master_link_status", "down");
//!     // 4. Or both checks on every node, and the pools Consul DNS would answer with, by address.
//!     let views = lab.observe().read_args(&["--max-lag", "30"]).run();
//!     views.assert(&pools::NOBODY, &pools::NOBODY);
//!     views.node(lab.replicas[1].addr()).read.code_is(2).summary_has("link down");
//! }
//! ```

pub mod consul_hosts;
pub mod consul_lab;
pub mod galera_lab;
pub mod haproxy_lab;
pub mod http_lab;
pub mod keepalived;
pub mod mysql_lab;
pub mod mysql_wire;
pub mod netlab;
pub mod oracle_mysql;
pub mod pki;
pub mod pools;
pub mod redis_lab;
pub mod relay;
pub mod vip_lab;
pub mod writer;

pub use consul_db_checks::report::Status;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

/// A directory removed when dropped (the library's, which its unit tests use too), and a file
/// written with a mode.
pub use consul_db_checks::test_files::{write as write_file, TempDir};

/// A port nobody has bound right now on any address, never handed out before by this process,
/// and outside the kernel's ephemeral range (32768-60999 by default): a server started later on it
/// cannot find it taken by an outgoing connection meanwhile (a Galera node's link to its peers,
/// the harness's own polls), nor by another lab of a test running in parallel. Never 6379/3306.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20000;
    const SPAN: u32 = 12000;
    // Each test process starts elsewhere in the range: two processes rarely probe the same ports.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id().wrapping_mul(7919) % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + SPAN - 1)
}

/// Starts `cmd` so that it dies with the test process, even if the test process is killed.
pub fn spawn_tied(cmd: &mut Command) -> Child {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e} (run `make deps`)", cmd.get_program()))
}

/// A server process, SIGKILLed and reaped when dropped.
pub struct Proc {
    /// The child.
    pub child: Option<Child>,
    /// What it is, for messages.
    pub name: String,
}

impl Proc {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
    /// Sends a signal (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // A stopped process must be continued to die promptly on some kernels.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGCONT);
            }
        }
        self.kill();
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `limit` with `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One run of a check executable.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
    /// Peak resident set size of the process, in KiB (from `wait4`).
    pub max_rss_kib: i64,
}

impl CheckRun {
    /// The JSON object printed with `--format json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    /// How Consul reads the exit code.
    pub fn status(&self) -> Status {
        Status::of_exit_code(self.code)
    }
    /// Whether Consul would keep the node in the pool (the project's one pool rule).
    pub fn in_pool(&self) -> bool {
        self.status().in_pool()
    }
    /// Exit code, asserting it is one of 0, 1, 2.
    pub fn exit(&self) -> i32 {
        match self.code {
            Some(c @ 0..=2) => c,
            other => panic!("exit code {other:?} is not 0/1/2: {self:?}"),
        }
    }
    /// All output.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// Asserts the exit code (`run(M, ["6029"]).exits(2).prints("is a replica")`).
    #[track_caller]
    pub fn exits(&self, code: i32) -> &Self {
        assert_eq!(self.exit(), code, "exit code: {self:?}");
        self
    }
    /// Asserts that standard output contains `text`.
    #[track_caller]
    pub fn prints(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "stdout without {text:?}: {self:?}");
        self
    }
    /// Asserts that standard error contains `text`.
    #[track_caller]
    pub fn complains(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr without {text:?}: {self:?}");
        self
    }
    /// Asserts that the output (standard output, then error) contains `text`.
    #[track_caller]
    pub fn says(&self, text: &str) -> &Self {
        assert!(self.output().contains(text), "output without {text:?}: {self:?}");
        self
    }
    /// Asserts that no output contains `text`.
    #[track_caller]
    pub fn never_says(&self, text: &str) -> &Self {
        assert!(!self.output().contains(text), "output with {text:?}: {self:?}");
        self
    }
    /// Asserts the whole standard output: the pinned cases.
    #[track_caller]
    pub fn prints_exactly(&self, text: &str) -> &Self {
        assert_eq!(self.stdout, text, "the whole output differs: {self:?}");
        self
    }
}

/// The executables, each named once for every test file (a unit test holds them to the list).
pub const REDIS_MASTER: &str = "check-redis-master";
/// `check-redis-slave`.
pub const REDIS_SLAVE: &str = "check-redis-slave";
/// `check-mysql-master`.
pub const MYSQL_MASTER: &str = "check-mysql-master";
/// `check-mysql-slave`.
pub const MYSQL_SLAVE: &str = "check-mysql-slave";
/// `check-topology`.
pub const TOPOLOGY: &str = "check-topology";
/// `serve-checks`.
pub const SERVE_CHECKS: &str = "serve-checks";
/// `gen-consul-services`.
pub const GENERATOR: &str = "gen-consul-services";

#[cfg(test)]
mod names {
    use consul_db_checks::kinds::{Kind, Role};

    #[test]
    fn the_names_are_the_executables() {
        let serving = |k, r| consul_db_checks::checks::serving(k, r).name;
        assert_eq!(super::REDIS_MASTER, serving(Kind::Redis, Role::Write));
        assert_eq!(super::REDIS_SLAVE, serving(Kind::Redis, Role::Read));
        assert_eq!(super::MYSQL_MASTER, serving(Kind::Mysql, Role::Write));
        assert_eq!(super::MYSQL_SLAVE, serving(Kind::Mysql, Role::Read));
        for name in [super::TOPOLOGY, super::SERVE_CHECKS, super::GENERATOR] {
            assert!(consul_db_checks::executables::named(name).is_some(), "{name}");
        }
    }
}

/// Runs `bin` with `args` every 500 ms until it exits `code`, for at most `limit` (then panics with
/// its last output): that output, and how long after the first run began it came.
pub fn check_until<I, S>(bin: &str, args: I, code: i32, limit: Duration) -> (CheckOutput, Duration)
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    let started = Instant::now();
    loop {
        let v = check(bin, args.clone());
        if v.code() == code {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < limit, "never exit {code} within {limit:?}: {v}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Path of one of the project's executables: they sit in the target directory of the test,
/// example or bench binary that calls this (`target/<profile>/deps/x` or `target/<profile>/examples/x`),
/// or in `CDC_BIN_DIR` when set.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("CDC_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a binary under target/<profile>/");
    profile_dir.join(name)
}

/// Runs an executable with `args` (and extra environment), killing it after 20 s.
pub fn run_env<I, S>(name: &str, args: I, env: &[(&str, &str)]) -> CheckRun
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin(name));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("REDISCLI_AUTH").env_remove("MYSQL_PWD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(&mut cmd, Duration::from_secs(20))
}

/// Runs `cmd` to its end (killed after `limit`), capturing its output and timing it. The child is
/// reaped with `wait4` (which also reports its peak RSS), not `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run_command(cmd: &mut Command, limit: Duration) -> CheckRun {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = spawn_tied(cmd);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // wait4 rather than Child::wait: it also reports the child's peak RSS.
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    CheckRun { code, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap(), elapsed, max_rss_kib: usage.ru_maxrss }
}

/// Runs an executable with `args` (anything string-like: `&[&str]`, `Vec<String>`, ...).
pub fn run<I, S>(name: &str, args: I) -> CheckRun
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_env(name, args, &[])
}

/// Runs a check with `--format json` appended and reads its verdict, asserting the output is the
/// JSON object of the README (fields present, status agreeing with the exit code).
pub fn check<I, S>(name: &str, args: I) -> CheckOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    all.extend(["--format".into(), "json".into()]);
    let run = run(name, &all);
    let json = run.json();
    assert_json_shape(&run, &json);
    CheckOutput { run, json }
}

/// One check run with its JSON verdict: what tests assert on.
#[derive(Clone)]
pub struct CheckOutput {
    /// The process run (exit code, raw output, wall time).
    pub run: CheckRun,
    /// The parsed JSON object.
    pub json: Value,
}

impl CheckOutput {
    /// `passing`, `warning` or `critical`.
    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or_default()
    }
    /// The exit code (asserted to be 0, 1 or 2).
    pub fn code(&self) -> i32 {
        self.run.exit()
    }
    /// `host:port` or the socket path the check looked at.
    pub fn target(&self) -> &str {
        self.json["target"].as_str().unwrap_or_default()
    }
    /// The one-line summary.
    pub fn summary(&self) -> &str {
        self.json["summary"].as_str().unwrap_or_default()
    }
    /// A fact by dotted path (`role`, `connected_replicas.0.state`); `Value::Null` when absent.
    pub fn fact(&self, path: &str) -> &Value {
        path.split('.').fold(&self.json["facts"], |v, key| match key.parse::<usize>() {
            Ok(i) if v.is_array() => &v[i],
            _ => &v[key],
        })
    }
    /// The reasons, in order.
    pub fn reasons(&self) -> Vec<&str> {
        self.json["reasons"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    }
    /// Whether some reason contains `text`.
    pub fn reason_contains(&self, text: &str) -> bool {
        self.reasons().iter().any(|r| r.contains(text))
    }
    /// Whether Consul would keep the node in the pool: passing or warning.
    pub fn in_pool(&self) -> bool {
        self.run.in_pool()
    }
    /// Asserts the exit code (`check(..).code_is(2).summary_has("read_only")`).
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "exit code: {self}");
        self
    }
    /// Asserts that the summary contains `text`.
    #[track_caller]
    pub fn summary_has(&self, text: &str) -> &Self {
        assert!(self.summary().contains(text), "summary without {text:?}: {self}");
        self
    }
    /// Asserts that some reason contains `text`.
    #[track_caller]
    pub fn reason_has(&self, text: &str) -> &Self {
        assert!(self.reason_contains(text), "no reason with {text:?}: {self}");
        self
    }
    /// Asserts a fact by dotted path.
    #[track_caller]
    pub fn fact_is(&self, path: &str, value: impl Into<Value>) -> &Self {
        let value = value.into();
        assert_eq!(self.fact(path), &value, "fact {path}: {self}");
        self
    }
}

impl std::fmt::Display for CheckOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?} in {:?}: {}", self.run.code, self.run.elapsed, self.run.stdout.trim_end())
    }
}

impl std::fmt::Debug for CheckOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Asserts the JSON output has the README's fields and agrees with the exit code.
pub fn assert_json_shape(r: &CheckRun, v: &Value) {
    for key in ["check", "status", "exit_code", "summary", "target", "reasons", "facts"] {
        assert!(v.get(key).is_some(), "JSON without {key}: {}", r.stdout);
    }
    assert_eq!(v["exit_code"].as_i64(), r.code.map(i64::from), "{}", r.stdout);
    // Warning may be mapped to 0 by --warning-exit-code; critical is always 2.
    let ok = matches!((v["status"].as_str(), r.exit()), (Some("passing"), 0) | (Some("warning"), 0 | 1) | (Some("critical"), 2));
    assert!(ok, "status and exit code disagree: {}", r.stdout);
    assert!(v["reasons"].is_array() && v["facts"].is_object());
}

/// A fake server that accepts connections and then does `behaviour` with each one.
pub struct FakeServer {
    /// Its port.
    pub port: u16,
}

/// What a fake server does with a connection.
#[derive(Clone, Copy)]
pub enum Fake {
    /// Accepts and never answers (holds the socket open).
    Silent,
    /// Sends these bytes at once, then closes.
    Sends(&'static [u8]),
    /// Reads the request, answers with these bytes, then closes.
    Answers(&'static [u8]),
    /// Reads the request, sends these bytes, then streams filler (64 KiB at a time) until the
    /// client goes away: at most 512 MiB and 20 s per connection.
    Streams(&'static [u8]),
    /// Reads the request, then sends these bytes one at a time, 100 ms apart, then keeps the
    /// connection open and silent (at most 20 s).
    Trickles(&'static [u8]),
}

impl FakeServer {
    /// Starts a fake server on a free port; it lives until the test process ends.
    pub fn start(behaviour: Fake) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for mut conn in listener.incoming().flatten() {
                match behaviour {
                    Fake::Silent => held.push(conn),
                    Fake::Sends(bytes) => {
                        let _ = conn.write_all(bytes);
                    }
                    Fake::Answers(bytes) => {
                        let mut buf = [0u8; 1024];
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(bytes);
                    }
                    Fake::Streams(prefix) => {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 1024];
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                            let _ = conn.read(&mut buf);
                            let _ = conn.write_all(prefix);
                            let chunk = vec![b'a'; 64 << 10];
                            let start = Instant::now();
                            for _ in 0..(512 << 20) / chunk.len() {
                                if start.elapsed() > Duration::from_secs(20) || conn.write_all(&chunk).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Fake::Trickles(bytes) => {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 1024];
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                            let _ = conn.read(&mut buf);
                            for b in bytes {
                                if conn.write_all(&[*b]).is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            std::thread::sleep(Duration::from_secs(20));
                        });
                    }
                }
            }
        });
        FakeServer { port }
    }
}

/// Asserts that no output of `runs` contains `secret`.
pub fn assert_no_secret(runs: &[&CheckRun], secret: &str) {
    for r in runs {
        assert!(!r.output().contains(secret), "secret leaked: {r:?}");
    }
}

/// The user name of `uid` in /etc/passwd, read directly (not through the C library under test).
pub fn passwd_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
    })
}
