//! `serve-checks` as the tests run it: a process on a free loopback port, and a small HTTP client
//! that sends raw bytes and reads the answer (bounded in size and time), as a hostile client would.

use crate::SERVE_CHECKS;
use crate::{bin, spawn_tied, wait_for, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running `serve-checks`, killed when dropped.
pub struct ServeChecks {
    /// The process.
    pub proc: Proc,
    /// `host:port` it listens on.
    pub addr: String,
}

impl ServeChecks {
    /// Starts `serve-checks --inventory INV --node NODE --listen ADDR` plus `extra`, and waits
    /// until it accepts connections (at most 10 s).
    pub fn start(inventory: &std::path::Path, node: &str, listen: &str, extra: &[&str]) -> ServeChecks {
        let mut cmd = Command::new(bin(SERVE_CHECKS));
        cmd.args(["--inventory", inventory.to_str().unwrap(), "--node", node, "--listen", listen]).args(extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = spawn_tied(&mut cmd);
        let proc = Proc { child: Some(child), name: format!("serve-checks {node}") };
        wait_for(&format!("serve-checks on {listen}"), Duration::from_secs(10), || TcpStream::connect(listen).ok().map(|_| ()));
        ServeChecks { proc, addr: listen.to_string() }
    }

    /// `GET path` as HAProxy sends it (HTTP/1.0, no headers).
    pub fn get(&self, path: &str) -> HttpReply {
        self.send(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
    }

    /// Sends `request` as it is and reads the answer (10 s at most).
    pub fn send(&self, request: &[u8]) -> HttpReply {
        exchange(&self.addr, request, Duration::from_secs(10))
    }

    /// A line of `/proc/PID/status` (`Threads`, `VmRSS`) as a number.
    pub fn status_field(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// An HTTP answer as received.
#[derive(Clone, Debug, Default)]
pub struct HttpReply {
    /// The status code (0: no status line came).
    pub status: u16,
    /// The header lines.
    pub headers: Vec<String>,
    /// The body.
    pub body: String,
    /// Everything received.
    pub raw: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl HttpReply {
    /// The value of header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| h.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    }
}

/// Connects to `addr`, writes `request`, reads until the server closes (at most 1 MiB, `limit`).
pub fn exchange(addr: &str, request: &[u8], limit: Duration) -> HttpReply {
    let started = Instant::now();
    let Ok(mut conn) = TcpStream::connect_timeout(&addr.parse().expect("an IP:port"), limit) else { return HttpReply::default() };
    let _ = conn.set_read_timeout(Some(limit));
    let _ = conn.write_all(request);
    let mut raw = Vec::new();
    let _ = (&mut conn).take(1 << 20).read_to_end(&mut raw);
    parse_reply(raw, started.elapsed())
}

/// Reads an answer from an open connection until the server closes it (at most `limit`).
pub fn read_reply(conn: &mut TcpStream, limit: Duration) -> HttpReply {
    let started = Instant::now();
    let _ = conn.set_read_timeout(Some(limit));
    let mut raw = Vec::new();
    let _ = conn.take(1 << 20).read_to_end(&mut raw);
    parse_reply(raw, started.elapsed())
}

/// Splits what a server sent into status, headers and body.
fn parse_reply(raw: Vec<u8>, elapsed: Duration) -> HttpReply {
    let mut reply = HttpReply { elapsed, raw: String::from_utf8_lossy(&raw).into_owned(), ..HttpReply::default() };
    let (head, body) = reply.raw.split_once("\r\n\r\n").unwrap_or((reply.raw.as_str(), ""));
    let mut lines = head.split("\r\n");
    reply.status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    reply.headers = lines.map(String::from).collect();
    reply.body = body.to_string();
    reply
}
