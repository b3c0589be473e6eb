//! HAProxy in the namespace lab: `serve-checks` on every Redis host (in its namespace, as the
//! unprivileged script user), and HAProxy in client c1's namespace with the configuration
//! `gen-consul-services --format haproxy` wrote, its write frontend on c1's own address.

use crate::netlab::{ns_command, start_proc, Host};
use crate::vip_lab::{drain_dir, install_checks, RedisVipLab, REDIS_PORT, SCRIPT_USER};
use crate::{wait_for, Proc};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The port serve-checks listens on at every host (the inventory's `serve_port`).
pub const SERVE_PORT: u16 = 9200;

/// HAProxy and the serve-checks behind it (stopped when dropped, before the lab).
pub struct HaproxyLab {
    /// HAProxy, in c1's namespace.
    pub haproxy: Proc,
    /// serve-checks on h1, h2, h3.
    pub serve: Vec<Proc>,
    /// The generated configuration.
    pub config: String,
    /// The write frontend: c1's address and the Redis port.
    pub write_frontend: (String, u16),
    /// The directory of HAProxy's log.
    pub dir: PathBuf,
    /// Each host's Consul HTTP checks (`--check-type http`): host, service, URL, Consul timeout.
    pub http_checks: Vec<(Host, String, String, Duration)>,
}

impl HaproxyLab {
    /// Starts serve-checks on every Redis host and HAProxy in c1, and waits until HAProxy's
    /// write frontend reaches the master (at most 20 s).
    pub fn start(lab: &RedisVipLab) -> HaproxyLab {
        let net = &lab.net;
        install_checks(net, &["serve-checks"]);
        let dir = net.dir.join("haproxy");
        std::fs::create_dir_all(&dir).unwrap();
        let c1 = net.host("c1").clone();
        let groups: serde_json::Value = serde_json::from_str(&lab.inventory(&net.dir.join("secrets/redis.pw"))).unwrap();
        let mut groups = groups.as_array().unwrap().clone();
        groups[0]["haproxy"] =
            serde_json::json!({"write_bind": format!("{}:{REDIS_PORT}", c1.addr), "read_bind": format!("{}:1{REDIS_PORT}", c1.addr)});
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
        let hosts: Vec<Host> = lab.nodes.iter().map(|n| n.host.clone()).collect();
        let mut serve = Vec::new();
        for h in &hosts {
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
        for h in &hosts {
            let out = dir.join("consul-http").join(&h.name);
            let inventory = dir.join(format!("inventory-{}.json", h.name));
            let args =
                ["--inventory", inventory.to_str().unwrap(), "--node", &h.addr, "--check-type", "http", "--out", out.to_str().unwrap()];
            let gen = crate::run("gen-consul-services", args);
            assert_eq!(gen.code, Some(0), "gen-consul-services --check-type http: {}{}", gen.stdout, gen.stderr);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
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
        let gen = crate::run(
            "gen-consul-services",
            ["--inventory", inventory.to_str().unwrap(), "--format", "haproxy", "--out", dir.to_str().unwrap()],
        );
        assert_eq!(gen.code, Some(0), "gen-consul-services --format haproxy: {}{}", gen.stdout, gen.stderr);
        let cfg = dir.join("haproxy.cfg");
        let config = std::fs::read_to_string(&cfg).unwrap();
        let mut cmd = ns_command(&c1.ns, "haproxy");
        cmd.arg("-db").arg("-f").arg(&cfg);
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap());
        let haproxy = start_proc("haproxy c1", &mut cmd);
        let lab_ = HaproxyLab { haproxy, serve, config, write_frontend: (c1.addr.clone(), REDIS_PORT), dir, http_checks };
        let target = lab_.write_frontend.clone();
        let ns = c1.ns.clone();
        wait_for("HAProxy's write frontend reaching the master", Duration::from_secs(20), || {
            let t = target.clone();
            crate::netlab::in_namespace(&ns, move || {
                let client = redis::Client::open((t.0.as_str(), t.1)).ok()?;
                let mut c = client.get_connection_with_timeout(Duration::from_millis(300)).ok()?;
                c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
                redis::cmd("AUTH").arg(crate::vip_lab::PASSWORD).query::<()>(&mut c).ok()?;
                redis::cmd("SET").arg("haproxy-probe").arg("1").query::<()>(&mut c).ok()
            })
        });
        lab_
    }

    /// Runs every host's Consul HTTP check once, as its agent would (a GET from the host's own
    /// namespace, Consul's timeout): per service, the hosts not critical (200 or 429).
    pub fn consul_http_answers(&self) -> crate::vip_lab::Answers {
        let mut answers = crate::vip_lab::Answers::new();
        for (host, service, url, timeout) in &self.http_checks {
            let (url, timeout) = (url.clone(), *timeout);
            let status = crate::netlab::in_namespace(&host.ns, move || {
                let rest = url.strip_prefix("http://").unwrap();
                let (addr, path) = rest.split_at(rest.find('/').unwrap());
                crate::http_lab::exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(), timeout).status
            });
            let entry = answers.entry(service.clone()).or_default();
            if status == 200 || status == 429 {
                entry.push(host.name.clone());
            }
        }
        answers
    }

    /// What HAProxy logged (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}
