//! HAProxy in the namespace lab: `serve-checks` on every Redis host (in its namespace, as the
//! unprivileged script user), and HAProxy in each client's namespace with the configuration
//! `gen-consul-services --format haproxy` wrote (frontends on every address: the client's own).

use crate::netlab::{ns_command, start_proc, Host, NetLab};
use crate::pools::{Answers, CheckResult};
use crate::vip_lab::{drain_dir, install_checks, MariaVipLab, RedisVipLab, REDIS_PORT, SCRIPT_USER};
use crate::writer::Writer;
use crate::{wait_for, Proc};
use crate::{GENERATOR, SERVE_CHECKS};
use consul_db_checks::report::Status;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The port serve-checks listens on at every host (the inventory's `serve_port`).
pub const SERVE_PORT: u16 = 9200;

/// HAProxy and the serve-checks behind it (stopped when dropped, before the lab).
pub struct HaproxyLab {
    /// HAProxy, one per client namespace.
    pub haproxy: Vec<Proc>,
    /// serve-checks on h1, h2, h3.
    pub serve: Vec<Proc>,
    /// The generated configuration.
    pub config: String,
    /// Per client (`c1`), its HAProxy's write frontend: the client's address and the Redis port.
    pub write_frontends: Vec<(String, (String, u16))>,
    /// The directory of HAProxy's log.
    pub dir: PathBuf,
    /// Each host's Consul HTTP checks (`--check-type http`): host, service, URL, Consul timeout.
    pub http_checks: Vec<(Host, String, String, Duration)>,
}

impl HaproxyLab {
    /// Starts serve-checks on every Redis host and HAProxy in each of `clients`, and waits until
    /// every HAProxy's write frontend reaches the master (at most 20 s).
    pub fn start(lab: &RedisVipLab, clients: &[&str]) -> HaproxyLab {
        let groups: serde_json::Value = serde_json::from_str(&lab.inventory(&lab.net.dir.join("secrets/redis.pw"))).unwrap();
        let hosts: Vec<Host> = lab.nodes.iter().map(|n| n.host.clone()).collect();
        let ready = |t: (String, u16)| {
            let mut c = crate::writer::app_connection(&t)?;
            redis::cmd("SET").arg("haproxy-probe").arg("1").query::<()>(&mut c).ok()
        };
        HaproxyLab::start_for(&lab.net, &hosts, groups.as_array().unwrap().clone(), clients, REDIS_PORT, ready)
    }

    /// The same for the MariaDB lab's hosts; `ready` says when a frontend reaches the master.
    pub fn start_mysql(lab: &MariaVipLab, clients: &[&str], ready: fn((String, u16)) -> Option<()>) -> HaproxyLab {
        let hosts: Vec<Host> = ["m1", "m2"].iter().map(|h| lab.net.host(h).clone()).collect();
        let groups: serde_json::Value = serde_json::from_str(&lab.inventory).unwrap();
        HaproxyLab::start_for(&lab.net, &hosts, groups.as_array().unwrap().clone(), clients, 3306, ready)
    }

    /// The same for the Galera lab's hosts.
    pub fn start_galera(lab: &crate::galera_lab::GaleraVipLab, clients: &[&str]) -> HaproxyLab {
        let hosts: Vec<Host> = ["g1", "g2", "g3"].iter().map(|h| lab.net.host(h).clone()).collect();
        let groups: serde_json::Value = serde_json::from_str(&lab.inventory).unwrap();
        HaproxyLab::start_for(&lab.net, &hosts, groups.as_array().unwrap().clone(), clients, 3306, crate::galera_lab::app_reaches)
    }

    /// serve-checks on `hosts` for the inventory `groups` (one group, on `port`), HAProxy in each
    /// of `clients`, each frontend waited for with `ready` (run in the client's namespace).
    fn start_for(
        net: &NetLab,
        hosts: &[Host],
        mut groups: Vec<serde_json::Value>,
        clients: &[&str],
        port: u16,
        ready: impl Fn((String, u16)) -> Option<()> + Copy + Send + 'static,
    ) -> HaproxyLab {
        install_checks(net, &[SERVE_CHECKS]);
        let dir = net.dir.join("haproxy");
        std::fs::create_dir_all(&dir).unwrap();
        // Consul's timing of the lab (every 2 s, 1 s timeout): what serve-checks runs.
        groups[0]["interval"] = "2s".into();
        groups[0]["timeout"] = "1s".into();
        let inventory_of = |host: Option<&Host>| {
            let mut inv = serde_json::json!({"bin_dir": net.dir.join("bin"), "serve_port": SERVE_PORT, "groups": groups});
            if let Some(h) = host {
                inv["drain_dir"] = serde_json::json!(drain_dir(net, &h.name));
            }
            inv.to_string()
        };
        let mut serve = Vec::new();
        for h in hosts {
            let inventory = dir.join(format!("inventory-{}.json", h.name));
            std::fs::write(&inventory, inventory_of(Some(h))).unwrap();
            let mut cmd = ns_command(&h.ns, "setpriv");
            cmd.args(["--reuid", SCRIPT_USER, "--regid", "nogroup", "--clear-groups", "--"]);
            cmd.arg(net.dir.join("bin/serve-checks")).args(["--inventory", inventory.to_str().unwrap(), "--node", &h.addr]);
            cmd.stdout(Stdio::null()).stderr(std::fs::File::create(dir.join(format!("serve-{}.log", h.name))).unwrap());
            serve.push(start_proc(&format!("serve-checks {}", h.name), &mut cmd));
        }
        // The Consul side: each host's service files with HTTP checks against its serve-checks.
        let mut http_checks = Vec::new();
        for h in hosts {
            let out = dir.join("consul-http").join(&h.name);
            let inventory = dir.join(format!("inventory-{}.json", h.name));
            let args =
                ["--inventory", inventory.to_str().unwrap(), "--node", &h.addr, "--check-type", "http", "--out", out.to_str().unwrap()];
            let gen = crate::run(GENERATOR, args);
            assert_eq!(gen.code, Some(0), "gen-consul-services --check-type http: {}{}", gen.stdout, gen.stderr);
            for v in crate::pools::service_files(&out) {
                let check = &v["service"]["checks"][0];
                assert!(check.get("args").is_none(), "{check}");
                let timeout = consul_db_checks::duration::parse_duration(check["timeout"].as_str().unwrap()).unwrap();
                http_checks.push((
                    h.clone(),
                    v["service"]["name"].as_str().unwrap().to_string(),
                    check["http"].as_str().unwrap().to_string(),
                    timeout,
                ));
            }
        }
        let inventory = dir.join("inventory.json");
        std::fs::write(&inventory, inventory_of(None)).unwrap();
        let gen =
            crate::run(GENERATOR, ["--inventory", inventory.to_str().unwrap(), "--format", "haproxy", "--out", dir.to_str().unwrap()]);
        assert_eq!(gen.code, Some(0), "gen-consul-services --format haproxy: {}{}", gen.stdout, gen.stderr);
        let cfg = dir.join("haproxy.cfg");
        let config = std::fs::read_to_string(&cfg).unwrap();
        let mut haproxy = Vec::new();
        let mut write_frontends = Vec::new();
        for client in clients {
            let c = net.host(client).clone();
            let mut cmd = ns_command(&c.ns, "haproxy");
            cmd.arg("-db").arg("-f").arg(&cfg);
            cmd.stdout(Stdio::null()).stderr(std::fs::File::create(dir.join(format!("haproxy-{client}.log"))).unwrap());
            haproxy.push(start_proc(&format!("haproxy {client}"), &mut cmd));
            let target = (c.addr.clone(), port);
            let ns = c.ns.clone();
            wait_for(&format!("HAProxy's write frontend in {client} reaching the master"), Duration::from_secs(20), || {
                let t = target.clone();
                crate::netlab::in_namespace(&ns, move || ready(t))
            });
            write_frontends.push((client.to_string(), target));
        }
        HaproxyLab { haproxy, serve, config, write_frontends, dir, http_checks }
    }

    /// The write frontend of the HAProxy in `client`.
    pub fn write_frontend(&self, client: &str) -> (String, u16) {
        self.write_frontends.iter().find(|(c, _)| c == client).map(|(_, t)| t.clone()).unwrap_or_else(|| panic!("no HAProxy in {client}"))
    }

    /// Runs every host's Consul HTTP check once, as its agent would (a GET from the host's own
    /// namespace, Consul's timeout): per service, the hosts not critical (200 or 429).
    pub fn consul_http_answers(&self) -> Answers {
        let results = self
            .http_checks
            .iter()
            .map(|(host, service, url, timeout)| {
                let (url, timeout) = (url.clone(), *timeout);
                let answer = crate::netlab::in_namespace(&host.ns, move || {
                    let rest = url.strip_prefix("http://").unwrap();
                    let (addr, path) = rest.split_at(rest.find('/').unwrap());
                    crate::http_lab::exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(), timeout)
                });
                CheckResult {
                    service: service.clone(),
                    node: host.name.clone(),
                    status: Status::of_http_status(answer.status),
                    first_line: answer.body.lines().next().unwrap_or("(no body)").to_string(),
                }
            })
            .collect();
        Answers { results }
    }

    /// What the HAProxies logged (their stderr), for failure messages.
    pub fn log(&self) -> String {
        self.write_frontends
            .iter()
            .map(|(c, _)| {
                format!("haproxy {c}:\n{}", std::fs::read_to_string(self.dir.join(format!("haproxy-{c}.log"))).unwrap_or_default())
            })
            .collect()
    }
}

/// The application login the MySQL writer uses (created by [`create_app_user`]).
pub const APP_USER: (&str, &str) = ("app", "app-pw");

/// Creates the writer's table and login on `master` (replicated to its replica): INSERT and
/// SELECT only, so a `read_only` server refuses its writes.
pub fn create_app_user(master: &crate::mysql_lab::MariaNode) {
    master.sql(&format!(
        "CREATE DATABASE app; CREATE TABLE app.w (k VARCHAR(64) PRIMARY KEY); \
         CREATE USER '{u}'@'%' IDENTIFIED BY '{p}'; GRANT INSERT, SELECT ON app.* TO '{u}'@'%'",
        u = APP_USER.0,
        p = APP_USER.1
    ));
}

/// A MySQL connection as the application through `target`, and the lab host it reached (by
/// `server_id`: 1 is m1, 2 is m2).
fn app_connection(target: &(String, u16)) -> Option<(mysql::Conn, String)> {
    use mysql::prelude::Queryable;
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(target.0.clone()))
        .tcp_port(target.1)
        .prefer_socket(false)
        .user(Some(APP_USER.0))
        .pass(Some(APP_USER.1))
        .tcp_connect_timeout(Some(Duration::from_millis(300)))
        .read_timeout(Some(Duration::from_millis(300)))
        .write_timeout(Some(Duration::from_millis(300)));
    let mut conn = mysql::Conn::new(opts).ok()?;
    let id: u32 = conn.query_first("SELECT @@server_id").ok()??;
    Some((conn, format!("m{id}")))
}

/// Whether the application reaches a server through `target` (HAProxy's readiness probe).
pub fn app_reaches(target: (String, u16)) -> Option<()> {
    app_connection(&target).map(|_| ())
}

/// A client in namespace `ns` inserting one row every 10 ms through `target` (the writer of the
/// VIP lab, with the application's MySQL login), reconnecting after any error.
pub fn mysql_writer(ns: &str, target: (String, u16), epoch: std::time::Instant) -> Writer {
    use mysql::prelude::Queryable;
    let write = |c: &mut mysql::Conn, key: &str| c.exec_drop("INSERT INTO app.w VALUES (?)", (key,)).is_ok();
    Writer::start_with(ns.to_string(), "w".to_string(), epoch, move || app_connection(&target), write)
}
