//! Renders planned services as Consul service definitions or keepalived `vrrp_script` blocks.

use super::plan::{Role, Service};
use crate::duration::format_duration;
use anyhow::{bail, Result};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The Consul service definition file of one service: `{"service": {...}}`, pretty, newline-ended.
pub fn consul_file(s: &Service) -> String {
    let role = match s.role {
        Role::Write => "the writable master",
        Role::Read => "in the read pool",
    };
    let check = json!({
        "id": format!("{}-check", s.id),
        "name": format!("{} {}:{} is {role}", s.kind.as_str(), s.group, s.port),
        "args": s.args,
        "interval": format_duration(s.interval),
        "timeout": format_duration(s.timeout),
    });
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

/// keepalived's own options for every `vrrp_script` block.
#[derive(Clone, Copy, Debug)]
pub struct KeepalivedOptions {
    /// Failures before a fault (`fall`).
    pub fall: u32,
    /// Successes before recovery (`rise`).
    pub rise: u32,
    /// Priority change (`weight`); none means a failing script puts the instance in FAULT.
    pub weight: Option<i32>,
}

/// keepalived wants whole seconds.
fn whole_seconds(d: Duration, what: &str, id: &str) -> Result<u64> {
    if d.subsec_nanos() != 0 || d.as_secs() == 0 {
        bail!("{id}: keepalived needs the {what} in whole seconds (at least 1s), not {}", format_duration(d));
    }
    Ok(d.as_secs())
}

/// Quotes one argument for keepalived's `script`: bare when safe, else in single quotes.
/// Characters keepalived would interpret inside the quoted script string are refused.
pub fn quote_arg(arg: &str) -> Result<String> {
    if arg.is_empty() {
        return Ok("''".into());
    }
    if arg.chars().any(|c| c == '\'' || c == '"' || c == '\\' || c.is_control()) {
        bail!("argument {arg:?} has a quote, backslash or control character that keepalived's script line cannot carry");
    }
    if arg.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=,@+%".contains(c)) {
        Ok(arg.to_string())
    } else {
        Ok(format!("'{arg}'"))
    }
}

/// The `vrrp_script` name of a service: `chk_` and the id with `-` as `_`.
pub fn script_name(s: &Service) -> String {
    format!("chk_{}", s.id.replace('-', "_"))
}

/// The keepalived file of one node: one `vrrp_script` block per service.
pub fn keepalived_file(services: &[&Service], opts: KeepalivedOptions) -> Result<String> {
    let mut out = String::from(
        "# vrrp_script blocks for consul-db-checks, written by gen-consul-services: do not edit.\n\
         # Reference them from a vrrp_instance with track_script { chk_... }.\n",
    );
    for s in services {
        let quoted = s.args.iter().map(|a| quote_arg(a)).collect::<Result<Vec<_>>>()?;
        out.push_str(&format!("\nvrrp_script {} {{\n", script_name(s)));
        out.push_str(&format!("    script \"{}\"\n", quoted.join(" ")));
        out.push_str(&format!("    interval {}\n", whole_seconds(s.interval, "interval", &s.id)?));
        out.push_str(&format!("    timeout {}\n", whole_seconds(s.timeout, "timeout", &s.id)?));
        out.push_str(&format!("    fall {}\n    rise {}\n", opts.fall, opts.rise));
        if let Some(w) = opts.weight {
            out.push_str(&format!("    weight {w}\n"));
        }
        out.push_str("}\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::inventory::parse_inventory;
    use super::super::plan::{plan, PlanOptions, DEFAULT_NAME_TEMPLATE};
    use super::*;

    fn services(warning_is_ok: bool) -> Vec<Service> {
        let (g, _) = parse_inventory(
            r#"[{"kind":"mysql","name":"main","port":3306,"nodes":["10.0.0.5"],"defaults_file":"/etc/consul.d/my check.cnf","meta":{"team":"dba"}}]"#,
        )
        .unwrap();
        plan(&g, &PlanOptions { bin_dir: "/usr/local/bin".into(), name_template: DEFAULT_NAME_TEMPLATE.into(), warning_is_ok }).unwrap()
    }

    #[test]
    fn consul_file_shape_and_no_script_field() {
        let s = services(false);
        let text = consul_file(&s[0]);
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
        // Deterministic key order.
        let keys: Vec<&String> = svc.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "tags", "address", "port", "meta", "checks"]);
        assert_eq!(consul_file(&s[0]), text);
    }

    #[test]
    fn keepalived_blocks_quote_safely() {
        let s = services(true);
        let refs: Vec<&Service> = s.iter().collect();
        let text = keepalived_file(&refs, KeepalivedOptions { fall: 2, rise: 3, weight: Some(-20) }).unwrap();
        assert!(text.contains("vrrp_script chk_w_3306_mysql_main {"), "{text}");
        assert!(text.contains("'/etc/consul.d/my check.cnf'"), "{text}");
        assert!(text.contains("--warning-exit-code 0\"\n"), "{text}");
        assert!(text.contains("    interval 10\n    timeout 5\n    fall 2\n    rise 3\n    weight -20\n"), "{text}");
        assert_eq!(quote_arg("").unwrap(), "''");
        assert!(quote_arg("a'b").is_err() && quote_arg("a\"b").is_err() && quote_arg("a\\b").is_err() && quote_arg("a\nb").is_err());
    }

    #[test]
    fn keepalived_needs_whole_seconds() {
        let mut s = services(true);
        s[0].interval = Duration::from_millis(2500);
        let e = keepalived_file(&[&s[0]], KeepalivedOptions { fall: 1, rise: 1, weight: None }).unwrap_err().to_string();
        assert!(e.contains("whole seconds") && e.contains("2500ms"), "{e}");
    }
}
