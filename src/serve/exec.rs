//! Runs one check as its own process, as Consul would: the argv of the generated file, killed at its
//! deadline, its output read up to a bound. A check that meets a hostile server can at worst end
//! its own process, never the server that started it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The most of a check's output that is kept (a check prints a few hundred bytes).
pub const MAX_OUTPUT: u64 = 64 << 10;

/// What one check process did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    /// Its exit code; `None` when it was killed at the deadline or did not start.
    pub code: Option<i32>,
    /// What it printed (at most [`MAX_OUTPUT`] bytes), or why there is nothing.
    pub output: String,
}

/// Runs `argv` (program first), plus `extra` arguments, and waits at most `limit`.
pub fn run_check(argv: &[String], extra: &[&str], limit: Duration) -> CheckRun {
    let name = argv.first().map(String::as_str).unwrap_or("?");
    // Its own process group, so that a kill at the deadline takes whatever it started with it.
    let child = Command::new(name)
        .process_group(0)
        .args(&argv[1.min(argv.len())..])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return CheckRun { code: None, output: format!("cannot start {name}: {e}\n") },
    };
    let stdout = child.stdout.take();
    let child = Arc::new(Mutex::new(child));
    let (done, finished) = mpsc::channel();
    let reaper = Arc::clone(&child);
    // Reads to the end (the check exits or is killed), then reaps: one thread per running check.
    let spawned = std::thread::Builder::new().name("check-output".into()).stack_size(64 << 10).spawn(move || {
        let mut output = Vec::new();
        if let Some(out) = stdout {
            let _ = out.take(MAX_OUTPUT).read_to_end(&mut output);
        }
        if output.len() as u64 >= MAX_OUTPUT {
            kill(&reaper);
        }
        let code = reap(&reaper, limit + Duration::from_secs(1));
        let _ = done.send(CheckRun { code, output: String::from_utf8_lossy(&output).into_owned() });
    });
    if spawned.is_err() {
        kill(&child);
        return CheckRun { code: None, output: format!("{name}: no thread to read its output\n") };
    }
    match finished.recv_timeout(limit) {
        Ok(run) => run,
        Err(_) => {
            // Killing under the lock the reaper waits with: never a signal to a reaped pid.
            kill(&child);
            CheckRun { code: None, output: format!("{name} did not finish within {}\n", crate::duration::format_duration(limit)) }
        }
    }
}

/// Waits for the child to end once its output is closed (it exits right after), never holding the
/// lock while it waits, so that the deadline can kill it; past `limit` it is killed here.
fn reap(child: &Arc<Mutex<Child>>, limit: Duration) -> Option<i32> {
    let started = std::time::Instant::now();
    loop {
        match child.lock().map(|mut c| c.try_wait()) {
            Ok(Ok(Some(status))) => return status.code(),
            Ok(Ok(None)) if started.elapsed() < limit => std::thread::sleep(Duration::from_micros(200)),
            _ => {
                kill(child);
                return None;
            }
        }
    }
}

/// Kills the child's process group and reaps the child, unless it was reaped already (until it
/// is reaped, its pid, which is also the group's id, cannot be reused).
fn kill(child: &Arc<Mutex<Child>>) {
    if let Ok(mut c) = child.lock() {
        if let Ok(None) = c.try_wait() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill has no memory preconditions; the group is the unreaped child's own.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
