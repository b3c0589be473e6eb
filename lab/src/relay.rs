//! A TCP relay that can stop forwarding while it keeps both sockets open: what a stateful firewall,
//! a dead NAT entry or a frozen middlebox do to a replication link. Neither end sees an error; the
//! data waits in the kernels' buffers until the relay forwards again.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a relay lives at the most: every loop of it is bounded in time.
const LIFETIME: Duration = Duration::from_secs(600);

/// A relay on 127.0.0.1 to one target (stopped, its threads joined, when dropped).
pub struct Relay {
    /// The port it listens on.
    pub port: u16,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Bytes a second each direction of each connection may carry (0: no limit).
    rate: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying connections to `host:port`.
    pub fn start(host: &str, port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let local = listener.local_addr().unwrap().port();
        let (paused, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let rate = Arc::new(AtomicU64::new(0));
        let target = format!("{host}:{port}");
        let (p, s, r) = (Arc::clone(&paused), Arc::clone(&stop), Arc::clone(&rate));
        let accept = std::thread::spawn(move || {
            let started = Instant::now();
            let mut pumps = Vec::new();
            while !s.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(&target) else { continue };
                        for (from, to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                            let (p, s, r) = (Arc::clone(&p), Arc::clone(&s), Arc::clone(&r));
                            pumps.push(std::thread::spawn(move || pump(from, to, &p, &s, &r, started)));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                    Err(_) => break,
                }
            }
            s.store(true, Ordering::SeqCst);
            for p in pumps {
                let _ = p.join();
            }
        });
        Relay { port: local, paused, stop, rate, accept: Some(accept) }
    }

    /// Stops forwarding, both ways; the connections stay open.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Carries at most `bytes_per_second` each way on each connection from now on (`None`: no
    /// limit): a slow link that stays up.
    pub fn limit(&self, bytes_per_second: Option<u64>) {
        self.rate.store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

/// Copies `from` to `to` while not paused, until either end closes or the relay stops.
fn pump(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool, stop: &AtomicBool, rate: &AtomicU64, started: Instant) {
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 16 << 10];
    // Limited, a read takes at most a tenth of a second's worth.
    let chunk = |rate: u64| if rate == 0 { 16 << 10 } else { (rate as usize / 10).clamp(1, 16 << 10) };
    while !stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
        if paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let limit = rate.load(Ordering::SeqCst);
        let take = chunk(limit);
        match from.read(&mut buf[..take]) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if limit > 0 {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / limit as f64));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}
