//! `make demo`: the end-to-end lab, run for a person. Starts Redis (master, two replicas, three
//! Sentinels) and MariaDB (master, replica) on 127.0.0.2-6, generates the Consul service files, shows
//! what Consul DNS would answer for each name and why, fails Redis over with Sentinel, promotes a
//! MariaDB replica, and cleans everything up (also on Ctrl-C).

use lab::consul_lab::{ConsulLab, REDIS_HOSTS};
use std::time::Instant;

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
fn settle(lab: &ConsulLab, ok: impl Fn(&lab::consul_lab::Answers) -> bool) -> lab::consul_lab::Answers {
    lab.settle(ok).unwrap_or_else(|last| last)
}

fn main() {
    clean_up_on_interrupt();
    let start = Instant::now();
    println!("consul-db-checks demo: what Consul DNS answers for each service, and why, while the topology changes.");
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

    let (rw, rr) = (lab.redis_service("w"), lab.redis_service("r"));
    let (mw, mr) = (lab.mysql_service("w"), lab.mysql_service("r"));
    step(start, "Consul runs every check; DNS answers with the instances that are not critical:");
    let a = settle(&lab, |a| a.dns(&rr).len() == 2 && a.dns(&mr).len() == 1);
    print!("{}", ConsulLab::describe(&a));

    step(start, "Killing the Redis master (kill -9). Sentinel notices after 2s and promotes a replica ...");
    let old = lab.redis.master.addr();
    lab.redis.master.proc.kill();
    let new_master = lab.redis.wait_new_master(&old);
    println!("  all 3 Sentinels now name {new_master} master");
    let a = settle(&lab, |a| lab.redis_follows_sentinel(a, &REDIS_HOSTS[1..]).is_some());
    print!("{}", ConsulLab::describe(&a));

    step(start, "The old Redis master restarts as a master (no replicaof): the Sentinel guard keeps it out of the write pool:");
    lab.redis.master.restart_as_master();
    let a = lab.evaluate();
    for r in a.results.iter().filter(|r| r.service == rw) {
        println!("      {:<9} {:<10} {}", r.node, r.status, r.first_line);
    }
    println!("  {rw}.service.consul -> {}", a.dns(&rw).join(", "));

    step(start, "MariaDB: killing the master, then promoting the replica (STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0) ...");
    lab.mysql[0].proc.kill();
    lab.mysql[1].wait_status("", "Slave_IO_Running", |v| v != Some("Yes"));
    lab.mysql[1].sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    let a = settle(&lab, |a| a.dns(&mw).len() == 1 && a.dns(&mr).len() == 1);
    print!("{}", ConsulLab::describe(&a));

    step(start, "Stopping every server and removing the lab ...");
    drop(lab);
    remove_lab_dirs();
    println!("done in {:.1}s", start.elapsed().as_secs_f64());
}
