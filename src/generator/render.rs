//! Renders planned services as Consul service definitions or keepalived `vrrp_script` blocks.

use super::plan::Service;
use crate::duration::format_duration;
use crate::kinds::Role;
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The Consul service definition file of one service: `{"service": {...}}`, pretty, newline-ended;
/// its check a script check, or an HTTP check against serve-checks on the node.
pub fn consul_file(s: &Service, check_type: super::CheckType) -> String {
    let role = match s.role {
        Role::Write => "the writable master",
        Role::Read => "in the read pool",
    };
    let mut check = Map::new();
    check.insert("id".into(), json!(format!("{}-check", s.id)));
    check.insert("name".into(), json!(format!("{} {}:{} is {role}", s.kind.as_str(), s.group, s.port)));
    match check_type {
        super::CheckType::Args => {
            check.insert("args".into(), json!(s.args));
        }
        super::CheckType::Http => {
            check.insert("http".into(), json!(s.http_url()));
            check.insert("method".into(), json!("GET"));
        }
    }
    check.insert("interval".into(), json!(format_duration(s.interval)));
    check.insert("timeout".into(), json!(format_duration(s.timeout)));
    check.insert("success_before_passing".into(), json!(s.flap.success_before_passing));
    check.insert("failures_before_critical".into(), json!(s.flap.failures_before_critical));
    let check = Value::Object(check);
    let mut service = Map::new();
    service.insert("id".into(), json!(s.id));
    service.insert("name".into(), json!(s.id));
    service.insert("tags".into(), json!(s.tags));
    service.insert("address".into(), json!(s.node));
    service.insert("port".into(), json!(s.port));
    if !s.meta.is_empty() {
        service.insert("meta".into(), json!(s.meta));
    }
    service.insert("checks".into(), json!([check]));
    let doc = json!({ "service": Value::Object(service) });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON of strings always serialises");
    text.push('\n');
    text
}

/// keepalived options given on the generator's command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepalivedOptions {
    /// Failures before a fault (`fall`), for every script [default: per role].
    pub fall: Option<u32>,
    /// Successes before recovery (`rise`), for every script [default: per role].
    pub rise: Option<u32>,
    /// Priority change (`weight`); none means a failing script puts the instance in FAULT.
    pub weight: Option<i32>,
}

/// A script interval or timeout as keepalived 2.2 reads it: whole seconds, at least 1.
fn whole_seconds(d: Duration) -> Result<u64> {
    if d.subsec_nanos() != 0 || d.is_zero() {
        bail!("keepalived reads a script's interval and timeout in whole seconds (at least 1s), not {}", format_duration(d));
    }
    Ok(d.as_secs())
}

/// An advertisement interval as keepalived reads it: seconds with decimals (`1`, `0.1`).
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}", d.as_secs_f64()).trim_end_matches('0').to_string()
    }
}

/// The characters a script argument may hold besides letters and digits: keepalived reads them
/// literally. Anything else may mean something to its grammar (`#` and `!` start comments, braces
/// open and close blocks, `$` and `~` expand definitions, quotes and `\\` group words) or to none
/// of them: refused, rather than guessed at.
const KEEPALIVED_WORD_CHARS: &str = "/._-:=,@+% ";

/// One argument as keepalived's `script` line carries it: bare, or in single quotes when it holds a
/// space. Refused, naming the character, when keepalived would not read it as written.
pub fn keepalived_word(arg: &str) -> Result<String> {
    if arg.is_empty() {
        return Ok("''".into());
    }
    if let Some(c) = arg.chars().find(|c| !c.is_ascii_alphanumeric() && !KEEPALIVED_WORD_CHARS.contains(*c)) {
        bail!(
            "{arg:?} holds {c:?}, which keepalived's configuration would not read as written \
             (allowed: letters, digits, space and {})",
            KEEPALIVED_WORD_CHARS.trim_end()
        );
    }
    Ok(if arg.contains(' ') { format!("'{arg}'") } else { arg.to_string() })
}

/// The argv of `s` as keepalived's `script` line, or a refusal naming the entry and the flag;
/// `fault_after` (fall x interval, after `--fall`) replaces the `--fault-after` the plan wrote.
fn keepalived_script_line(s: &Service, fault_after: Duration) -> Result<String> {
    let mut args = s.vrrp_args.clone();
    if let Some(i) = args.iter().position(|a| a == "--fault-after") {
        args[i + 1] = format_duration(fault_after);
    }
    let mut words = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let flag = match i {
            0 => "the check's path",
            _ => args[i - 1].as_str(),
        };
        words.push(keepalived_word(arg).map_err(|e| anyhow!("{}: {flag} {e}", s.entry))?);
    }
    Ok(words.join(" "))
}

/// The `vrrp_script` name of a service: `chk_` and the id with `-` as `_`.
pub fn script_name(s: &Service) -> String {
    format!("chk_{}", s.id.replace('-', "_"))
}

/// The keepalived configuration of one node: `global_defs` (VRRP version 3, script security),
/// one `vrrp_script` per service, and one `vrrp_instance` per group with a VIP, tracking the
/// write check. Usable as the node's `keepalived.conf`.
pub fn keepalived_file(services: &[&Service], opts: KeepalivedOptions) -> Result<String> {
    let mut users: Vec<&str> = services.iter().filter_map(|s| s.vrrp_instance.as_ref()).map(|i| i.script_user.as_str()).collect();
    users.dedup();
    if users.len() > 1 {
        bail!("the groups on one node name different script_user values ({}): keepalived has one", users.join(", "));
    }
    let script_user = users.first().copied().unwrap_or(super::vrrp::DEFAULT_SCRIPT_USER);
    let instances: Vec<&super::vrrp::VrrpInstance> = services.iter().filter_map(|s| s.vrrp_instance.as_ref()).collect();
    for (n, a) in instances.iter().enumerate() {
        if let Some(b) = instances[..n].iter().find(|b| b.interface == a.interface && b.virtual_router_id == a.virtual_router_id) {
            bail!(
                "{} and {} both use virtual_router_id {} on {}: each VIP needs its own",
                b.name,
                a.name,
                a.virtual_router_id,
                a.interface
            );
        }
    }
    let mut out = format!(
        "# keepalived configuration for consul-db-checks, written by gen-consul-services: do not edit.\n\
         # The checks run as {script_user}, who must be able to read their credential files.\n\n\
         global_defs {{\n    vrrp_version 3\n    enable_script_security\n    script_user {script_user}\n}}\n"
    );
    for s in services {
        let t = s.vrrp_timing;
        let (fall, rise) = (opts.fall.unwrap_or(t.fall), opts.rise.unwrap_or(t.rise));
        let line = keepalived_script_line(s, t.interval * fall)?;
        out.push_str(&format!("\nvrrp_script {} {{\n", script_name(s)));
        out.push_str(&format!("    script \"{line}\"\n"));
        // keepalived before 2.3.2 (Debian 12 has 2.2.7) reads a script's interval and timeout in
        // whole seconds only, and ignores anything else.
        if t.interval.subsec_nanos() == 0 && t.timeout.subsec_nanos() == 0 {
            out.push_str(&format!("    interval {}\n    timeout {}\n", whole_seconds(t.interval)?, whole_seconds(t.timeout)?));
        } else {
            // keepalived 2.3.2+ reads decimals (the plan only makes them for that version).
            out.push_str(&format!("    interval {}\n    timeout {}\n", seconds(t.interval), seconds(t.timeout)));
        }
        out.push_str(&format!("    fall {fall}\n    rise {rise}\n"));
        if let Some(w) = opts.weight {
            out.push_str(&format!("    weight {w}\n"));
        }
        out.push_str("}\n");
    }
    for s in services {
        let Some(i) = &s.vrrp_instance else { continue };
        out.push_str(&format!(
            "\n# {vip} follows the node whose write check ({script}) passes.\n\
             vrrp_instance {name} {{\n    state BACKUP\n    interface {iface}\n    virtual_router_id {vrid}\n\
             \x20   priority {prio}\n    advert_int {advert}\n{nopreempt}\
             \x20   virtual_ipaddress {{\n        {vip}\n    }}\n\
             \x20   track_script {{\n        {script}\n    }}\n\
             \x20   # Refresh the clients' ARP entries while master, not only on a state change.\n\
             \x20   garp_master_refresh 1\n}}\n",
            vip = i.vip,
            script = script_name(s),
            name = i.name,
            iface = i.interface,
            vrid = i.virtual_router_id,
            prio = i.priority,
            advert = seconds(i.advert_interval),
            nopreempt = if i.nopreempt { "    nopreempt\n" } else { "" },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::inventory::parse_inventory;
    use super::super::plan::{plan, PlanOptions};
    use super::*;

    fn services_of(inventory: &str, weight: Option<i32>) -> Result<Vec<Service>> {
        let (g, _) = parse_inventory(inventory)?;
        plan(&g, &PlanOptions { vrrp_weight: weight, ..PlanOptions::default() })
    }
    fn services() -> Vec<Service> {
        services_of(
            r#"[{"kind":"mysql","name":"main","port":3306,"nodes":["10.0.0.5"],"defaults_file":"/etc/consul.d/my check.cnf","meta":{"team":"dba"}}]"#,
            None,
        )
        .unwrap()
    }
    const REDIS_VIP: &str = r#"[{"kind":"redis","name":"test","port":6029,"nodes":["198.18.0.11","198.18.0.12"],
        "sentinels":["198.18.0.11:26379","198.18.0.12:26379"],
        "vrrp":{"vip":"198.18.0.100/24","virtual_router_id":51,"interface":"eth0"}}]"#;

    #[test]
    fn consul_file_shape_and_no_script_field() {
        let s = services();
        let text = consul_file(&s[0], crate::generator::CheckType::Args);
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        let svc = &v["service"];
        assert_eq!(svc["id"], "w-3306-mysql-main");
        assert_eq!(svc["name"], "w-3306-mysql-main");
        assert_eq!(svc["address"], "10.0.0.5");
        assert_eq!(svc["port"], 3306);
        assert_eq!(svc["meta"]["team"], "dba");
        let check = &svc["checks"][0];
        assert_eq!(check["args"][0], "/usr/local/bin/check-mysql-master");
        assert_eq!((check["interval"].as_str(), check["timeout"].as_str()), (Some("10s"), Some("5s")));
        assert!(check.get("script").is_none());
        // Flap control: the write check drops at once and needs two passes to come back.
        assert_eq!((check["success_before_passing"].as_u64(), check["failures_before_critical"].as_u64()), (Some(2), Some(1)));
        let read = serde_json::from_str::<Value>(&consul_file(&s[1], crate::generator::CheckType::Args)).unwrap();
        let read = &read["service"]["checks"][0];
        assert_eq!((read["success_before_passing"].as_u64(), read["failures_before_critical"].as_u64()), (Some(1), Some(2)));
        assert!(!check["args"].to_string().contains("--warning-exit-code"), "Consul keeps warnings: {check}");
        // Deterministic key order.
        let keys: Vec<&String> = svc.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "tags", "address", "port", "meta", "checks"]);
        assert_eq!(consul_file(&s[0], crate::generator::CheckType::Args), text);
        // --check-type http: the same check, asked of serve-checks on the node; no argv at all.
        let http: Value = serde_json::from_str(&consul_file(&s[0], crate::generator::CheckType::Http)).unwrap();
        let http = &http["service"]["checks"][0];
        assert_eq!(http["http"], "http://10.0.0.5:9200/w-3306-mysql-main", "{http}");
        assert_eq!(http["method"], "GET");
        assert!(http.get("args").is_none(), "{http}");
        assert_eq!((http["interval"].as_str(), http["timeout"].as_str()), (Some("10s"), Some("5s")));
        let keys: Vec<&String> = http.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "http", "method", "interval", "timeout", "success_before_passing", "failures_before_critical"]);
    }

    #[test]
    fn keepalived_scripts_per_role_quoted_safely() {
        let s = services();
        let refs: Vec<&Service> = s.iter().collect();
        let text = keepalived_file(&refs, KeepalivedOptions::default()).unwrap();
        assert!(
            text.contains("global_defs {\n    vrrp_version 3\n    enable_script_security\n    script_user keepalived_script\n}"),
            "{text}"
        );
        assert!(text.contains("vrrp_script chk_w_3306_mysql_main {"), "{text}");
        assert!(text.contains("'/etc/consul.d/my check.cnf'"), "{text}");
        assert!(
            text.contains("--timeout 700ms --warning-exit-code 0\"\n    interval 1\n    timeout 1\n    fall 1\n    rise 1\n}"),
            "{text}"
        );
        assert!(
            text.contains("--timeout 1500ms --warning-exit-code 0\"\n    interval 2\n    timeout 2\n    fall 2\n    rise 2\n}"),
            "{text}"
        );
        assert!(!text.contains("vrrp_instance"), "no vrrp block, no instance: {text}");
        let text = keepalived_file(&refs, KeepalivedOptions { fall: Some(3), rise: Some(4), weight: Some(-20) }).unwrap();
        assert!(text.contains("    fall 3\n    rise 4\n    weight -20\n"), "{text}");
        assert_eq!(keepalived_word("").unwrap(), "''");
        assert_eq!(keepalived_word("/etc/my check.cnf").unwrap(), "'/etc/my check.cnf'");
        for hostile in ["a'b", "a\"b", "a\\b", "a\nb", "a#b", "a!b", "a{b", "a}b", "a$b", "a~b", "a;b", "a\tb", "é"] {
            let e = keepalived_word(hostile).unwrap_err().to_string();
            assert!(e.contains("would not read as written"), "{hostile:?}: {e}");
        }
    }

    #[test]
    fn vrrp_instance_tracks_the_write_check() {
        let s = services_of(REDIS_VIP, None).unwrap();
        let node: Vec<&Service> = s.iter().filter(|s| s.node == "198.18.0.12").collect();
        let text = keepalived_file(&node, KeepalivedOptions::default()).unwrap();
        let instance = "vrrp_instance VI_w_6029_redis_test {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
                        priority 100\n    advert_int 0.1\n    virtual_ipaddress {\n        198.18.0.100/24\n    }\n    \
                        track_script {\n        chk_w_6029_redis_test\n    }\n";
        assert!(text.contains(instance), "{text}");
        assert!(text.contains("garp_master_refresh 1"), "{text}");
        assert_eq!(text.matches("vrrp_instance").count(), 1, "one instance, for the write service: {text}");
        assert!(!text.contains("weight"), "no weight by default: a failing check means FAULT: {text}");
    }

    /// The lint: settings with which the VIP would never move, or scripts would run as root.
    #[test]
    fn vrrp_settings_that_cannot_work_are_refused() {
        let with = |vrrp: &str, weight: Option<i32>| {
            let inv = REDIS_VIP.replace(r#""vrrp":{"vip":"198.18.0.100/24","virtual_router_id":51,"interface":"eth0"}"#, vrrp);
            services_of(&inv, weight).map(|_| ()).map_err(|e| format!("{e:#}"))
        };
        let base = r#""vip":"198.18.0.100/24","virtual_router_id":51,"interface":"eth0""#;
        assert_eq!(with(&format!(r#""vrrp":{{{base}}}"#), Some(-20)), Ok(()));
        for (vrrp, weight, words) in [
            (format!(r#""vrrp":{{{base},"nopreempt":true}}"#), Some(-20), "--weight with nopreempt"),
            (format!(r#""vrrp":{{{base},"node_priorities":{{"198.18.0.11":150}}}}"#), Some(-20), "does not exceed the priority spread 50"),
            (format!(r#""vrrp":{{{base},"script_user":"root"}}"#), None, "must not be root"),
            (r#""vrrp":{"vip":"198.18.0.100","virtual_router_id":51,"interface":"eth0"}"#.into(), None, "needs a prefix length"),
            (r#""vrrp":{"vip":"198.18.0.100/24","virtual_router_id":256,"interface":"eth0"}"#.into(), None, "out of range (1-255)"),
            (r#""vrrp":{"vip":"198.18.0.100/24","virtual_router_id":5,"interface":"eth 0"}"#.into(), None, "not an interface name"),
            (format!(r#""vrrp":{{{base},"advert_interval":"15ms"}}"#), None, "multiple of 10ms"),
            (format!(r#""vrrp":{{{base},"node_priorities":{{"198.18.0.99":150}}}}"#), None, "not a node of the group"),
            (format!(r#""vrrp":{{{base},"colour":1}}"#), None, "unknown field"),
        ] {
            let e = with(&vrrp, weight).unwrap_err();
            assert!(e.contains(words), "{vrrp}: {e}");
        }
        assert_eq!(with(&format!(r#""vrrp":{{{base},"node_priorities":{{"198.18.0.11":150}}}}"#), Some(-51)), Ok(()));
        // Two groups, one router id on one interface.
        let group = REDIS_VIP.trim_start_matches('[').trim_end_matches(']');
        let two = format!("[{group},{}]", group.replace(r#""name":"test""#, r#""name":"other""#));
        let s = services_of(&two, None).unwrap();
        let node: Vec<&Service> = s.iter().filter(|s| s.node == "198.18.0.11").collect();
        let e = keepalived_file(&node, KeepalivedOptions::default()).unwrap_err().to_string();
        assert!(e.contains("both use virtual_router_id 51 on eth0"), "{e}");
    }
}
