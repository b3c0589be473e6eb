//! Turns validated inventory groups into the services each node's agent registers.

use super::argv::check_args;
use super::inventory::{DurationSpec, GroupSpec, Tags};
use super::vrrp::{ScriptTiming, VrrpInstance};
use crate::duration::format_duration;
use crate::kinds::{Kind, Role};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// One service one node's agent registers, with its check's argv.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// The inventory entry it comes from, as refusals name it: `groups[0] (redis test:6029)`.
    pub entry: String,
    /// Node address (also the service address).
    pub node: String,
    /// Service id and name, e.g. `w-6029-redis-test`.
    pub id: String,
    /// Write or read.
    pub role: Role,
    /// Kind of server.
    pub kind: Kind,
    /// Group name.
    pub group: String,
    /// Service port.
    pub port: u16,
    /// Service tags.
    pub tags: Vec<String>,
    /// Service meta.
    pub meta: BTreeMap<String, String>,
    /// The check that answers this service (`args[0]` is its installed path).
    pub check: &'static crate::checks::Executable,
    /// The check command (no shell).
    pub args: Vec<String>,
    /// Check interval.
    pub interval: Duration,
    /// Consul's timeout for the check.
    pub timeout: Duration,
    /// Consul's flap control of the check.
    pub flap: super::inventory::FlapControl,
    /// The check command as keepalived runs it: its own deadline, warning mapped to exit 0.
    pub vrrp_args: Vec<String>,
    /// How keepalived runs it.
    pub vrrp_timing: ScriptTiming,
    /// For the write service of a group with a `vrrp` block: the instance holding its VIP.
    pub vrrp_instance: Option<VrrpInstance>,
    /// The port serve-checks listens on at this node.
    pub serve_port: u16,
    /// The HAProxy frontend's `bind` of this service's group and role.
    pub haproxy_bind: String,
}

impl Service {
    /// Where serve-checks answers for this service: `http://NODE:SERVE_PORT/ID` (IPv6 bracketed).
    pub fn http_url(&self) -> String {
        format!("http://{}/{}", crate::cli::Address::Tcp { host: self.node.clone(), port: self.serve_port }, self.id)
    }
}

/// Default service name template.
pub const DEFAULT_NAME_TEMPLATE: &str = "{role}-{port}-{kind}-{name}";

/// How much the check's own deadline must stay under the scheduler's (exit takes up to 250 ms).
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// Whether `s` is a DNS label: 1-63 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a plausible node address (IP or host name).
fn is_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
        || (!s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')))
}

/// Options applying to every group.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Directory of the installed executables.
    pub bin_dir: String,
    /// Service name template (`{role}`, `{port}`, `{kind}`, `{name}`).
    pub name_template: String,
    /// keepalived `weight` of every `vrrp_script` (`--weight`); `None`: a failing check means FAULT.
    pub vrrp_weight: Option<i32>,
    /// The nodes run keepalived 2.3.2 or later, which reads sub-second script timing.
    pub keepalived_sub_second: bool,
    /// Directory of the operators' drain files: every check gets `--drain-file <dir>/<service-id>`
    /// (`{node}` in it becomes the node's address, for nodes that share a file system).
    pub drain_dir: String,
    /// Port `serve-checks` listens on at every node (HAProxy and Consul HTTP checks ask there).
    pub serve_port: u16,
}

/// Where the drain files are unless the inventory says otherwise: writable by root only.
pub const DEFAULT_DRAIN_DIR: &str = "/var/lib/consul-db-checks/drain";

/// The port `serve-checks` listens on unless the inventory says otherwise (clustercheck's).
pub const DEFAULT_SERVE_PORT: u16 = 9200;

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            bin_dir: "/usr/local/bin".into(),
            name_template: DEFAULT_NAME_TEMPLATE.into(),
            vrrp_weight: None,
            keepalived_sub_second: false,
            drain_dir: DEFAULT_DRAIN_DIR.into(),
            serve_port: DEFAULT_SERVE_PORT,
        }
    }
}

impl PlanOptions {
    /// The options an inventory's own settings give (the generator's flags override some).
    pub fn from_inventory(defaults: &super::inventory::InventoryDefaults) -> Result<PlanOptions> {
        let base = PlanOptions::default();
        Ok(PlanOptions {
            bin_dir: defaults.bin_dir.clone().unwrap_or(base.bin_dir),
            keepalived_sub_second: match &defaults.keepalived_version {
                Some(v) => keepalived_reads_sub_second(v)?,
                None => false,
            },
            drain_dir: defaults.drain_dir.clone().unwrap_or(base.drain_dir),
            serve_port: match defaults.serve_port {
                None => base.serve_port,
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| anyhow!("serve_port {p} is out of range (1-65535)"))?,
            },
            ..base
        })
    }
}

/// Whether keepalived `version` (`2.3.3`, `1:2.3.3-1`) reads sub-second script timing (2.3.2+).
pub fn keepalived_reads_sub_second(version: &str) -> Result<bool> {
    let v = version.rsplit(':').next().unwrap_or(version);
    let v = v.split(['-', '+', '~']).next().unwrap_or(v);
    let parts: Vec<u32> = v
        .split('.')
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("keepalived_version '{version}' is not a version such as 2.2.7 or 2.3.3"))?;
    let padded = |i: usize| parts.get(i).copied().unwrap_or(0);
    Ok((padded(0), padded(1), padded(2)) >= (2, 3, 2))
}

/// Validates every group and lays out every node's services; nothing is returned unless all is valid.
pub fn plan(groups: &[GroupSpec], opts: &PlanOptions) -> Result<Vec<Service>> {
    if !opts.bin_dir.starts_with('/') {
        bail!("--bin-dir must be an absolute path, not '{}'", opts.bin_dir);
    }
    super::render::keepalived_word(&opts.bin_dir).map_err(|e| anyhow!("bin_dir (--bin-dir, or the inventory's bin_dir): {e}"))?;
    if !opts.drain_dir.starts_with('/') {
        bail!("drain_dir must be an absolute path, not '{}'", opts.drain_dir);
    }
    super::render::keepalived_word(&opts.drain_dir.replace("{node}", "")).map_err(|e| anyhow!("drain_dir: {e}"))?;
    let mut services: Vec<Service> = Vec::new();
    let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        let label = format!("groups[{i}] ({} {}:{})", g.kind.as_str(), g.name, g.port);
        let group_services = plan_group(g, &label, opts).map_err(|e| anyhow!("{label}: {e}"))?;
        for s in group_services {
            let key = (s.node.clone(), s.id.clone());
            if let Some(other) = owners.insert(key, label.clone()) {
                bail!("{label}: service id {} on node {} is already used by {other}", s.id, s.node);
            }
            services.push(s);
        }
    }
    Ok(services)
}

fn plan_group(g: &GroupSpec, entry: &str, opts: &PlanOptions) -> Result<Vec<Service>> {
    if !is_dns_label(&g.name) {
        bail!("name '{}' is not a DNS label (a-z, 0-9, '-', at most 63)", g.name);
    }
    let port = u16::try_from(g.port).ok().filter(|p| *p > 0).ok_or_else(|| anyhow!("port {} is out of range (1-65535)", g.port))?;
    if g.nodes.is_empty() {
        bail!("no nodes");
    }
    for (n, node) in g.nodes.iter().enumerate() {
        if !is_address(node) {
            bail!("node '{node}' is not an IP address or host name");
        }
        if g.nodes[..n].contains(node) {
            bail!("node {node} is listed twice");
        }
    }
    g.options.check_nodes(&g.nodes)?;
    let dur = |d: &Option<DurationSpec>, field: &str| -> Result<Option<Duration>> {
        d.as_ref().map(|d| d.get().map_err(|e| anyhow!("{field}: {e}"))).transpose()
    };
    let interval = dur(&g.interval, "interval")?.unwrap_or(Duration::from_secs(10));
    if interval.is_zero() {
        bail!("interval must be more than zero");
    }
    let timeout = dur(&g.timeout, "timeout")?.unwrap_or_else(|| (interval / 2).min(Duration::from_secs(5)));
    let check_timeout = dur(&g.check_timeout, "check_timeout")?.unwrap_or_else(|| round_ms(timeout * 3 / 5));
    if timeout >= interval {
        bail!("timeout {} is not below the interval {}", format_duration(timeout), format_duration(interval));
    }
    if check_timeout.is_zero() || check_timeout + DEADLINE_MARGIN > timeout {
        bail!("check_timeout {} must leave at least 250ms under the timeout {}", format_duration(check_timeout), format_duration(timeout));
    }
    let tags = g
        .tags
        .clone()
        .unwrap_or_else(|| Tags { write: vec![format!("master-{}-{}", g.name, port)], read: vec![format!("slave-{}-{}", g.name, port)] });
    let (write_bind, read_bind) = haproxy_binds(g, port)?;
    let mut out = Vec::new();
    for node in &g.nodes {
        for role in Role::ALL {
            let id = opts
                .name_template
                .replace("{role}", role.letter())
                .replace("{port}", &port.to_string())
                .replace("{kind}", g.kind.as_str())
                .replace("{name}", &g.name);
            if !is_dns_label(&id) {
                bail!("service name '{id}' (from --name-template) is not a DNS label");
            }
            let flap = {
                let spec = g.flap.clone().unwrap_or_default();
                let chosen = if role == Role::Write { spec.write } else { spec.read };
                chosen.unwrap_or_else(|| super::inventory::FlapControl::default_for(role == Role::Write))
            };
            let drain = format!("{}/{id}", opts.drain_dir.replace("{node}", node).trim_end_matches('/'));
            super::render::keepalived_word(&drain).map_err(|e| anyhow!("drain_dir on node {node}: {e}"))?;
            let check = crate::checks::serving(g.kind, role);
            // Only keepalived's timing is known to be what moves writes off a cut-off master.
            let args = check_args(g, check, node, port, check_timeout, &opts.bin_dir, false, None, &drain)?;
            let vrrp_timing = ScriptTiming::for_keepalived(role, opts.keepalived_sub_second);
            let fault_after = (role == Role::Write).then_some(vrrp_timing.interval * vrrp_timing.fall);
            let vrrp_args = check_args(g, check, node, port, vrrp_timing.check_timeout, &opts.bin_dir, true, fault_after, &drain)?;
            let vrrp_instance = match (&g.vrrp, role) {
                (Some(spec), Role::Write) => {
                    Some(super::vrrp::instance(spec, &id, node, &g.nodes, opts.vrrp_weight).map_err(|e| anyhow!("vrrp: {e}"))?)
                }
                _ => None,
            };
            out.push(Service {
                serve_port: opts.serve_port,
                haproxy_bind: if role == Role::Write { write_bind.clone() } else { read_bind.clone() },
                entry: entry.to_string(),
                node: node.clone(),
                id,
                role,
                kind: g.kind,
                group: g.name.clone(),
                port,
                tags: if role == Role::Write { tags.write.clone() } else { tags.read.clone() },
                meta: g.meta.clone(),
                check,
                args,
                interval,
                timeout,
                flap,
                vrrp_args,
                vrrp_timing,
                vrrp_instance,
            });
        }
    }
    Ok(out)
}

/// The `bind` of a group's HAProxy write and read frontends: the group's `haproxy` block, else the
/// port and the port + 10000; refused when HAProxy would read more than an address and a port.
fn haproxy_binds(g: &GroupSpec, port: u16) -> Result<(String, String)> {
    let spec = g.haproxy.clone().unwrap_or_default();
    let write = spec.write_bind.unwrap_or_else(|| format!(":{port}"));
    let read = match spec.read_bind {
        Some(b) => b,
        None => match port.checked_add(10000) {
            Some(p) => format!(":{p}"),
            None => bail!("port {port}: the read frontend's default port (port + 10000) is over 65535; set haproxy.read_bind"),
        },
    };
    for bind in [&write, &read] {
        if bind.is_empty() || !bind.chars().all(|c| c.is_ascii_alphanumeric() || ".:[]*-_".contains(c)) {
            bail!("haproxy bind '{bind}' is not an address and port such as :6029 or 198.18.0.100:6029");
        }
    }
    Ok((write, read))
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis((d.as_millis() as u64 / 100) * 100)
}

#[cfg(test)]
mod tests {
    use super::super::inventory::parse_inventory;
    use super::*;

    fn opts() -> PlanOptions {
        PlanOptions::default()
    }
    fn group(json: &str) -> Result<Vec<Service>> {
        let (g, _) = parse_inventory(&format!("[{json}]"))?;
        plan(&g, &opts())
    }
    fn err(json: &str) -> String {
        format!("{:#}", group(json).unwrap_err())
    }

    #[test]
    fn the_example_topology() {
        let s = group(
            r#"{"kind":"redis","name":"test","port":6029,"nodes":["192.168.0.20","192.168.0.30"],
            "password_file":"/etc/consul.d/secrets/redis-6029","max_lag":30,
            "sentinels":["192.168.0.20:26379"]}"#,
        )
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s[0].id.as_str(), s[0].node.as_str(), s[0].tags[0].as_str()),
            ("w-6029-redis-test", "192.168.0.20", "master-test-6029")
        );
        assert_eq!((s[1].id.as_str(), s[1].tags[0].as_str()), ("r-6029-redis-test", "slave-test-6029"));
        assert_eq!(s[0].args[..5], ["/usr/local/bin/check-redis-master", "--host", "192.168.0.20", "--port", "6029"]);
        assert!(s[0].args.windows(2).any(|w| w == ["--master-name", "test"]));
        assert!(s[1].args.windows(2).any(|w| w == ["--max-lag", "30s"]));
        assert_eq!((s[0].interval, s[0].timeout), (Duration::from_secs(10), Duration::from_secs(5)));
        assert!(s[0].args.ends_with(&["--timeout".to_string(), "3s".to_string()]));
        // Every check, Consul's and keepalived's, honours the service's drain file.
        for svc in &s {
            let drain = format!("/var/lib/consul-db-checks/drain/{}", svc.id);
            for argv in [&svc.args, &svc.vrrp_args] {
                assert!(argv.windows(2).any(|w| w == ["--drain-file", drain.as_str()]), "{argv:?}");
            }
        }
    }

    /// drain_dir: absolute, nothing keepalived would read otherwise, `{node}` per node.
    #[test]
    fn drain_dir_is_checked_and_per_node() {
        let (g, _) = parse_inventory(r#"[{"kind":"redis","name":"test","port":6029,"nodes":["10.0.0.1","10.0.0.2"]}]"#).unwrap();
        let with = |dir: &str| plan(&g, &PlanOptions { drain_dir: dir.into(), ..PlanOptions::default() });
        assert!(with("drain").unwrap_err().to_string().contains("drain_dir must be an absolute path"));
        assert!(with("/var/lib/x\"; rm -rf /").is_err());
        let s = with("/srv/drain/{node}/").unwrap();
        assert!(s[3].args.windows(2).any(|w| w == ["--drain-file", "/srv/drain/10.0.0.2/r-6029-redis-test"]), "{:?}", s[3].args);
    }

    #[test]
    fn strictness_names_the_entry() {
        let base = r#""kind":"redis","name":"test","port":6029,"nodes":["10.0.0.1"]"#;
        let cases = [
            (r#"{"kind":"memcached","name":"x","port":1,"nodes":["a"]}"#.to_string(), "unknown variant"),
            (format!("{{{base},\"colour\":\"blue\"}}"), "unknown field `colour`"),
            (r#"{"kind":"redis","name":"Test_1","port":6029,"nodes":["a"]}"#.into(), "not a DNS label"),
            (r#"{"kind":"redis","name":"t","port":70000,"nodes":["a"]}"#.into(), "out of range"),
            (r#"{"kind":"redis","name":"t","port":0,"nodes":["a"]}"#.into(), "out of range"),
            (format!("{{{base},\"interval\":\"5s\",\"timeout\":\"5s\"}}"), "not below the interval"),
            (format!("{{{base},\"timeout\":\"2s\",\"check_timeout\":\"2s\"}}"), "at least 250ms"),
            (format!("{{{base},\"password_file\":\"hunter2\"}}"), "looks like a literal password"),
            (format!("{{{base},\"password\":\"hunter2\"}}"), "literal passwords are not allowed"),
            (format!("{{{base},\"defaults_file\":\"/etc/my.cnf\"}}"), "only for mysql, galera and group-replication groups"),
            (r#"{"kind":"mysql","name":"m","port":3306,"nodes":["a"],"sentinels":["a:1"]}"#.into(), "only for redis groups"),
            (r#"{"kind":"redis","name":"t","port":1,"nodes":["a","a"]}"#.into(), "listed twice"),
            (r#"{"kind":"redis","name":"t","port":1,"nodes":["bad host!"]}"#.into(), "not an IP address"),
            (format!("{{{base},\"sentinels\":[\"nohost\"]}}"), "sentinel"),
            (format!("{{{base},\"max_lag\":\"soon\"}}"), "max_lag"),
            (
                format!("{{{base},\"announce\":{{\"10.0.0.1\":\"a:1\"}}}}"),
                "announce says how the Sentinels name each node: it needs sentinels",
            ),
            (
                format!("{{{base},\"sentinels\":[\"10.0.0.9:26379\"],\"announce\":{{\"10.0.0.2\":\"a:1\"}}}}"),
                "announce names 10.0.0.2, which is not a node of the group",
            ),
            (format!("{{{base},\"sentinels\":[\"10.0.0.9:26379\"],\"announce\":{{\"10.0.0.1\":\"nohostport\"}}}}"), "announce of 10.0.0.1"),
            (format!("{{{base},\"server_public_key\":\"/k.pem\"}}"), "only for mysql, galera and group-replication groups"),
            (
                r#"{"kind":"mysql","name":"m","port":3306,"nodes":["a"],"server_public_key":"/k.pem","get_server_public_key":true}"#.into(),
                "not both",
            ),
            (r#"{"kind":"mysql","name":"m","port":3306,"nodes":["a"],"tls_verify":"name"}"#.into(), "unknown variant"),
        ];
        for (json, words) in cases {
            let e = err(&json);
            assert!(e.starts_with("groups[0] ("), "{json}: {e}");
            assert!(e.contains(words), "{json}: {e}");
            assert!(!e.contains("hunter2"), "secret echoed: {e}");
        }
    }

    #[test]
    fn duplicate_ids_on_one_node() {
        let two = r#"[{"kind":"redis","name":"a","port":6029,"nodes":["n1"]},{"kind":"redis","name":"a","port":6029,"nodes":["n2","n1"]}]"#;
        let (g, _) = parse_inventory(two).unwrap();
        let e = format!("{:#}", plan(&g, &opts()).unwrap_err());
        assert!(e.contains("groups[1]") && e.contains("w-6029-redis-a on node n1") && e.contains("groups[0]"), "{e}");
        // The same name on another port is another service.
        let ok = r#"[{"kind":"redis","name":"a","port":6029,"nodes":["n1"]},{"kind":"redis","name":"a","port":6030,"nodes":["n1"]}]"#;
        assert_eq!(plan(&parse_inventory(ok).unwrap().0, &opts()).unwrap().len(), 4);
    }

    /// Flap control per group overrides the defaults per service.
    #[test]
    fn flap_control_per_group() {
        let s = group(
            r#"{"kind":"redis","name":"t","port":1,"nodes":["n"],
            "flap":{"write":{"success_before_passing":3,"failures_before_critical":1}}}"#,
        )
        .unwrap();
        assert_eq!((s[0].flap.success_before_passing, s[0].flap.failures_before_critical), (3, 1));
        assert_eq!(s[1].flap, super::super::inventory::FlapControl::default_for(false));
        assert!(err(r#"{"kind":"redis","name":"t","port":1,"nodes":["n"],"flap":{"write":{"success_before_passing":3}}}"#)
            .contains("failures_before_critical"));
    }

    /// A key twice is refused like any invalid inventory (JSON parsing alone keeps the last one).
    #[test]
    fn duplicate_keys_are_refused() {
        for text in [
            r#"{"groups":[],"groups":[{"kind":"redis","name":"a","port":1,"nodes":["n"]}]}"#,
            r#"[{"kind":"redis","name":"a","port":6029,"port":6030,"nodes":["n"]}]"#,
            r#"[{"kind":"redis","name":"a","port":1,"nodes":["n"],"vrrp":{"vip":"198.18.0.1/24","vip":"198.18.0.2/24","virtual_router_id":1,"interface":"e"}}]"#,
        ] {
            let e = format!("{:#}", parse_inventory(text).unwrap_err());
            assert!(e.contains("appears twice"), "{text}: {e}");
        }
    }

    #[test]
    fn inventory_shapes() {
        assert!(parse_inventory(r#"{"groups":[],"bin_dir":"/opt/bin"}"#).unwrap().1.bin_dir.as_deref() == Some("/opt/bin"));
        let d = parse_inventory(r#"{"groups":[],"keepalived_version":"2.3.3"}"#).unwrap().1;
        assert_eq!(d.keepalived_version.as_deref(), Some("2.3.3"));
        for (v, sub) in [("2.2.7", false), ("2.3.1", false), ("2.3.2", true), ("1:2.3.3-1", true), ("3", true), ("2.3", false)] {
            assert_eq!(keepalived_reads_sub_second(v).unwrap(), sub, "{v}");
        }
        assert!(keepalived_reads_sub_second("latest").is_err());
        assert!(format!("{:#}", parse_inventory(r#"{"groups":[],"extra":1}"#).unwrap_err()).contains("unknown inventory field 'extra'"));
        assert!(parse_inventory("not json").is_err());
        assert!(parse_inventory("42").is_err());
        let mut o = opts();
        o.name_template = "{role}_{name}".into();
        let (g, _) = parse_inventory(r#"[{"kind":"redis","name":"a","port":1,"nodes":["n"]}]"#).unwrap();
        assert!(format!("{:#}", plan(&g, &o).unwrap_err()).contains("not a DNS label"));
        o.name_template = "{kind}-{name}-{role}".into();
        assert_eq!(plan(&g, &o).unwrap()[0].id, "redis-a-w");
    }
}
