//! `make demo`: the end-to-end lab, run for a person.
//!
//! As root: three Redis hosts in network namespaces (198.18.0.11-13, Redis 6029 and a Sentinel
//! 26379 on each) with keepalived running the generated configuration, a client writing through
//! the VIP; the master is killed, Sentinel fails over, the VIP follows, the old master comes back
//! and stays out; then a MariaDB pair whose replica is promoted by hand. It shows where the VIP is,
//! what Consul DNS answers, the write outage and the lost writes.
//!
//! Otherwise (no namespaces): Redis (master, two replicas, three Sentinels) and MariaDB (master,
//! replica) on 127.0.0.2-6, what Consul DNS would answer for each name and why, through the same
//! changes. Everything is cleaned up, also on Ctrl-C.

use lab::consul_lab::{ConsulLab, REDIS_HOSTS};
use lab::pools::Answers;
use lab::vip_lab::{MariaVipLab, RedisVipLab, Timings, MYSQL_VIP, VIP};
use lab::writer::Outcome;
use lab::TOPOLOGY;
use std::time::{Duration, Instant};

fn step(start: Instant, text: &str) {
    println!("\n[{:>4.1}s] {text}", start.elapsed().as_secs_f64());
}

/// Blocks SIGINT/SIGTERM in every thread and handles them in one: remove this process's lab
/// directories and exit (the servers die with the process: they are tied to it).
fn clean_up_on_interrupt() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            println!("\ninterrupted: stopping the servers and removing the lab");
            lab::netlab::remove_all();
            remove_lab_dirs();
            std::process::exit(130);
        });
    }
}

fn remove_lab_dirs() {
    let pid = std::process::id();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("cdc-test-{pid}-")) || name == format!("cdc-mariadb-template-{pid}") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Evaluates until `ok` holds or ten seconds pass, and returns the answers either way.
fn settle(lab: &ConsulLab, ok: impl Fn(&Answers) -> bool) -> Answers {
    lab.settle(ok).unwrap_or_else(|last| last)
}

fn main() {
    clean_up_on_interrupt();
    let start = Instant::now();
    println!("consul-db-checks demo: where writes and reads go, and why, while the topology changes.");
    if std::env::var_os("CDC_DEMO_LOOPBACK").is_some() {
        println!("  CDC_DEMO_LOOPBACK is set: the loopback lab");
        loopback_demo(start);
        remove_lab_dirs();
        return;
    }
    step(start, "Starting three Redis hosts in network namespaces (198.18.0.11-13: Redis 6029, Sentinel 26379, keepalived) ...");
    match RedisVipLab::start(Timings { down_after: Duration::from_secs(5), min_replicas_max_lag: None }) {
        Ok(lab) => namespace_demo(start, lab),
        Err(why) => {
            println!("  network namespaces are not available here ({why}): running the loopback lab instead");
            loopback_demo(start);
        }
    }
    remove_lab_dirs();
    println!("done in {:.1}s", start.elapsed().as_secs_f64());
}

/// Prints each host's checks as Consul records them, and what DNS answers per name.
fn show(answers: &Answers) {
    print!("{}", answers.describe());
}

fn namespace_demo(start: Instant, mut lab: RedisVipLab) {
    println!("  keepalived on each host runs what `gen-consul-services --format keepalived` wrote, e.g. on h1:");
    let conf = lab.keepalived_conf("h1");
    for line in
        conf.lines().filter(|l| l.contains("script \"") && l.contains("master") || l.contains("advert_int") || l.contains("fall")).take(3)
    {
        println!("    {}", line.trim());
    }
    println!("  VIP {VIP} is on: {}", lab.vip_holders().join(", "));
    show(&lab.consul.answers());

    step(start, "A client in its own namespace writes a key through the VIP every 10 ms. Killing the Redis master on h1 (kill -9) ...");
    let writer = lab.writer("c1", "demo");
    std::thread::sleep(Duration::from_secs(1));
    let watch = lab.watch_promotion();
    let fault = lab.now();
    lab.nodes[0].proc.kill();
    let Some((new_master, promotion)) = watch.join().unwrap() else {
        println!("  Sentinel promoted no replica within 60 s");
        return;
    };
    println!("  Sentinel promoted {new_master} {:.1}s after the kill (down-after 5s)", (promotion - fault).as_secs_f64());
    let moved = lab.wait_vip_on(&new_master, Duration::from_secs(30));
    println!("  the VIP moved to {new_master} {:.1}s after the kill", (moved - fault).as_secs_f64());
    std::thread::sleep(Duration::from_secs(1));
    show(&lab.consul.answers());

    step(start, "The old master restarts as a master with an empty dataset (no replicaof): the Sentinel guard keeps it out ...");
    lab.nodes[0].restart_as_master();
    std::thread::sleep(Duration::from_secs(2));
    let checks = lab.consul.answers();
    for c in checks.results.iter().filter(|c| c.node == "h1") {
        println!("      h1  {:<20} {}", c.service, c.first_line);
    }
    println!("  VIP {VIP} is on: {}", lab.vip_holders().join(", "));
    let writes = writer.finish();
    let o = Outcome::of(&lab, &[&writes], fault, promotion, &new_master);
    println!(
        "  the client: {} writes acknowledged; write outage {}; acknowledged writes lost: {}; acknowledged by a node after the promotion: {}",
        o.acked,
        o.write_outage.map(|d| format!("{:.1}s", d.as_secs_f64())).unwrap_or_else(|| "none".into()),
        o.lost_before_promotion,
        o.split_brain_writes,
    );
    drop(lab);

    step(start, "A MariaDB pair on two more hosts (198.18.0.31-32, port 3306), keepalived floating 198.18.0.101 ...");
    let mut maria = match MariaVipLab::start() {
        Ok(m) => m,
        Err(why) => {
            println!("  cannot start it: {why}");
            return;
        }
    };
    println!("  VIP {MYSQL_VIP} is on: {}", maria.net.holders(MYSQL_VIP).join(", "));
    step(start, "Killing the master m1, promoting m2 by hand (STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0) ...");
    let t = Instant::now();
    maria.nodes[0].proc.kill();
    maria.nodes[1].wait_status("", "Slave_IO_Running", |v| v != Some("Yes"));
    maria.nodes[1].sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    lab::wait_for("the VIP on m2", Duration::from_secs(20), || (maria.net.holders(MYSQL_VIP) == ["m2"]).then_some(()));
    println!("  the VIP moved to m2 {:.1}s after the kill", t.elapsed().as_secs_f64());
    step(start, "m1 comes back with read_only=ON: it stays out of the write pool and the VIP stays on m2:");
    maria.nodes[0].restart_with(&["--read-only"]);
    std::thread::sleep(Duration::from_secs(1));
    show(&maria.consul.answers());
    println!("  VIP {MYSQL_VIP} is on: {}", maria.net.holders(MYSQL_VIP).join(", "));
    step(start, "Stopping every server and keepalived, removing the namespaces ...");
}

/// Prints what `check-topology` sees for the inventory: per group, who Consul DNS answers with for
/// the write and read names, each node's check line, and its own verdict.
fn show_topology(inventory: &std::path::Path) {
    let r = lab::run(TOPOLOGY, ["--inventory", inventory.to_str().unwrap(), "--format", "json"]);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.stdout) else {
        println!("  check-topology: {}", r.stdout.trim());
        return;
    };
    for g in v["facts"]["groups"].as_array().into_iter().flatten() {
        let names =
            |pool: &str| g[pool].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        println!("  {}: write -> {}   read -> {}", g["group"].as_str().unwrap_or("?"), names("write"), names("read"));
        for c in g["checks"].as_array().into_iter().flatten() {
            let line = c["line"].as_str().unwrap_or("");
            println!(
                "      {:<9} {:<5} {:<9} {}",
                c["node"].as_str().unwrap_or(""),
                c["service"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                line
            );
        }
    }
    println!("  check-topology: {} {}", v["status"].as_str().unwrap_or("?"), v["summary"].as_str().unwrap_or(""));
}

fn loopback_demo(start: Instant) {
    step(start, "Starting Redis 127.0.0.2 (master), .3 and .4 (replicas), 3 Sentinels; MariaDB 127.0.0.5 (master), .6 (replica) ...");
    let mut lab = ConsulLab::start();
    step(start, "gen-consul-services writes one service file per service and node, e.g.:");
    let (code, _) = lab.generate(&lab.out.0, &[]);
    assert_eq!(code, Some(0), "gen-consul-services failed");
    let example = lab.out.0.join(REDIS_HOSTS[0]).join(format!("{}.json", lab.redis_service("w")));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    let args: Vec<&str> = v["service"]["checks"][0]["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    println!("  {}/{}:", REDIS_HOSTS[0], example.file_name().unwrap().to_string_lossy());
    println!("    \"args\": {}", args.join(" "));

    let rr = lab.redis_service("r");
    let (mw, mr) = (lab.mysql_service("w"), lab.mysql_service("r"));
    step(start, "Consul runs every check; DNS answers with the instances that are not critical (as check-topology shows):");
    settle(&lab, |a| a.dns(&rr).len() == 2 && a.dns(&mr).len() == 1);
    show_topology(&lab.inventory);

    step(start, "Killing the Redis master (kill -9). Sentinel notices after 2s and promotes a replica ...");
    let old = lab.redis.master.addr();
    lab.redis.master.proc.kill();
    let new_master = lab.redis.wait_new_master(&old);
    println!("  all 3 Sentinels now name {new_master} master");
    settle(&lab, |a| lab.redis_follows_sentinel(a, &REDIS_HOSTS[1..]).is_some());
    show_topology(&lab.inventory);

    step(start, "The old Redis master restarts as a master (no replicaof): the Sentinel guard keeps it out of the write pool:");
    lab.redis.master.restart_as_master();
    show_topology(&lab.inventory);

    step(start, "MariaDB: killing the master, then promoting the replica (STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0) ...");
    lab.mysql[0].proc.kill();
    lab.mysql[1].wait_status("", "Slave_IO_Running", |v| v != Some("Yes"));
    lab.mysql[1].sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    settle(&lab, |a| a.dns(&mw).len() == 1 && a.dns(&mr).len() == 1);
    show_topology(&lab.inventory);

    step(start, "Stopping every server and removing the lab ...");
    drop(lab);
}
