//! Every check against servers and files that misbehave the way an attacker would make them: huge
//! announced sizes, replies that never end, trickles, random bytes, truncations, special files.
//! Each run must exit 0, 1 or 2, within its deadline plus 250 ms, with a peak RSS under 64 MiB,
//! output under 4 KiB, and no panic.
//!
//! The random cases come from a fixed seed; `HOSTILE_CASES=500 cargo test --test hostile` runs a
//! longer campaign (default 24 per check).

use lab::*;
use std::time::Duration;

/// Every check that looks at one server, from the one list of checks.
fn checks() -> impl Iterator<Item = &'static str> {
    consul_db_checks::executables::server_checks(None).map(|e| e.name)
}
const RSS_LIMIT_KIB: i64 = 64 << 10;
const TIMEOUT: &str = "2s";

/// Runs `bin` with `args` and `--timeout 2s`; asserts the bounds every run must keep.
fn bounded(bin: &str, args: &[&str]) -> CheckRun {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--timeout", TIMEOUT]);
    let r = run(bin, &all);
    let what = format!("{bin} {args:?}");
    assert!(matches!(r.code, Some(0..=2)), "{what}: exit {:?}: {}{}", r.code, r.stdout, r.stderr);
    assert!(r.elapsed <= Duration::from_millis(2250), "{what}: took {:?}: {}", r.elapsed, r.stdout);
    assert!(r.max_rss_kib <= RSS_LIMIT_KIB, "{what}: peak RSS {} KiB: {}", r.max_rss_kib, r.stdout);
    assert!(r.stdout.len() < 4096, "{what}: {} bytes of output", r.stdout.len());
    assert!(!r.stdout.contains("panicked") && !r.stderr.contains("panicked"), "{what}: {}{}", r.stdout, r.stderr);
    r
}

/// Replies announcing sizes no real server sends, or never ending: the checks refuse them in
/// bounded memory and time, critical, naming the server.
#[test]
fn huge_and_endless_redis_replies() {
    let cases: [(&str, Fake); 6] = [
        ("a 2 GB bulk string", Fake::Streams(b"$2000000000\r\n")),
        ("a 2 GB bulk string, JSON output", Fake::Streams(b"$2000000001\r\n")),
        ("a 2-billion-element array", Fake::Streams(b"*2000000000\r\n")),
        ("a 2-billion-entry map (RESP3)", Fake::Streams(b"%2000000000\r\n")),
        ("an endless simple string", Fake::Streams(b"+")),
        ("deep nesting", Fake::Streams(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n")),
    ];
    for (what, behaviour) in cases {
        let srv = FakeServer::start(behaviour);
        let port = srv.port.to_string();
        for bin in [REDIS_MASTER, REDIS_SLAVE] {
            if what.ends_with("JSON output") {
                let r = bounded(bin, &[&port, "--format", "json"]);
                let v: serde_json::Value =
                    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.stdout));
                assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("critical"), Some(2)), "{}", r.stdout);
                assert_eq!(v["target"], format!("127.0.0.1:{port}"));
                continue;
            }
            let r = bounded(bin, &[&port]);
            assert_eq!(r.code, Some(2), "{what}: {bin}: {}", r.stdout);
            assert!(r.stdout.contains(&format!("127.0.0.1:{port}")), "{what}: {bin} does not name the server: {}", r.stdout);
            let check = bin.trim_start_matches("check-").to_uppercase();
            assert!(r.stdout.starts_with(&format!("{check} CRITICAL: ")), "{what}: {}", r.stdout);
            println!("hostile: {what}: {bin}: peak RSS {} KiB, {:?}: {}", r.max_rss_kib, r.elapsed, r.stdout.lines().next().unwrap_or(""));
        }
    }
}

/// A server that writes an error and closes is reported in its own words, not as "closed".
#[test]
fn redis_error_then_close_in_the_servers_words() {
    for words in ["ERR max number of clients reached", "DENIED Redis is running in protected mode because protected mode is enabled"] {
        let reply: &'static [u8] = Box::leak(format!("-{words}\r\n").into_bytes().into_boxed_slice());
        let srv = FakeServer::start(Fake::Sends(reply));
        for bin in [REDIS_MASTER, REDIS_SLAVE] {
            let r = bounded(bin, &[&srv.port.to_string()]);
            r.exits(2);
            assert!(r.stdout.contains(words) && r.stdout.contains(&format!("127.0.0.1:{}", srv.port)), "{bin}: {}", r.stdout);
        }
    }
}

/// A Sentinel that trickles its answer one byte every 100 ms is cut off at the probes' share of
/// the deadline, as a whole, and counts as unreachable: a healthy master stays warning, in time.
#[test]
fn trickling_sentinel_is_cut_off_as_a_whole() {
    let lab = lab::redis_lab::RedisLab::builder().replicas(1).start();
    let trickle = FakeServer::start(Fake::Trickles(b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n"));
    let sentinel = format!("127.0.0.1:{}", trickle.port);
    let r = bounded(REDIS_MASTER, &[&lab.master.port_arg(), "--sentinel", &sentinel, "--master-name", "m"]);
    assert_eq!(r.code, Some(1), "an unreachable Sentinel alone only warns: {}", r.stdout);
    assert!(r.stdout.contains(&sentinel), "{}", r.stdout);
}

/// One Sentinel out of three answering with a 2 GB bulk string, a 2-billion-element array or an
/// endless simple string fails its own probe (its per-probe memory budget), counted like an
/// unreachable one: a healthy master with a live replica stays warning, the two real Sentinels
/// naming it, or the bad one being the only Sentinel. Never the process-wide memory cap.
#[test]
fn one_oversized_sentinel_fails_only_its_own_probe() {
    let lab = lab::redis_lab::RedisLab::builder().replicas(1).sentinels(2).start();
    lab.wait_sentinels_settled();
    let cases: [(&str, Fake); 3] = [
        ("a 2 GB bulk string", Fake::Streams(b"*2\r\n$2000000000\r\n")),
        ("a 2-billion-element array", Fake::Streams(b"*2000000000\r\n")),
        ("an endless simple string", Fake::Streams(b"+")),
    ];
    let mut over_budget = 0;
    for (what, behaviour) in cases {
        let bad = FakeServer::start(behaviour);
        let bad_sentinel = format!("127.0.0.1:{}", bad.port);
        let mut args: Vec<String> = vec![lab.master.port_arg()];
        args.extend(lab.sentinel_args());
        args.extend(["--sentinel".into(), bad_sentinel.clone()]);
        let all: Vec<&str> = args.iter().map(String::as_str).collect();
        for bin in [REDIS_MASTER, REDIS_SLAVE] {
            let r = bounded(bin, &all);
            // The master: warning, as for any unreachable Sentinel; the read check: critical (its
            // replica is online and serves reads). Neither ends on the memory cap.
            let expected = if bin == REDIS_MASTER { 1 } else { 2 };
            assert_eq!(r.code, Some(expected), "{what}: {bin}, two Sentinels of three agree: {}", r.stdout);
            if bin == REDIS_MASTER {
                assert!(r.stdout.contains("2 of 3 Sentinels name this node") && r.stdout.contains(&bad_sentinel), "{}", r.stdout);
            }
            assert!(!r.stdout.contains("MiB of memory"), "{what}: {bin}: {}", r.stdout);
            println!("hostile sentinel: {what}: {bin}: peak RSS {} KiB, {:?}", r.max_rss_kib, r.elapsed);
        }
        let only_bad = [lab.master.port_arg(), "--sentinel".into(), bad_sentinel.clone(), "--master-name".into(), "labmaster".into()];
        let only: Vec<&str> = only_bad.iter().map(String::as_str).collect();
        let r = bounded(REDIS_MASTER, &only);
        assert_eq!(r.code, Some(1), "{what}: the only Sentinel is unusable, the replica is live: warning: {}", r.stdout);
        assert!(r.stdout.contains(&bad_sentinel), "{what}: {}", r.stdout);
        assert!(r.elapsed < Duration::from_millis(1500), "{what}: the bad probe ends at once: {:?}", r.elapsed);
        over_budget += usize::from(r.stdout.contains("far larger than any real one"));
    }
    // The parser refuses some at once (a bulk string over Redis's own 512 MB); the rest end on the
    // probe's memory budget, and at least that one must.
    assert!(over_budget >= 1, "no case reached the per-probe budget");
}

/// Files that are not what they claim: special files, FIFOs, huge files. Refused at once, naming
/// the file, never read without end.
#[test]
fn special_and_huge_files_are_refused() {
    let dir = TempDir::new("hostile-files");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let huge = dir.join("huge.cnf");
    write_file(&huge, &format!("[client]\n{}", "# padding\n".repeat(200_000)), 0o600);
    let include = dir.join("include.cnf");
    write_file(&include, "[client]\n!include /dev/zero\n", 0o600);
    let big_pw = dir.join("big.pw");
    write_file(&big_pw, &"p".repeat(100_000), 0o600);
    let fifo = fifo.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (MYSQL_MASTER, vec!["--defaults-file", "/dev/zero"], "/dev/zero is not a regular file"),
        (MYSQL_MASTER, vec!["--defaults-file", fifo], "is not a regular file"),
        (MYSQL_SLAVE, vec!["--defaults-file", huge.to_str().unwrap()], "more than the 65536 bytes"),
        (MYSQL_SLAVE, vec!["--defaults-file", include.to_str().unwrap()], "/dev/zero is not a regular file"),
        (MYSQL_MASTER, vec!["--tls-ca", "/dev/zero"], "/dev/zero is not a regular file"),
        (REDIS_MASTER, vec!["--tls-ca", "/dev/zero"], "/dev/zero is not a regular file"),
        (REDIS_MASTER, vec!["--password-file", fifo], "is not a regular file"),
        (REDIS_SLAVE, vec!["--password-file", big_pw.to_str().unwrap()], "more than the 4096 bytes"),
    ];
    for (bin, args, words) in cases {
        let r = bounded(bin, &args);
        assert_eq!(r.code, Some(2), "{bin} {args:?}: {}", r.stdout);
        assert!(r.stdout.contains(words), "{bin} {args:?}: {}", r.stdout);
        assert!(r.elapsed < Duration::from_millis(500), "{bin} {args:?} took {:?}", r.elapsed);
    }
}

/// A small deterministic generator (xorshift), so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Pieces of real protocol to mutate: RESP replies and a MySQL greeting.
const SEEDS: [&[u8]; 6] = [
    b"$120\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.3,port=6029,state=online,offset=1,lag=0\r\n\r\n",
    b"*3\r\n$5\r\nhello\r\n:42\r\n%1\r\n+a\r\n-ERR x\r\n",
    b"-ERR max number of clients reached\r\n",
    b"J\x00\x00\x00\x0a5.5.5-10.11.14-MariaDB\x00\x08\x00\x00\x00abcdefgh\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00",
    b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00",
    b"\xff\xff\xff\x01\xfe\xff\xff\xff\xff\xff\xff\xff\xff",
];

fn mutate(rng: &mut Rng) -> Vec<u8> {
    let seed = SEEDS[rng.below(SEEDS.len() as u64) as usize];
    let mut bytes = seed.to_vec();
    match rng.below(4) {
        // Truncated at a random offset.
        0 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
        // Random bytes flipped.
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] = rng.next() as u8;
            }
        }
        // Pure noise.
        2 => bytes = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        // An absurd length prefix before the real reply.
        _ => {
            let mut p = format!("${}\r\n", rng.next() >> 1).into_bytes();
            p.extend(bytes);
            bytes = p;
        }
    }
    bytes
}

/// Random and mutated bytes on the port, for every check: always 0/1/2, in time, bounded.
#[test]
fn random_bytes_on_the_port() {
    let cases: usize = std::env::var("HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    for i in 0..cases {
        let bytes: &'static [u8] = Box::leak(mutate(&mut rng).into_boxed_slice());
        let srv = FakeServer::start(if i % 2 == 0 { Fake::Sends(bytes) } else { Fake::Answers(bytes) });
        let port = srv.port.to_string();
        for bin in checks() {
            let r = bounded(bin, &[&port, "--user", "x"]);
            assert_ne!(r.code, Some(0), "{bin} passed on garbage {bytes:?}: {}", r.stdout);
        }
    }
}

/// What a fake MySQL server does after the login.
#[derive(Clone, Copy, Debug)]
enum MysqlFake {
    /// Answers every query with a result-set header announcing 2^40 columns.
    HugeColumnCount,
    /// Answers every query with a bare OK: no rows, no columns.
    OkToEverything,
    /// Answers every query with one column and rows that never end (at most 512 MiB and 20 s).
    EndlessRows,
    /// A writable master in every answer but the processlist, which has no `Command` column
    /// (`false`) or no row at all (`true`); the multi-statement query is refused (1064).
    OddProcesslist { empty: bool },
    /// A result set announcing 2^62 columns (the driver's capacity computation overflows).
    ColumnCount2To62,
}

/// A text-protocol result set (column definitions, rows, classic EOF packets) from sequence id 1.
fn result_set(columns: &[&str], rows: &[&[&str]]) -> Vec<u8> {
    let mut packets: Vec<Vec<u8>> = vec![vec![columns.len() as u8]];
    for name in columns {
        let mut column = Vec::new();
        for part in ["def", "", "", "", name, ""] {
            column.push(part.len() as u8);
            column.extend_from_slice(part.as_bytes());
        }
        column.extend_from_slice(&[0x0c, 0x21, 0x00, 0xff, 0x00, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
        packets.push(column);
    }
    packets.push(vec![0xfe, 0, 0, 2, 0]);
    for row in rows {
        packets.push(row.iter().flat_map(|v| std::iter::once(v.len() as u8).chain(v.bytes())).collect());
    }
    packets.push(vec![0xfe, 0, 0, 2, 0]);
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let n = p.len() as u32;
        out.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, (i + 1) as u8]);
        out.extend_from_slice(p);
    }
    out
}

/// A fake MySQL server: a real protocol-10 greeting, any login accepted, then `mode`.
fn fake_mysql(mode: MysqlFake) -> u16 {
    fake_mysql_announcing(b"5.5.5-10.11.14-MariaDB", mode)
}

/// Like [`fake_mysql`], with `version` as the greeting's server version.
fn fake_mysql_announcing(version: &'static [u8], mode: MysqlFake) -> u16 {
    use lab::mysql_wire::{packet, read_packet};
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = conn;
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut greeting = vec![0x0a];
                greeting.extend_from_slice(version);
                greeting.push(0);
                greeting.extend_from_slice(&[1, 0, 0, 0]);
                greeting.extend_from_slice(b"abcdefgh\0");
                greeting.extend_from_slice(&[0x0f, 0xa2, 0x21, 0x02, 0x00, 0x0b, 0x00, 21]);
                greeting.extend_from_slice(&[0; 10]);
                greeting.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
                if c.write_all(&packet(0, &greeting)).is_err() {
                    return;
                }
                let Some((seq, _login)) = read_packet(&mut c) else { return };
                let ok = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
                if c.write_all(&packet(seq + 1, &ok)).is_err() {
                    return;
                }
                // At most 20 queries per connection.
                for _ in 0..20 {
                    let Some((_, query)) = read_packet(&mut c) else { return };
                    if query.first() == Some(&0x01) {
                        return; // COM_QUIT
                    }
                    let reply = match mode {
                        MysqlFake::HugeColumnCount => packet(1, &[0xfe, 0, 0, 0, 0, 0, 1, 0, 0]),
                        MysqlFake::ColumnCount2To62 => packet(1, &[0xfe, 0, 0, 0, 0, 0, 0, 0, 0x40]),
                        MysqlFake::OkToEverything => packet(1, &ok),
                        MysqlFake::OddProcesslist { empty } => {
                            let sql = String::from_utf8_lossy(&query[1..]).to_string();
                            if sql.contains(';') {
                                packet(1, b"\xff\x28\x04#42000You have an error in your SQL syntax")
                            } else if sql.starts_with("SHOW GLOBAL VARIABLES") {
                                let vars: [&[&str]; 3] =
                                    [&["version", "10.11.14-MariaDB"], &["read_only", "OFF"], &["innodb_read_only", "OFF"]];
                                result_set(&["Variable_name", "Value"], &vars)
                            } else if sql.starts_with("SHOW PROCESSLIST") && empty {
                                result_set(&["Id", "User", "Host", "db", "Command"], &[])
                            } else if sql.starts_with("SHOW PROCESSLIST") {
                                result_set(&["Id", "User", "Host"], &[&["7", "repl", "10.0.0.2:4000"]])
                            } else {
                                result_set(&["Connection_name", "Slave_IO_Running"], &[])
                            }
                        }
                        MysqlFake::EndlessRows => {
                            let mut column = Vec::new();
                            for part in ["def", "", "", "", "Value", ""] {
                                column.push(part.len() as u8);
                                column.extend_from_slice(part.as_bytes());
                            }
                            column.extend_from_slice(&[0x0c, 0x21, 0x00, 0xff, 0xff, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
                            let mut head = packet(1, &[1]);
                            head.extend(packet(2, &column));
                            head.extend(packet(3, &[0xfe, 0, 0, 2, 0]));
                            head
                        }
                    };
                    if c.write_all(&reply).is_err() {
                        return;
                    }
                    if let MysqlFake::EndlessRows = mode {
                        let mut row = vec![0xfc, 0xe8, 0x03];
                        row.extend([b'a'; 1000]);
                        let start = std::time::Instant::now();
                        for seq in 0..(512usize << 20) / 1004 {
                            if start.elapsed() > Duration::from_secs(20) || c.write_all(&packet((4 + seq) as u8, &row)).is_err() {
                                return;
                            }
                        }
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Both MySQL checks against the fake server on `port`: each must exit 2 and name the server. The
/// runs, for the caller's own assertions.
fn both_mysql_checks_critical(port: &str) -> Vec<(&'static str, CheckRun)> {
    [MYSQL_MASTER, MYSQL_SLAVE]
        .into_iter()
        .map(|bin| {
            let r = bounded(bin, &[port, "--user", "x"]);
            assert_eq!(r.code, Some(2), "{bin}: {}", r.stdout);
            assert!(r.stdout.contains(&format!("127.0.0.1:{port}")), "{bin}: {}", r.stdout);
            (bin, r)
        })
        .collect()
}

/// A MySQL server announcing 2^40 columns: refused in bounded memory (it used to abort the
/// process on a failed allocation, exit 134).
#[test]
fn mysql_result_set_announcing_2_to_the_40_columns() {
    let port = fake_mysql(MysqlFake::HugeColumnCount).to_string();
    for (bin, r) in both_mysql_checks_critical(&port) {
        println!("hostile: 2^40 columns: {bin}: peak RSS {} KiB: {}", r.max_rss_kib, r.stdout.lines().next().unwrap_or(""));
    }
}

/// A master whose replicas report (`report_host`, `report_port`) fake servers that announce 2^40
/// columns or stream rows without end: each fails its own probe within its memory budget, and the
/// read check on the master still decides from the rest (passing: no replica is healthy, so the
/// master serves reads), never ending on the process-wide memory cap.
#[test]
fn an_oversized_replica_fails_only_its_own_probe() {
    let lab = lab::mysql_lab::MariaLab::start(0);
    let fakes = [fake_mysql(MysqlFake::HugeColumnCount), fake_mysql(MysqlFake::EndlessRows)];
    let _replicas: Vec<lab::mysql_lab::MariaNode> = fakes
        .iter()
        .enumerate()
        .map(|(i, fake)| {
            let report = format!("--report-port={fake}");
            let node = lab::mysql_lab::MariaNode::start(&lab.dir, &format!("r{i}"), 10 + i as u32, &["--report-host=127.0.0.1", &report]);
            node.replicate_from(&lab.master, "");
            node
        })
        .collect();
    wait_for("two dump threads", Duration::from_secs(20), || (lab.master.dump_threads(Some("repl")) == 2).then_some(()));
    let mut args = vec![lab.master.port_arg()];
    args.extend(lab.checker_args());
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = bounded(MYSQL_SLAVE, &all);
    println!("hostile replicas: {:?}, peak RSS {} KiB: {}", r.elapsed, r.max_rss_kib, r.stdout);
    assert_eq!(r.code, Some(0), "no healthy replica, the master serves reads: {}", r.stdout);
    for fake in fakes {
        assert!(r.stdout.contains(&format!("127.0.0.1:{fake}")), "{fake} not named: {}", r.stdout);
    }
    r.prints("far larger than any real one");
    assert!(!r.stdout.contains("MiB of memory"), "{}", r.stdout);
}

/// A MySQL server announcing 2^62 columns: the driver's capacity computation overflows (it used to
/// end as "internal error at .../raw_vec: capacity overflow"); now critical, naming the server and
/// the statement.
#[test]
fn mysql_result_set_announcing_2_to_the_62_columns() {
    let port = fake_mysql(MysqlFake::ColumnCount2To62).to_string();
    for (bin, r) in both_mysql_checks_critical(&port) {
        let line = r.stdout.lines().next().unwrap_or("");
        assert!(!r.output().contains("internal error") && !r.output().contains("capacity overflow"), "{bin}: {}", r.output());
        assert!(line.contains("cannot be read by the MySQL driver") && line.contains(" on 127.0.0.1:"), "{bin}: {line}");
    }
}

/// A MySQL result set that never ends: refused in bounded memory, in time.
#[test]
fn mysql_result_set_without_end() {
    let port = fake_mysql(MysqlFake::EndlessRows).to_string();
    for (bin, r) in both_mysql_checks_critical(&port) {
        println!(
            "hostile: endless rows: {bin}: peak RSS {} KiB, {:?}: {}",
            r.max_rss_kib,
            r.elapsed,
            r.stdout.lines().next().unwrap_or("")
        );
    }
}

/// A MySQL server that answers OK with no rows to every query: it never reported `read_only`, so it
/// is not "a writable master" (it used to be): critical, naming the missing fact.
#[test]
fn mysql_server_that_reports_nothing_fails_closed() {
    let port = fake_mysql(MysqlFake::OkToEverything).to_string();
    for (bin, r) in both_mysql_checks_critical(&port) {
        assert!(r.stdout.contains("did not report @@version"), "{bin}: {}", r.stdout);
    }
}

/// Greetings whose version the MySQL driver cannot parse: none (no dialect: statement by
/// statement), or digits that are not ASCII (the driver panics on them): exit 2 naming the server,
/// never an internal error.
#[test]
fn mysql_greeting_versions_the_driver_cannot_read() {
    let cases: [(&[u8], &str); 3] = [
        (b"garbage", "did not report @@version"),
        ("\u{661}\u{660}.\u{661}.\u{662}-MariaDB".as_bytes(), "greeting the MySQL driver cannot read"),
        ("5.\u{665}.5-x".as_bytes(), "greeting the MySQL driver cannot read"),
    ];
    for (version, expected) in cases {
        let port = fake_mysql_announcing(version, MysqlFake::OkToEverything).to_string();
        for (bin, r) in both_mysql_checks_critical(&port) {
            assert!(r.stdout.contains(expected), "{bin}: {}", r.stdout);
            assert!(!r.stdout.contains("internal error"), "{bin}: {}", r.stdout);
        }
    }
}

/// A processlist without a `Command` column, or listing no connection at all (a real one always
/// lists the connection asking), is not "no replicas": critical, naming the statement and the server,
/// for the master check and for the read check (which would otherwise let the master serve reads).
#[test]
fn mysql_processlist_that_cannot_be_true_fails_closed() {
    for (empty, expected) in [(false, "has no Command column"), (true, "no row at all")] {
        let port = fake_mysql(MysqlFake::OddProcesslist { empty }).to_string();
        for (bin, r) in both_mysql_checks_critical(&port) {
            let line = r.stdout.lines().next().unwrap_or("");
            assert!(line.contains(&format!("SHOW PROCESSLIST on 127.0.0.1:{port}")) && line.contains(expected), "{bin}: {line}");
        }
    }
}
