//! The listener: a bounded number of connections at once (the excess answered 503 at once), each
//! with a deadline for its request head, one answer per connection; and the coalescer that lets
//! concurrent requests for one service share one check run.

use super::exec::{run_check, CheckRun};
use super::http::{head_end, parse_head, Answer, Refusal, MAX_HEAD};
use super::{answer_of, Args, Node, Served};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer may take to write to a client before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A service's last check run and when it ended, locked while a run is under way.
type LastRun = Mutex<Option<(Instant, CheckRun)>>;

/// Shares check runs between concurrent requests for one service (`--coalesce`).
pub struct Coalescer {
    window: Duration,
    /// Per (service, json): the last run and when it ended. The lock is held while the check
    /// runs, so concurrent requests wait for that run instead of starting their own.
    last: HashMap<(String, bool), LastRun>,
}

impl Coalescer {
    /// A coalescer over `services`; a zero `window` runs every request's check.
    pub fn new(services: &[Served], window: Duration) -> Coalescer {
        let last = services.iter().flat_map(|s| [(s.id.clone(), false), (s.id.clone(), true)]).map(|k| (k, Mutex::new(None))).collect();
        Coalescer { window, last }
    }

    /// The answer for `service`: a run of its check, or one that ended within the window.
    pub fn run(&self, service: &Served, json: bool) -> Answer {
        let fresh = || run_check(&service.args, if json { &["--format", "json"] } else { &[] }, service.timeout);
        let slot = match self.last.get(&(service.id.clone(), json)) {
            Some(slot) if !self.window.is_zero() => slot,
            _ => return answer_of(&fresh(), json),
        };
        let mut last = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((ended, run)) = last.as_ref() {
            if ended.elapsed() < self.window {
                return answer_of(run, json);
            }
        }
        let run = fresh();
        let answer = answer_of(&run, json);
        *last = Some((Instant::now(), run));
        answer
    }
}

/// Reads one request head from `input` within `deadline` (at most [`MAX_HEAD`] bytes), setting the
/// read timeout to what is left before each read: the request, or the answer that refuses it.
fn read_request(
    input: &mut impl Read,
    deadline: Instant,
    set_timeout: &mut dyn FnMut(Duration) -> bool,
) -> Result<super::http::Request, Answer> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            return parse_head(&buf[..end]).map_err(|r| r.answer());
        }
        if buf.len() > MAX_HEAD {
            return Err(Refusal::TooLarge.answer());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !set_timeout(left) {
            return Err(Answer::text(408, "the request head did not arrive in time\n".into()));
        }
        match input.read(&mut chunk) {
            Ok(0) => return Err(Answer::text(400, "bad request: the connection closed before the head ended\n".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(Answer::text(408, "the request head did not arrive in time\n".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Answer::text(400, "bad request: reading it failed\n".into())),
        }
    }
}

/// Answers one connection: read its head, run what it asks, write the answer, close.
fn handle(mut stream: TcpStream, node: &Node, coalescer: &Coalescer, header_timeout: Duration) {
    let deadline = Instant::now() + header_timeout;
    // `&TcpStream` reads too: the timeouts are set on the same socket while it is read.
    let (request, head_only) = match read_request(&mut &stream, deadline, &mut |d| stream.set_read_timeout(Some(d)).is_ok()) {
        Ok(req) => (node.answer(&req, coalescer), req.head_only),
        Err(answer) => (answer, false),
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.write_all(&request.to_bytes(head_only));
    let _ = stream.shutdown(std::net::Shutdown::Write);
    linger(&mut stream);
}

/// Reads what the client still sends (a body, a pipelined request) for a moment before closing:
/// closing with unread input makes the kernel reset the connection, and a reset can destroy the
/// answer before the client reads it. At most 64 KiB and 200 ms.
fn linger(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let until = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 4096];
    let mut left = 64 << 10;
    while left > 0 && Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n.min(left),
        }
    }
}

/// Counts a connection in flight while alive.
struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves forever: each accepted connection gets a thread while fewer than `--max-connections`
/// are in flight; any more are answered 503 at once and closed.
pub fn serve(listener: TcpListener, node: Node, args: &Args) -> anyhow::Result<()> {
    let coalescer = Coalescer::new(&node.services, args.coalesce);
    let shared = Arc::new((node, coalescer));
    let in_flight = Arc::new(AtomicU32::new(0));
    let busy = Answer::text(503, format!("busy: {} connections in flight (--max-connections)\n", args.max_connections)).to_bytes(false);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            // Out of descriptors or a connection reset before accept: breathe, go on.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if in_flight.fetch_add(1, Ordering::SeqCst) >= args.max_connections {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            // At once, never blocking the accept loop: what already arrived is read (so that the
            // close does not reset the answer away), the answer written, the connection closed.
            let _ = stream.set_nonblocking(true);
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write(&busy);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            continue;
        }
        let slot = Slot(Arc::clone(&in_flight));
        let shared = Arc::clone(&shared);
        let header_timeout = args.header_timeout;
        let spawned = std::thread::Builder::new().name("connection".into()).stack_size(256 << 10).spawn(move || {
            let _slot = slot;
            let (node, coalescer) = &*shared;
            handle(stream, node, coalescer, header_timeout);
        });
        if spawned.is_err() {
            // No thread: the slot was dropped with the closure, the connection closes unanswered.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// `--inetd`: one request on standard input, its answer on standard output.
pub fn answer_stdio(node: &Node, args: &Args) {
    let coalescer = Coalescer::new(&node.services, Duration::ZERO);
    let deadline = Instant::now() + args.header_timeout;
    // Standard input may be a socket or a pipe: read it on a thread, wait at most the deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new().stack_size(128 << 10).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let _ = tx.send(read_request(&mut stdin, deadline + Duration::from_secs(3600), &mut |_| true));
    });
    let (answer, head_only) = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(req)) => (node.answer(&req, &coalescer), req.head_only),
        Ok(Err(answer)) => (answer, false),
        Err(_) => (Answer::text(408, "the request head did not arrive in time\n".into()), false),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&answer.to_bytes(head_only));
    let _ = out.flush();
}
