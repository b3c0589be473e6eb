//! The argv of each check the generator emits, built from the group's options and the check's own
//! command line, and a test that every argv parses with it.

use super::inventory::GroupSpec;
use crate::checks::Executable;
use crate::duration::format_duration;
use anyhow::{anyhow, Result};
use std::time::Duration;

/// The argv of one node's `check` for one service of group `g`: the node, the group's options
/// that this check takes (from the check's own command line, [`super::options`]), the drain file,
/// the deadline; `fault_after` is how long its caller takes to act on failures (keepalived's write
/// scripts: fall x interval); `for_keepalived` maps warning to exit 0. The argv is parsed with the
/// check's own command line before it is written: a value the check would refuse is refused here.
#[allow(clippy::too_many_arguments)]
pub fn check_args(
    g: &GroupSpec,
    check: &Executable,
    node: &str,
    port: u16,
    check_timeout: Duration,
    bin_dir: &str,
    for_keepalived: bool,
    fault_after: Option<Duration>,
    drain_file: &str,
) -> Result<Vec<String>> {
    let mut a: Vec<String> =
        vec![format!("{}/{}", bin_dir.trim_end_matches('/'), check.name), "--host".into(), node.into(), "--port".into(), port.to_string()];
    a.extend(g.options.argv_for(check, &g.name, node, fault_after)?);
    a.extend(["--drain-file".into(), drain_file.to_string(), "--timeout".into(), format_duration(check_timeout)]);
    // keepalived treats any non-zero exit as a fault: a warning (a master still serving) is 0 there.
    if for_keepalived {
        a.extend(["--warning-exit-code".into(), "0".into()]);
    }
    (check.command)().try_get_matches_from(&a).map_err(|e| anyhow!("{} would refuse its arguments: {}", check.name, e.render()))?;
    Ok(a)
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
           "tls_cert":"/etc/ssl/client.pem","tls_key":"/etc/ssl/client.key","max_lag_bytes":"16MB",
           "min_replicas":1,"no_master_fallback":true,"sentinels":["10.0.0.2:26379","10.0.0.3:26379"],
           "master_name":"mymaster","sentinel_password_file":"/etc/consul.d/secrets/sentinel","announce":{"10.0.0.3":"redis-b.internal:6029"},
           "sentinel_tls_ca":"/etc/ssl/sentinel-ca.pem","sentinel_tls_cert":"/etc/ssl/s.pem","sentinel_tls_key":"/etc/ssl/s.key",
           "interval":"15s","timeout":"5s","check_timeout":"3s"},
          {"kind":"mysql","name":"main","port":3306,"nodes":["10.0.0.5"],"user":"monitor",
           "defaults_file":"/etc/consul.d/secrets/my.cnf","password_file":"/etc/consul.d/secrets/mysql",
           "repl_users":["repl","repl2"],"max_lag":120,"min_replicas":1,"replica_port":3307,
           "replica_user":"probe","replica_password_file":"/etc/consul.d/secrets/probe",
           "replica_defaults_file":"/etc/consul.d/secrets/probe.cnf","allow_read_only":true,
           "no_master_fallback":true,"tls_ca":"/etc/mysql/ca.pem","tls_verify":"ca"},
          {"kind":"galera","name":"cluster","port":3306,"nodes":["10.0.0.8"],"galera_writers":"all","max_recv_queue":16,
           "galera_donor_reads":true,"allow_read_only":true},
          {"kind":"group-replication","name":"group","port":3306,"nodes":["10.0.0.9"],"group_writers":"one","max_recv_queue":16},
          {"kind":"mysql","name":"keyed","port":3307,"nodes":["10.0.0.6"],"server_public_key":"/etc/mysql/public_key.pem"},
          {"kind":"mysql","name":"optin","port":3308,"nodes":["10.0.0.7"],"get_server_public_key":true}
        ]"#;
        let (groups, _) = parse_inventory(inventory).unwrap();
        let opts = PlanOptions::default();
        let services = plan(&groups, &opts).unwrap();
        assert_eq!(services.len(), 14);
        let all: Vec<String> = services.iter().flat_map(|s| s.args.clone()).collect();
        for flag in [
            "--tls-verify",
            "--server-public-key",
            "--get-server-public-key",
            "--tls-cert",
            "--tls-key",
            "--max-lag-bytes",
            "--sentinel-tls-ca",
            "--sentinel-tls-key",
            "--announce",
            "--galera-writers",
            "--galera-donor-reads",
            "--group-writers",
            "--max-recv-queue",
        ] {
            assert!(all.iter().any(|a| a == flag), "{flag} is emitted");
        }
        for s in &services {
            for argv in [&s.args, &s.vrrp_args] {
                parse_with_own_check(argv).unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
            }
            assert!(s.vrrp_args.ends_with(&["--warning-exit-code".to_string(), "0".to_string()]), "{:?}", s.vrrp_args);
            // A per-node option goes to that node's checks only.
            let announce = s.args.iter().position(|a| a == "--announce").map(|i| s.args[i + 1].as_str());
            assert_eq!(announce, (s.node == "10.0.0.3").then_some("redis-b.internal:6029"), "{:?}", s.args);
            // Each MySQL kind's checks insist on the replication the group runs.
            let replication = s.args.iter().position(|a| a == "--replication").map(|i| s.args[i + 1].as_str());
            let expected = match s.kind {
                crate::kinds::Kind::Redis => None,
                crate::kinds::Kind::Mysql => Some("async"),
                crate::kinds::Kind::Galera => Some("galera"),
                crate::kinds::Kind::GroupReplication => Some("group-replication"),
            };
            assert_eq!(replication, expected, "{:?}", s.args);
            if s.kind == crate::kinds::Kind::Redis && s.role == crate::kinds::Role::Write {
                let after = |a: &[String]| a.iter().position(|x| x == "--fault-after").map(|i| a[i + 1].clone());
                assert_eq!(after(&s.vrrp_args).as_deref(), Some("1s"), "keepalived: fall 1 x interval 1s");
                assert_eq!(after(&s.args), None, "Consul: a partition is detected by the agents' gossip, not the check");
            }
        }
    }
}
