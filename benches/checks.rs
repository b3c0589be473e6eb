//! `make bench`: the cost of one check run, next to the client it replaces and the original scripts.
//!
//! Starts a local master + replica, runs each check many times as a process (as Consul does), and
//! reports median and p90 wall time, CPU time per run (user + system, from the child's rusage) and
//! peak RSS. `redis-cli info replication` is the floor reference; the original shell scripts
//! (benches/original/) are the cost being replaced. With `BENCH_BASELINE` (a directory of another
//! build's executables, set by `make bench`), the last table runs this build and that one
//! alternately, run by run, so that both see the same machine. `BENCH_ONLY=paired`, `lag`, `topology`,
//! `mysql9`, `serve`, `galera` or `group` runs only that table. Children run without `RUST_BACKTRACE`, as Consul runs them.

use lab::mysql_lab::{MariaLab, CHECKER};
use lab::redis_lab::RedisLab;
use lab::{MYSQL_MASTER, MYSQL_SLAVE, REDIS_MASTER, REDIS_SLAVE, TOPOLOGY};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One measured process run.
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
    code: i32,
}

/// Runs `argv` once (with `env`) with output discarded, measuring it with wait4's rusage (wait4
/// reaps the child: `Child::wait` would lose the child's own resource usage).
#[allow(clippy::zombie_processes)]
fn measure(argv: &[String], env: &[(&str, String)]) -> Sample {
    let start = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert!(pid > 0, "wait4 failed");
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    Sample { wall, cpu: tv(usage.ru_utime) + tv(usage.ru_stime), max_rss_kib: usage.ru_maxrss, code: libc::WEXITSTATUS(status) }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Runs `argv` `runs` times (after a warm-up) and prints one table row.
fn bench(label: &str, argv: &[String], runs: usize, expect_code: i32) {
    bench_env(label, argv, &[], runs, expect_code)
}

/// Like [`bench`], with extra environment variables.
fn bench_env(label: &str, argv: &[String], env: &[(&str, String)], runs: usize, expect_code: i32) {
    for _ in 0..5 {
        measure(argv, env);
    }
    let samples: Vec<Sample> = (0..runs).map(|_| measure(argv, env)).collect();
    row(label, &samples, expect_code);
}

/// Runs `argv` with this build's executable and with the baseline's (same name in `baseline`),
/// alternating run by run so that both see the same machine, and prints both rows and the ratio.
fn bench_pair(label: &str, argv: &[String], baseline: &Path, runs: usize, expect_code: i32) {
    let name = Path::new(&argv[0]).file_name().unwrap();
    let mut old = argv.to_vec();
    old[0] = baseline.join(name).display().to_string();
    for _ in 0..5 {
        measure(argv, &[]);
        measure(&old, &[]);
    }
    let (mut new_samples, mut old_samples) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        new_samples.push(measure(argv, &[]));
        old_samples.push(measure(&old, &[]));
    }
    let new_row = row(&format!("{label}, this build"), &new_samples, expect_code);
    let old_row = row(&format!("{label}, baseline"), &old_samples, expect_code);
    table_row(&format!("{label}: ratio of medians"), [&format!("{:.2}", new_row / old_row), "", "", ""]);
}

/// Prints one table row for `samples` (all must have exited `expect_code`); returns the median in ms.
fn row(label: &str, samples: &[Sample], expect_code: i32) -> f64 {
    let bad = samples.iter().filter(|s| s.code != expect_code).count();
    assert_eq!(bad, 0, "{label}: {bad} runs did not exit {expect_code}");
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let cpu: Duration = samples.iter().map(|s| s.cpu).sum::<Duration>() / samples.len() as u32;
    let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    let median = percentile(&walls, 0.5);
    table_row(label, [&ms(median), &ms(percentile(&walls, 0.9)), &ms(cpu), &format!("{:.1}", rss as f64 / 1024.0)]);
    median.as_secs_f64() * 1000.0
}

/// One row of the tables: the label, then median, p90, CPU/run and RSS (or what stands in their place).
fn table_row(label: &str, [median, p90, cpu, rss]: [&str; 4]) {
    println!("| {label:<44} | {median:>8} | {p90:>8} | {cpu:>8} | {rss:>6} |");
}

fn header(title: &str) {
    println!("\n{title}\n");
    table_row("command (exit code)", ["median", "p90", "CPU/run", "RSS"]);
    table_row("", ["ms", "ms", "ms", "MiB"]);
    println!("|{}|{}|{}|{}|{}|", "-".repeat(46), "-".repeat(10), "-".repeat(10), "-".repeat(10), "-".repeat(8));
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// check-topology over 100 Redis groups x 3 nodes (all pointing at one real master, two replicas and
/// three Sentinels, as the same port on 127.0.0.2-4): the whole run, as a monitoring host runs it.
fn bench_topology(runs: usize) {
    let hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let lab = RedisLab::start_on(&hosts, Some(lab::free_port()), 3, &[]);
    let sentinels: Vec<String> = lab.sentinel_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let groups: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({"kind": "redis", "name": format!("g{i}"), "port": lab.master.port, "nodes": hosts,
                "sentinels": sentinels, "master_name": lab::redis_lab::MASTER_NAME, "max_lag": "10s"})
        })
        .collect();
    let inventory = lab.dir.join("inventory.json");
    std::fs::write(&inventory, serde_json::to_string(&groups).unwrap()).unwrap();
    let t = lab::bin(TOPOLOGY).display().to_string();
    header(&format!("check-topology: 100 Redis groups x 3 nodes (600 checks, 1800 Sentinel probes), {runs} runs"));
    bench("check-topology --inventory (100 groups) (0)", &s(&[&t, "--inventory", inventory.to_str().unwrap()]), runs, 0);
}

/// The baseline's executables (`BENCH_BASELINE`, set by `make bench`), if any.
fn baseline() -> Option<PathBuf> {
    std::env::var_os("BENCH_BASELINE").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// A Redis master + replica on loopback, and the Redis checks' paths and port arguments.
struct RedisSetup {
    lab: RedisLab,
    master: String,
    replica: String,
    check_master: String,
    check_slave: String,
}

fn redis_setup() -> RedisSetup {
    let lab = RedisLab::start(1, 0);
    RedisSetup {
        master: lab.master.port_arg(),
        replica: lab.replicas[0].port_arg(),
        check_master: lab::bin(REDIS_MASTER).display().to_string(),
        check_slave: lab::bin(REDIS_SLAVE).display().to_string(),
        lab,
    }
}

/// A MariaDB master + replica on loopback, the MySQL checks' paths and port arguments, and the
/// defaults file of the `checker` login.
struct MysqlSetup {
    lab: MariaLab,
    master: String,
    replica: String,
    check_master: String,
    check_slave: String,
    cnf: String,
}

fn mysql_setup() -> MysqlSetup {
    let lab = MariaLab::start(1);
    MysqlSetup {
        master: lab.master.port_arg(),
        replica: lab.replicas[0].port_arg(),
        check_master: lab::bin(MYSQL_MASTER).display().to_string(),
        check_slave: lab::bin(MYSQL_SLAVE).display().to_string(),
        cnf: lab.checker_cnf.display().to_string(),
        lab,
    }
}

/// Oracle MySQL 9 (in its chroot) next to MariaDB 10.11, both source + 2 replicas, the checks
/// logging in by the pinned key; says so and skips without the chroot (not root, or no `make deps`).
fn bench_mysql9(runs: usize) {
    let Ok(root) = lab::oracle_mysql::chroot_root() else {
        println!(
            "
No MySQL 9 chroot (run make deps as root): no MySQL 9 table."
        );
        return;
    };
    let (mm, ms) = (lab::bin(MYSQL_MASTER).display().to_string(), lab::bin(MYSQL_SLAVE).display().to_string());
    let mysql = lab::oracle_mysql::MysqlLab::start(&root, 2);
    let key = mysql.source.data_file("public_key.pem").display().to_string();
    let cnf = mysql.checker_cnf.display().to_string();
    let at = |n: &lab::oracle_mysql::MysqlNode| vec!["--host".to_string(), n.host.clone(), "--port".into(), n.port.to_string()];
    let args = |bin: &str, n: &lab::oracle_mysql::MysqlNode| {
        let mut a = vec![bin.to_string()];
        a.extend(at(n));
        a.extend(["--defaults-file".to_string(), cnf.clone(), "--server-public-key".into(), key.clone()]);
        a
    };
    header(&format!("Oracle MySQL 9 ({}) on loopback, source + 2 replicas, {runs} runs each", mysql.source.version()));
    bench("MySQL 9: check-mysql-master SOURCE (0)", &args(&mm, &mysql.source), runs, 0);
    bench("MySQL 9: check-mysql-slave REPLICA (0)", &args(&ms, &mysql.replicas[0]), runs, 0);
    bench("MySQL 9: check-mysql-slave SOURCE, probes 2 (2)", &args(&ms, &mysql.source), runs, 2);
    drop(mysql);
    let maria = MariaLab::start(2);
    let cnf = maria.checker_cnf.display().to_string();
    let (m, r) = (maria.master.port_arg(), maria.replicas[0].port_arg());
    bench("MariaDB 10.11: check-mysql-master MASTER (0)", &s(&[&mm, &m, "--defaults-file", &cnf]), runs, 0);
    bench("MariaDB 10.11: check-mysql-slave REPLICA (0)", &s(&[&ms, &r, "--defaults-file", &cnf]), runs, 0);
    bench("MariaDB 10.11: check-mysql-slave MASTER, probes 2 (2)", &s(&[&ms, &m, "--defaults-file", &cnf]), runs, 2);
}

/// serve-checks against a Redis master: one HTTP request (the check run as a process behind it)
/// next to running the check directly as a process and evaluating it in process (the other way
/// serve-checks could have been built), then requests per second from 4 concurrent clients, with
/// and without `--coalesce`.
fn bench_serve(runs: usize) {
    use consul_db_checks::deadline::Deadline;
    let lab = RedisLab::start(1, 0);
    let inventory = lab.dir.join("serve-inventory.json");
    let inv = serde_json::json!({"bin_dir": lab::bin(REDIS_MASTER).parent().unwrap(), "drain_dir": lab.dir.join("drain"),
        "groups": [{"kind": "redis", "name": "bench", "port": lab.master.port, "nodes": ["127.0.0.1"]}]});
    std::fs::write(&inventory, inv.to_string()).unwrap();
    let (services, _) = consul_db_checks::generator::node_services(&inventory, "127.0.0.1", None).unwrap();
    let write = services.iter().find(|s| s.id.starts_with("w-")).unwrap();
    header(&format!("serve-checks: the Redis master's write check, {runs} runs each (the Consul argv: {} arguments)", write.args.len()));
    bench("the check as a process (0)", &write.args, runs, 0);
    let timed = |label: &str, f: &mut dyn FnMut() -> bool| {
        let mut walls: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                assert!(f(), "{label}: unexpected answer");
                t.elapsed()
            })
            .collect();
        walls.sort();
        table_row(label, [&ms(walls[walls.len() / 2]), &ms(percentile(&walls, 0.9)), "", ""]);
    };
    let run = write.check.run.unwrap();
    timed("in process: the check's run (0)", &mut || run(&write.args, &Deadline::new(Duration::from_secs(3))).report.exit_code() == 0);
    let listen = format!("127.0.0.1:{}", lab::free_port());
    let serve = lab::http_lab::ServeChecks::start(&inventory, "127.0.0.1", &listen, &[]);
    let path = format!("/{}", write.id);
    timed("serve-checks: GET /w-... (200)", &mut || serve.get(&path).status == 200);
    let rate = |label: &str, addr: &str| {
        let until = Instant::now() + Duration::from_secs(3);
        let counts: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0;
                        while Instant::now() < until {
                            let r =
                                lab::http_lab::exchange(addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(), Duration::from_secs(5));
                            assert!(r.status == 200 || r.status == 503, "{r:?}");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: usize = counts.iter().sum();
        table_row(label, [&format!("{:.0}", total as f64 / 3.0), "req/s", "", ""]);
    };
    rate("serve-checks: 4 clients, 3 s", &serve.addr);
    drop(serve);
    let listen = format!("127.0.0.1:{}", lab::free_port());
    let coalesced = lab::http_lab::ServeChecks::start(&inventory, "127.0.0.1", &listen, &["--coalesce", "1s"]);
    rate("serve-checks --coalesce 1s: 4 clients, 3 s", &coalesced.addr);
    drop(lab);
}

/// This build against the baseline, run by run, on a Redis and a MariaDB master + replica.
fn bench_paired(baseline: &Path, runs: usize) {
    let RedisSetup { lab, master: m, replica: r, check_master: rm, check_slave: rs } = redis_setup();
    header(&format!("This build against the baseline ({}), alternating, {runs} runs each", baseline.display()));
    bench_pair("check-redis-master MASTER (0)", &s(&[&rm, &m]), baseline, runs, 0);
    bench_pair("check-redis-slave REPLICA (0)", &s(&[&rs, &r]), baseline, runs, 0);
    drop(lab);
    let MysqlSetup { lab, master: m, replica: r, check_master: mm, check_slave: ms, cnf } = mysql_setup();
    bench_pair("check-mysql-master MASTER (0)", &s(&[&mm, &m, "--defaults-file", &cnf]), baseline, runs, 0);
    bench_pair("check-mysql-slave REPLICA (0)", &s(&[&ms, &r, "--defaults-file", &cnf]), baseline, runs, 0);
    bench_pair("check-mysql-slave MASTER, probes 1 replica (2)", &s(&[&ms, &m, "--defaults-file", &cnf]), baseline, runs, 2);
    drop(lab);
}

/// What lag as evidence costs (issue 26): the Redis replica's check with and without
/// `--max-lag-bytes` (one more connection: its master), the MariaDB replica's with and without
/// `--heartbeat-table` (one more statement on the same connection), run alternately.
fn bench_lag(runs: usize) {
    let RedisSetup { lab, replica: r, check_slave: rs, .. } = redis_setup();
    header(&format!("Lag as evidence on loopback, {runs} runs each"));
    bench("check-redis-slave REPLICA (0)", &s(&[&rs, &r]), runs, 0);
    bench("check-redis-slave REPLICA --max-lag-bytes 1MB (0)", &s(&[&rs, &r, "--max-lag-bytes", "1MB"]), runs, 0);
    drop(lab);
    let MysqlSetup { lab, replica: r, check_slave: ms, cnf, .. } = mysql_setup();
    lab.master.sql(lab::mysql_lab::HEARTBEAT_EVENT_SQL);
    lab.replicas[0].wait_caught_up(&lab.master);
    bench("check-mysql-slave REPLICA (0)", &s(&[&ms, &r, "--defaults-file", &cnf]), runs, 0);
    let table = lab::mysql_lab::HEARTBEAT_TABLE;
    bench("check-mysql-slave REPLICA --heartbeat-table (0)", &s(&[&ms, &r, "--defaults-file", &cnf, "--heartbeat-table", table]), runs, 0);
    drop(lab);
}

/// The Galera checks (issue 28) on a three-node MariaDB 10.11 cluster: the writer asks nobody (the
/// members table says it joined first), a younger member asks the older ones, a member's read check
/// asks every other member; and the same without the members table (the monitor `blind`).
fn bench_galera(runs: usize) {
    let Some(lab) = lab::galera_lab::GaleraLab::start_or_skip(3, "bench") else {
        println!("\nGalera needs root (the nodes run as the mysql user): no Galera table.");
        return;
    };
    let cnf = lab.checker_cnf.display().to_string();
    let blind = lab.dir.file("blind.cnf", "[client]\nuser=blind\npassword=blind-pw\n", 0o600).display().to_string();
    let (mm, ms) = (lab::bin(MYSQL_MASTER).display().to_string(), lab::bin(MYSQL_SLAVE).display().to_string());
    let on = |n: usize, check: &str, cnf: &str| -> Vec<String> {
        [vec![check.to_string()], lab.nodes[n].target_args(), vec!["--defaults-file".into(), cnf.to_string()]].concat()
    };
    header(&format!("MariaDB 10.11 Galera on loopback, three nodes, {runs} runs each"));
    bench("check-mysql-master WRITER (0)", &on(0, &mm, &cnf), runs, 0);
    bench("check-mysql-master YOUNGEST MEMBER, asks 2 (2)", &on(2, &mm, &cnf), runs, 2);
    bench("check-mysql-slave MEMBER, asks 2 (0)", &on(1, &ms, &cnf), runs, 0);
    bench("check-mysql-master WRITER, no members table, asks 2 (0)", &on(0, &mm, &blind), runs, 0);
    bench(
        "floor: mariadb -e 'select 1'",
        &s(&[
            "mariadb",
            &format!("--defaults-file={cnf}"),
            "-h",
            &lab.nodes[0].host,
            "-P",
            &lab.nodes[0].port.to_string(),
            "-e",
            "select 1",
        ]),
        runs,
        0,
    );
}

/// The Group Replication checks (issue 29) on three MySQL 9.7 members: the primary's write check
/// asks the two others to confirm it; a secondary's checks read its own view only.
fn bench_group(runs: usize) {
    let Ok(root) = lab::oracle_mysql::chroot_root() else {
        println!("\nNo MySQL 9 chroot (run make deps as root): no Group Replication table.");
        return;
    };
    let lab = lab::oracle_mysql::GroupLab::start(&root, 3);
    let (mm, ms) = (lab::bin(MYSQL_MASTER).display().to_string(), lab::bin(MYSQL_SLAVE).display().to_string());
    let on = |check: &str, i: usize| [vec![check.to_string()], lab.check_args(&lab.members[i])].concat();
    header(&format!("MySQL 9.7 Group Replication on loopback, three members, {runs} runs each"));
    bench("check-mysql-master PRIMARY, asks 2 to confirm (0)", &on(&mm, 0), runs, 0);
    bench("check-mysql-master SECONDARY (2)", &on(&mm, 1), runs, 2);
    bench("check-mysql-slave SECONDARY (0)", &on(&ms, 1), runs, 0);
    bench("check-mysql-slave PRIMARY (2)", &on(&ms, 0), runs, 2);
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("topology") => return bench_topology(runs.min(20)),
        Ok("paired") => return bench_paired(&baseline().expect("BENCH_ONLY=paired needs BENCH_BASELINE"), runs),
        Ok("mysql9") => return bench_mysql9(runs),
        Ok("serve") => return bench_serve(runs),
        Ok("lag") => return bench_lag(runs),
        Ok("galera") => return bench_galera(runs),
        Ok("group") => return bench_group(runs),
        _ => {}
    }
    let RedisSetup { lab, master: m, replica: r, check_master: rm, check_slave: rs } = redis_setup();
    let originals = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/original");
    let script = |name: &str| originals.join(name).display().to_string();

    header(&format!("Redis 7 on loopback, master + 1 replica, {runs} runs each"));
    bench("check-redis-master MASTER (0)", &s(&[&rm, &m]), runs, 0);
    bench("check-redis-slave REPLICA (0)", &s(&[&rs, &r]), runs, 0);
    bench("check-redis-slave MASTER (2)", &s(&[&rs, &m]), runs, 2);
    bench("check-redis-master REPLICA --format json (2)", &s(&[&rm, &r, "--format", "json"]), runs, 2);
    bench("floor: redis-cli -p REPLICA info replication", &s(&["redis-cli", "-p", &r, "info", "replication"]), runs, 0);
    bench("original: check_redis_master.sh MASTER", &s(&["bash", &script("check_redis_master.sh"), &m]), runs / 3, 0);
    bench("original: check_redis_slave.sh REPLICA", &s(&["bash", &script("check_redis_slave.sh"), &r]), runs / 3, 0);
    drop(lab);

    let MysqlSetup { lab, master: m, replica: r, check_master: mm, check_slave: ms, cnf } = mysql_setup();
    let creds =
        [("BENCH_MYSQL_USER", CHECKER.0.to_string()), ("BENCH_MYSQL_PASSWORD", CHECKER.1.to_string()), ("BENCH_REPLICA_PORT", r.clone())];
    header(&format!("MariaDB 10.11 on loopback, master + 1 replica, {runs} runs each"));
    bench("check-mysql-master MASTER (0)", &s(&[&mm, &m, "--defaults-file", &cnf]), runs, 0);
    bench("check-mysql-slave REPLICA (0)", &s(&[&ms, &r, "--defaults-file", &cnf]), runs, 0);
    bench("check-mysql-slave MASTER, probes 1 replica (2)", &s(&[&ms, &m, "--defaults-file", &cnf]), runs, 2);
    bench("check-mysql-master REPLICA (2)", &s(&[&mm, &r, "--defaults-file", &cnf]), runs, 2);
    bench(
        "floor: mariadb -e 'select 1'",
        &s(&["mariadb", &format!("--defaults-file={cnf}"), "-h127.0.0.1", "-P", &m, "-e", "select 1"]),
        runs,
        0,
    );
    bench_env("original: check_mysql_master.sh MASTER", &s(&["bash", &script("check_mysql_master.sh"), &m]), &creds, runs / 3, 0);
    bench_env("original: check_mysql_slave.sh REPLICA", &s(&["bash", &script("check_mysql_slave.sh"), &r]), &creds, runs / 3, 0);
    bench_env("original: check_mysql_slave.sh MASTER", &s(&["bash", &script("check_mysql_slave.sh"), &m]), &creds, runs / 3, 2);
    drop(lab);
    bench_mysql9(runs);
    bench_topology(20);
    bench_serve(runs);
    bench_lag(runs);
    bench_galera(runs);
    bench_group(runs);
    match baseline() {
        Some(dir) => bench_paired(&dir, runs),
        None => println!("\nNo baseline (BENCH_BASELINE): no paired table."),
    }
    println!();
}
