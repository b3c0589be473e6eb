//! The argv of each check the generator emits: one place per flag, and a test that every argv
//! parses with that check's own command line.

use super::inventory::GroupSpec;
use crate::duration::format_duration;
use crate::kinds::{Kind, Role};
use std::time::Duration;

/// Appends `flag value` when the value is set.
fn flag_value(a: &mut Vec<String>, flag: &str, value: Option<String>) {
    if let Some(v) = value {
        a.extend([flag.to_string(), v]);
    }
}

/// The argv of one node's check for one role; `for_keepalived` maps warning to exit 0;
/// `fault_after` is how long its caller takes to act on failures (keepalived: fall x interval);
/// `drain_file` is the operator's drain file of this service.
#[allow(clippy::too_many_arguments)]
pub fn check_args(
    g: &GroupSpec,
    role: Role,
    node: &str,
    port: u16,
    check_timeout: Duration,
    max_lag: Option<Duration>,
    bin_dir: &str,
    for_keepalived: bool,
    fault_after: Option<Duration>,
    drain_file: &str,
) -> Vec<String> {
    let exe = crate::checks::serving(g.kind, role).name;
    let mut a: Vec<String> =
        vec![format!("{}/{exe}", bin_dir.trim_end_matches('/')), "--host".into(), node.into(), "--port".into(), port.to_string()];
    flag_value(&mut a, "--defaults-file", g.defaults_file.clone());
    flag_value(&mut a, "--user", g.user.clone());
    flag_value(&mut a, "--password-file", g.password_file.clone());
    flag_value(&mut a, "--tls-ca", g.tls_ca.clone());
    flag_value(&mut a, "--tls-verify", g.tls_verify.map(|v| v.as_arg().to_string()));
    flag_value(&mut a, "--server-public-key", g.server_public_key.clone());
    if g.get_server_public_key {
        a.push("--get-server-public-key".into());
    }
    // The Sentinel guard serves both checks: a returning old master must not write nor serve reads.
    if g.kind == Kind::Redis && !g.sentinels.is_empty() {
        for s in &g.sentinels {
            flag_value(&mut a, "--sentinel", Some(s.clone()));
        }
        flag_value(&mut a, "--master-name", Some(g.master_name.clone().unwrap_or_else(|| g.name.clone())));
        flag_value(&mut a, "--sentinel-password-file", g.sentinel_password_file.clone());
        // How long after this check fails its caller stops sending writes here: the write check
        // warns when Sentinel's down-after-milliseconds is shorter than the partition rule needs.
        if role == Role::Write {
            flag_value(&mut a, "--fault-after", fault_after.map(format_duration));
        }
    }
    match role {
        Role::Write => flag_value(&mut a, "--min-replicas", g.min_replicas.map(|n| n.to_string())),
        Role::Read => {
            flag_value(&mut a, "--max-lag", max_lag.map(format_duration));
            if g.no_master_fallback {
                a.push("--no-master-fallback".into());
            }
            flag_value(&mut a, "--replica-port", g.replica_port.map(|p| p.to_string()));
            flag_value(&mut a, "--replica-user", g.replica_user.clone());
            flag_value(&mut a, "--replica-password-file", g.replica_password_file.clone());
            flag_value(&mut a, "--replica-defaults-file", g.replica_defaults_file.clone());
        }
    }
    for u in &g.repl_users {
        flag_value(&mut a, "--repl-user", Some(u.clone()));
    }
    if g.allow_read_only {
        a.push("--allow-read-only".into());
    }
    flag_value(&mut a, "--drain-file", Some(drain_file.to_string()));
    flag_value(&mut a, "--timeout", Some(format_duration(check_timeout)));
    // keepalived treats any non-zero exit as a fault: a warning (a master still serving) is 0 there.
    if for_keepalived {
        flag_value(&mut a, "--warning-exit-code", Some("0".into()));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::inventory::parse_inventory;
    use super::super::plan::{plan, PlanOptions};

    /// Parses `argv` (program path first) with the command line of the check it names.
    fn parse_with_own_check(argv: &[String]) -> Result<(), String> {
        let check = crate::executables::named(&argv[0]).ok_or_else(|| format!("unknown check {}", argv[0]))?;
        (check.command)().try_get_matches_from(argv).map(drop).map_err(|e| e.to_string())
    }

    /// Every flag the generator can emit, for both kinds and both roles, parses with the check's own
    /// clap definition: renaming a flag fails here, with no server running.
    #[test]
    fn every_emitted_argv_parses_with_its_check() {
        let inventory = r#"[
          {"kind":"redis","name":"test","port":6029,"nodes":["10.0.0.2","10.0.0.3"],"user":"monitor",
           "password_file":"/etc/consul.d/secrets/redis","tls_ca":"/etc/ssl/ca.pem","max_lag":"30s",
           "min_replicas":1,"no_master_fallback":true,"sentinels":["10.0.0.2:26379","10.0.0.3:26379"],
           "master_name":"mymaster","sentinel_password_file":"/etc/consul.d/secrets/sentinel",
           "interval":"15s","timeout":"5s","check_timeout":"3s"},
          {"kind":"mysql","name":"main","port":3306,"nodes":["10.0.0.5"],"user":"monitor",
           "defaults_file":"/etc/consul.d/secrets/my.cnf","password_file":"/etc/consul.d/secrets/mysql",
           "repl_users":["repl","repl2"],"max_lag":120,"min_replicas":1,"replica_port":3307,
           "replica_user":"probe","replica_password_file":"/etc/consul.d/secrets/probe",
           "replica_defaults_file":"/etc/consul.d/secrets/probe.cnf","allow_read_only":true,
           "no_master_fallback":true,"tls_ca":"/etc/mysql/ca.pem","tls_verify":"ca"},
          {"kind":"mysql","name":"keyed","port":3307,"nodes":["10.0.0.6"],"server_public_key":"/etc/mysql/public_key.pem"},
          {"kind":"mysql","name":"optin","port":3308,"nodes":["10.0.0.7"],"get_server_public_key":true}
        ]"#;
        let (groups, _) = parse_inventory(inventory).unwrap();
        let opts = PlanOptions::default();
        let services = plan(&groups, &opts).unwrap();
        assert_eq!(services.len(), 10);
        let all: Vec<String> = services.iter().flat_map(|s| s.args.clone()).collect();
        for flag in ["--tls-verify", "--server-public-key", "--get-server-public-key"] {
            assert!(all.iter().any(|a| a == flag), "{flag} is emitted");
        }
        for s in &services {
            for argv in [&s.args, &s.vrrp_args] {
                parse_with_own_check(argv).unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
            }
            assert!(s.vrrp_args.ends_with(&["--warning-exit-code".to_string(), "0".to_string()]), "{:?}", s.vrrp_args);
            if s.kind == crate::kinds::Kind::Redis && s.role == crate::kinds::Role::Write {
                let after = |a: &[String]| a.iter().position(|x| x == "--fault-after").map(|i| a[i + 1].clone());
                assert_eq!(after(&s.vrrp_args).as_deref(), Some("1s"), "keepalived: fall 1 x interval 1s");
                assert_eq!(after(&s.args), None, "Consul: a partition is detected by the agents' gossip, not the check");
            }
        }
    }
}
