//! check-topology against real servers: a healthy lab, an unreachable node, a Redis split brain
//! (an old master back without the Sentinel guard configured), two writable MariaDB masters, and a
//! group with no write member.

use lab::consul_lab::{ConsulLab, MYSQL_HOSTS, REDIS_HOSTS};
use lab::redis_lab::redis_cmd_at;
use lab::*;
use serde_json::Value;

const T: &str = TOPOLOGY;

/// The group of `kind` in the topology's facts.
fn group<'a>(out: &'a CheckOutput, kind: &str) -> &'a Value {
    out.fact("groups").as_array().unwrap().iter().find(|g| g["group"].as_str().unwrap().starts_with(kind)).unwrap()
}

fn members(g: &Value, pool: &str) -> Vec<String> {
    g[pool].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn whole_groups_as_consul_dns_sees_them() {
    let lab = ConsulLab::start();
    let inv = lab.inventory.display().to_string();

    // Healthy: one writer and readers in each group.
    let out = check(T, ["--inventory", &inv]);
    assert_eq!(out.status(), "passing", "{out}");
    assert!(out.run.max_rss_kib < 64 << 10, "peak RSS {} KiB", out.run.max_rss_kib);
    assert_eq!(members(group(&out, "redis"), "write"), [REDIS_HOSTS[0]]);
    assert_eq!(members(group(&out, "redis"), "read"), [REDIS_HOSTS[1], REDIS_HOSTS[2]]);
    assert_eq!(members(group(&out, "mysql"), "write"), [MYSQL_HOSTS[0]]);
    let text = run(T, ["--inventory", &inv]);
    assert!(
        text.stdout.starts_with("TOPOLOGY OK: 2 group(s): one writer and readers each | groups=2 critical_groups=0"),
        "{}",
        text.stdout
    );
    // The text view: one line per node, where Consul answers with it and why (as patronictl list).
    let redis_port = lab.redis.master.port.to_string();
    let node_lines: Vec<&str> = text.stdout.lines().filter(|l| l.starts_with("redis lab:") || l.starts_with("mysql ")).collect();
    assert_eq!(node_lines.len(), REDIS_HOSTS.len() + MYSQL_HOSTS.len(), "{}", text.stdout);
    text.prints(&format!("redis lab:{redis_port} {}: write: REDIS-MASTER OK", REDIS_HOSTS[0]))
        .prints(&format!("redis lab:{redis_port} {}: read: REDIS-SLAVE OK", REDIS_HOSTS[1]));
    // --group selects; an unknown group is a usage error naming it.
    assert_eq!(check(T, ["--inventory", &inv, "--group", "lab"]).fact("groups").as_array().unwrap().len(), 2);
    let bad = check(T, ["--inventory", &inv, "--group", "nope"]);
    assert!(bad.code() == 2 && bad.summary().contains("no group named nope"), "{bad}");

    // The operator drains the Redis master's write service: the group has no write member, and
    // the topology says who was drained; the master's own check says so too. Back when removed.
    let drain = lab.drain_file(REDIS_HOSTS[0], &format!("w-{redis_port}-redis-lab"));
    std::fs::create_dir_all(drain.parent().unwrap()).unwrap();
    std::fs::write(&drain, "").unwrap();
    let out = check(T, ["--inventory", &inv]);
    out.code_is(2).summary_has("redis lab:").summary_has("no write member");
    let want = format!("redis lab:{redis_port}: drained by the operator: {} (write)", REDIS_HOSTS[0]);
    assert!(out.reasons().contains(&want.as_str()), "{out}");
    let node = group(&out, "redis")["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["node"] == REDIS_HOSTS[0] && c["service"] == "write")
        .unwrap()
        .clone();
    assert_eq!(node["drained"], true, "{out}");
    assert!(node["line"].as_str().unwrap().contains(&format!("drained by the operator ({})", drain.display())), "{out}");
    std::fs::remove_file(&drain).unwrap();
    check(T, ["--inventory", &inv]).code_is(0);

    // A replica down: still one writer and a reader, but a warning naming the node.
    let mut lab = lab;
    lab.redis.replicas[1].proc.kill();
    let out = check(T, ["--inventory", &inv]);
    assert_eq!(out.status(), "warning", "{out}");
    assert!(out.summary().contains(&format!("unreachable: {}", REDIS_HOSTS[2])), "{out}");

    // A replica turned master. With the Sentinel guard in the inventory it stays out of the write
    // pool; an inventory without the guard sees two writers: the split brain, naming both.
    redis_cmd_at(REDIS_HOSTS[1], lab.redis.master.port, &["REPLICAOF", "NO", "ONE"]).unwrap();
    let guarded = check(T, ["--inventory", &inv]);
    assert_eq!(members(group(&guarded, "redis"), "write"), [REDIS_HOSTS[0]], "{guarded}");
    // That node serves neither pool: the group lost redundancy, named with why (never TOPOLOGY OK).
    guarded.code_is(1).reason_has(&format!("in no pool (lost redundancy): {}: REDIS-SLAVE CRITICAL", REDIS_HOSTS[1]));
    let unguarded_inv = lab.mysql_dir.join("unguarded.json");
    let text = std::fs::read_to_string(&lab.inventory).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["groups"][0].as_object_mut().unwrap().remove("sentinels");
    v["groups"][0].as_object_mut().unwrap().remove("master_name");
    std::fs::write(&unguarded_inv, v.to_string()).unwrap();
    let out = check(T, ["--inventory", unguarded_inv.to_str().unwrap()]);
    out.code_is(2);
    assert_eq!(
        out.summary(),
        format!("redis lab:{redis_port}: 2 write members ({}, {}): split brain", REDIS_HOSTS[0], REDIS_HOSTS[1]),
        "{out}"
    );

    // MariaDB: the replica detached and made writable while the master still runs: two writers.
    lab.mysql[1].sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0");
    let out = check(T, ["--inventory", &inv]);
    out.code_is(2);
    assert!(out.reason_contains(&format!("2 write members ({}, {}): split brain", MYSQL_HOSTS[0], MYSQL_HOSTS[1])), "{out}");

    // No write member: the master gone, the other read-only.
    lab.mysql[0].proc.kill();
    lab.mysql[1].sql("SET GLOBAL read_only=1");
    let out = check(T, ["--inventory", &inv]);
    out.code_is(2).reason_has("no write member");
    assert!(out.run.elapsed.as_secs_f64() < 5.25, "{:?}", out.run.elapsed);
}
