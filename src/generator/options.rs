//! The options an inventory passes to a group's checks, one typed struct per kind. Each field is
//! named as the checks' own clap argument (`max_lag` is `--max-lag`): the flag's name, and which of
//! the kind's two checks takes it, are read from the check's command line, never written here.
//! Adding an option the generator passes is one field in its kind's struct, beside the check's
//! `Args`. The fields' order is the order of the generated argv.

use super::inventory::DurationSpec;
use crate::checks::Executable;
use crate::duration::format_duration;
use crate::kinds::Kind;
use crate::mysql_checks::cluster::Replication;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// What one option puts on a check's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rendered {
    /// Nothing: not set.
    Absent,
    /// The flag alone (`--no-master-fallback`).
    Flag,
    /// The flag once per value (`--sentinel A --sentinel B`).
    Values(Vec<String>),
}

/// A value an inventory option holds, as the check reads it: validated and in canonical form
/// (`field` names the option in errors).
pub trait ArgValue {
    /// Its command-line form.
    fn render(&self, field: &str) -> Result<Rendered>;
}

impl ArgValue for bool {
    fn render(&self, _: &str) -> Result<Rendered> {
        Ok(if *self { Rendered::Flag } else { Rendered::Absent })
    }
}

impl<T: ArgValue> ArgValue for Option<T> {
    fn render(&self, field: &str) -> Result<Rendered> {
        self.as_ref().map_or(Ok(Rendered::Absent), |v| v.render(field))
    }
}

impl<T: ArgValue> ArgValue for Vec<T> {
    fn render(&self, field: &str) -> Result<Rendered> {
        let mut values = Vec::new();
        for v in self {
            if let Rendered::Values(vs) = v.render(field)? {
                values.extend(vs);
            }
        }
        Ok(if values.is_empty() { Rendered::Absent } else { Rendered::Values(values) })
    }
}

impl ArgValue for String {
    fn render(&self, _: &str) -> Result<Rendered> {
        Ok(Rendered::Values(vec![self.clone()]))
    }
}

/// Values whose command-line form is their `Display`.
macro_rules! displayed_arg {
    ($($t:ty),*) => {$(
        impl ArgValue for $t {
            fn render(&self, _: &str) -> Result<Rendered> {
                Ok(Rendered::Values(vec![self.to_string()]))
            }
        }
    )*};
}

displayed_arg!(u32, u64, crate::mysql_checks::cluster::Writers);

/// Durations in Consul's form (`30s`, `2m`), whether the inventory wrote `120` or `"2m"`.
impl ArgValue for DurationSpec {
    fn render(&self, field: &str) -> Result<Rendered> {
        let d = self.get().map_err(|e| anyhow!("{field}: {e}"))?;
        Ok(Rendered::Values(vec![format_duration(d)]))
    }
}

impl ArgValue for Duration {
    fn render(&self, _: &str) -> Result<Rendered> {
        Ok(Rendered::Values(vec![format_duration(*self)]))
    }
}

impl ArgValue for Replication {
    fn render(&self, _: &str) -> Result<Rendered> {
        Ok(Rendered::Values(vec![self.as_arg().to_string()]))
    }
}

impl ArgValue for crate::mysql_checks::auth::TlsVerify {
    fn render(&self, _: &str) -> Result<Rendered> {
        Ok(Rendered::Values(vec![self.as_arg().to_string()]))
    }
}

/// A size in bytes, as a number or with a K, M or G suffix (`"16MB"`); rendered as the number.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// A number of bytes.
    Bytes(u64),
    /// `512k`, `16MB`.
    Text(String),
}

impl ArgValue for SizeSpec {
    fn render(&self, field: &str) -> Result<Rendered> {
        let n = match self {
            SizeSpec::Bytes(n) => *n,
            SizeSpec::Text(t) => crate::cli::parse_bytes(t).map_err(|e| anyhow!("{field}: {e}"))?,
        };
        Ok(Rendered::Values(vec![n.to_string()]))
    }
}

/// A file holding a secret (or a key, a CA): an absolute path, never the secret itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct SecretFile(pub String);

impl ArgValue for SecretFile {
    fn render(&self, field: &str) -> Result<Rendered> {
        if !self.0.starts_with('/') {
            bail!("{field} must be the absolute path of a file holding the secret; this value looks like a literal password");
        }
        Ok(Rendered::Values(vec![self.0.clone()]))
    }
}

/// A TCP port, 1-65535.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(transparent)]
pub struct Port(pub u64);

impl ArgValue for Port {
    fn render(&self, field: &str) -> Result<Rendered> {
        if self.0 == 0 || self.0 > 65535 {
            bail!("{field} {} is out of range (1-65535)", self.0);
        }
        Ok(Rendered::Values(vec![self.0.to_string()]))
    }
}

/// A server as `HOST:PORT`.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct HostPort(pub String);

impl ArgValue for HostPort {
    fn render(&self, _: &str) -> Result<Rendered> {
        crate::cli::parse_host_port(&self.0).map_err(|e| anyhow!("sentinel {e}"))?;
        Ok(Rendered::Values(vec![self.0.clone()]))
    }
}

/// An option with a value per node, `{"10.0.0.2": "redis-b.internal:6379"}`: each node's checks
/// get that node's value, if it has one. Which nodes it may name is checked against the group's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct PerNode {
    /// The value of each node named.
    pub values: std::collections::BTreeMap<String, HostPort>,
    /// The node whose checks are being written.
    #[serde(skip)]
    node: Option<String>,
}

impl PerNode {
    /// The same values, rendered for `node`'s checks.
    fn for_node(&self, node: &str) -> PerNode {
        PerNode { values: self.values.clone(), node: Some(node.to_string()) }
    }
}

impl ArgValue for PerNode {
    fn render(&self, field: &str) -> Result<Rendered> {
        for (node, value) in &self.values {
            crate::cli::parse_host_port(&value.0).map_err(|e| anyhow!("{field} of {node}: {e}"))?;
        }
        Ok(match self.node.as_ref().and_then(|n| self.values.get(n)) {
            Some(value) => Rendered::Values(vec![value.0.clone()]),
            None => Rendered::Absent,
        })
    }
}

/// Declares one kind's options: the struct the inventory is read into, strictly (an unknown
/// field is an error), and the list of its fields with their rendered values, in order.
macro_rules! check_options {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The inventory fields (and check arguments) it has, in argv order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Each option, named as the checks' argument, with its command-line form.
            pub fn rendered(&self) -> Result<Vec<(&'static str, Rendered)>> {
                Ok(vec![$((stringify!($field), self.$field.render(stringify!($field))?)),*])
            }
        }
    };
}

check_options! {
    /// The options of a Redis group's checks.
    RedisOptions {
        /// `--user`: the ACL user.
        user: Option<String>,
        /// `--password-file`.
        password_file: Option<SecretFile>,
        /// `--tls-ca`: enables TLS.
        tls_ca: Option<SecretFile>,
        /// `--tls`: TLS with the system's CA bundle.
        tls: bool,
        /// `--tls-cert` (with `tls_key`): a client certificate for mutual TLS.
        tls_cert: Option<SecretFile>,
        /// `--tls-key`: its key.
        tls_key: Option<SecretFile>,
        /// `--sentinel` (repeated): the split-brain guard.
        sentinels: Vec<HostPort>,
        /// `--master-name` (default: the group name).
        master_name: Option<String>,
        /// `--announce`, per node: how the Sentinels name a node whose address they know it by
        /// differs from the inventory's (`replica-announce-ip`, another network).
        announce: PerNode,
        /// `--sentinel-password-file`.
        sentinel_password_file: Option<SecretFile>,
        /// `--sentinel-tls`: the Sentinels over TLS with the system's CA bundle.
        sentinel_tls: bool,
        /// `--sentinel-tls-ca`: the Sentinels over TLS (the server's TLS options do not apply to them).
        sentinel_tls_ca: Option<SecretFile>,
        /// `--sentinel-tls-cert` (with `sentinel_tls_key`): a client certificate for the Sentinels.
        sentinel_tls_cert: Option<SecretFile>,
        /// `--sentinel-tls-key`: its key.
        sentinel_tls_key: Option<SecretFile>,
        /// `--fault-after`: set by the generator for keepalived's write scripts, never by the inventory.
        #[serde(skip)]
        fault_after: Option<Duration>,
        /// `--min-replicas` (write check).
        min_replicas: Option<u32>,
        /// `--max-lag` (read check).
        max_lag: Option<DurationSpec>,
        /// `--no-master-fallback` (read check).
        no_master_fallback: bool,
        /// `--max-lag-bytes` (read check): bytes behind the master's replication stream.
        max_lag_bytes: Option<SizeSpec>,
    }
}

check_options! {
    /// The options of a MySQL or MariaDB group's checks (of every MySQL kind: which kinds have the
    /// options not all of them have is [`ONLY_FOR`]).
    MysqlOptions {
        /// `--defaults-file`: a my.cnf `[client]` group.
        defaults_file: Option<SecretFile>,
        /// `--user`.
        user: Option<String>,
        /// `--password-file`.
        password_file: Option<SecretFile>,
        /// `--tls-ca`: enables TLS.
        tls_ca: Option<SecretFile>,
        /// `--tls-verify` (`full` or `ca`).
        tls_verify: Option<crate::mysql_checks::auth::TlsVerify>,
        /// `--tls`: TLS with the system's CA bundle.
        tls: bool,
        /// `--tls-cert` (with `tls_key`): a client certificate for mutual TLS.
        tls_cert: Option<SecretFile>,
        /// `--tls-key`: its key.
        tls_key: Option<SecretFile>,
        /// `--server-public-key`: the server's pinned RSA key.
        server_public_key: Option<SecretFile>,
        /// `--get-server-public-key`: insecure, trusts the key the server sends.
        get_server_public_key: bool,
        /// `--min-replicas` (write check).
        min_replicas: Option<u32>,
        /// `--max-lag` (read check).
        max_lag: Option<DurationSpec>,
        /// `--no-master-fallback` (read check).
        no_master_fallback: bool,
        /// `--replica-port` (read check).
        replica_port: Option<Port>,
        /// `--replica-user` (read check).
        replica_user: Option<String>,
        /// `--replica-password-file` (read check).
        replica_password_file: Option<SecretFile>,
        /// `--replica-defaults-file` (read check).
        replica_defaults_file: Option<SecretFile>,
        /// `--repl-user` (repeated).
        repl_users: Vec<String>,
        /// `--allow-read-only`.
        allow_read_only: bool,
        /// `--heartbeat-table` (read check): lag as the age of a pt-heartbeat row.
        heartbeat_table: Option<String>,
        /// `--replication`: set by the generator from the group's kind, never by the inventory.
        #[serde(skip)]
        replication: Option<Replication>,
        /// `--galera-writers` (`one` or `all`): a Galera cluster's write rule.
        galera_writers: Option<crate::mysql_checks::cluster::Writers>,
        /// `--group-writers` (`all` or `one`): a multi-primary Group Replication group's write rule.
        group_writers: Option<crate::mysql_checks::cluster::Writers>,
        /// `--max-recv-queue` (read check): a Galera or Group Replication member's backlog limit.
        max_recv_queue: Option<u64>,
        /// `--galera-donor-reads` (read check): a Galera state-transfer donor serves reads.
        galera_donor_reads: bool,
    }
}

/// The MySQL options that not every MySQL kind has, and the kinds that have them (every other
/// MySQL option is every MySQL kind's: the login, TLS, `allow_read_only`, `no_master_fallback`).
const ONLY_FOR: &[(&str, &[Kind])] = &[
    ("min_replicas", &[Kind::Mysql]),
    ("max_lag", &[Kind::Mysql]),
    ("replica_port", &[Kind::Mysql]),
    ("replica_user", &[Kind::Mysql]),
    ("replica_password_file", &[Kind::Mysql]),
    ("replica_defaults_file", &[Kind::Mysql]),
    ("repl_users", &[Kind::Mysql]),
    ("heartbeat_table", &[Kind::Mysql]),
    ("galera_writers", &[Kind::Galera]),
    ("galera_donor_reads", &[Kind::Galera]),
    ("group_writers", &[Kind::GroupReplication]),
    ("max_recv_queue", &[Kind::Galera, Kind::GroupReplication]),
];

/// A group's check options, typed by its kind.
#[derive(Clone, Debug)]
pub enum CheckOptions {
    /// A Redis group's.
    Redis(RedisOptions),
    /// A MySQL group's.
    Mysql(MysqlOptions),
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions::Redis(RedisOptions::default())
    }
}

impl CheckOptions {
    /// The fields a `kind` group may set.
    pub fn fields(kind: Kind) -> Vec<&'static str> {
        match kind {
            Kind::Redis => RedisOptions::FIELDS.to_vec(),
            Kind::Mysql | Kind::Galera | Kind::GroupReplication => MysqlOptions::FIELDS
                .iter()
                .copied()
                .filter(|field| ONLY_FOR.iter().find(|(name, _)| name == field).map_or(true, |(_, kinds)| kinds.contains(&kind)))
                .collect(),
        }
    }

    /// Reads the options of a `kind` group from the inventory fields that are not the group's own.
    /// A field of other kinds' checks is "only for" those kinds.
    pub fn parse(kind: Kind, fields: Map<String, Value>) -> Result<CheckOptions> {
        for key in fields.keys() {
            if !Self::fields(kind).contains(&key.as_str()) {
                let others: Vec<&str> =
                    Kind::ALL.into_iter().filter(|k| Self::fields(*k).contains(&key.as_str())).map(Kind::as_str).collect();
                if let Some((last, first)) = others.split_last() {
                    let kinds = if first.is_empty() { last.to_string() } else { format!("{} and {last}", first.join(", ")) };
                    bail!("{key} is only for {kinds} groups");
                }
            }
        }
        let value = Value::Object(fields);
        let options = match kind {
            Kind::Redis => CheckOptions::Redis(serde_json::from_value(value)?),
            Kind::Mysql | Kind::Galera | Kind::GroupReplication => {
                // The checks insist on what the group runs.
                let replication = match kind {
                    Kind::Galera => Replication::Galera,
                    Kind::GroupReplication => Replication::GroupReplication,
                    _ => Replication::Async,
                };
                CheckOptions::Mysql(MysqlOptions { replication: Some(replication), ..serde_json::from_value(value)? })
            }
        };
        options.validate()?;
        Ok(options)
    }

    /// The rules between options, and every value's own (checked once, when the inventory is read).
    fn validate(&self) -> Result<()> {
        match self {
            CheckOptions::Mysql(m) if m.server_public_key.is_some() && m.get_server_public_key => {
                bail!("server_public_key and get_server_public_key: pin the key, or trust what the server sends, not both")
            }
            CheckOptions::Redis(r) if r.sentinels.is_empty() && !r.announce.values.is_empty() => {
                bail!("announce says how the Sentinels name each node: it needs sentinels")
            }
            _ => {}
        }
        self.rendered("", "", None).map(drop)
    }

    /// Refuses a per-node option that names a node outside `nodes` (the group's).
    pub fn check_nodes(&self, nodes: &[String]) -> Result<()> {
        if let CheckOptions::Redis(r) = self {
            if let Some(other) = r.announce.values.keys().find(|n| !nodes.contains(n)) {
                bail!("announce names {other}, which is not a node of the group");
            }
        }
        Ok(())
    }

    /// The options as the group `group`'s checks on `node` get them; `fault_after` is how long the
    /// caller takes to act on a failed write check (keepalived's write scripts only). The Sentinel
    /// guard's options go with `--sentinel` alone, `--master-name` defaulting to the group name.
    fn rendered(&self, group: &str, node: &str, fault_after: Option<Duration>) -> Result<Vec<(&'static str, Rendered)>> {
        match self {
            CheckOptions::Redis(r) if r.sentinels.is_empty() => {
                let alone = RedisOptions {
                    master_name: None,
                    announce: PerNode::default(),
                    sentinel_password_file: None,
                    sentinel_tls: false,
                    sentinel_tls_ca: None,
                    sentinel_tls_cert: None,
                    sentinel_tls_key: None,
                    ..r.clone()
                };
                alone.rendered()
            }
            CheckOptions::Redis(r) => {
                let guarded = RedisOptions {
                    master_name: Some(r.master_name.clone().unwrap_or_else(|| group.to_string())),
                    announce: r.announce.for_node(node),
                    fault_after,
                    ..r.clone()
                };
                guarded.rendered()
            }
            CheckOptions::Mysql(m) => m.rendered(),
        }
    }

    /// The arguments `check` on `node` gets: each option its command line has, in order, as
    /// `--flag value`.
    pub fn argv_for(&self, check: &Executable, group: &str, node: &str, fault_after: Option<Duration>) -> Result<Vec<String>> {
        let command = (check.command)();
        let mut argv = Vec::new();
        for (id, value) in self.rendered(group, node, fault_after)? {
            let Some(long) = command.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_long()) else { continue };
            match value {
                Rendered::Absent => {}
                Rendered::Flag => argv.push(format!("--{long}")),
                Rendered::Values(values) => {
                    for v in values {
                        argv.extend([format!("--{long}"), v]);
                    }
                }
            }
        }
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option of a kind is an argument of at least one of that kind's checks: a field named
    /// otherwise would never reach a check.
    #[test]
    fn every_option_is_an_argument_of_its_kinds_checks() {
        for kind in Kind::ALL {
            let commands: Vec<clap::Command> = crate::checks::node_checks()
                .filter(|c| c.subject == crate::checks::Subject::Server(kind.server()))
                .map(|c| (c.command)())
                .collect();
            for field in CheckOptions::fields(kind) {
                let found = commands.iter().any(|c| c.get_arguments().any(|a| a.get_id() == field && a.get_long().is_some()));
                assert!(found, "{kind:?} option {field} is no argument of the {kind:?} checks");
            }
        }
    }

    #[test]
    fn options_of_another_kind_and_unknown_ones_are_refused() {
        let fields = |json: &str| serde_json::from_str::<Map<String, Value>>(json).unwrap();
        let err = |kind, json: &str| format!("{:#}", CheckOptions::parse(kind, fields(json)).unwrap_err());
        assert_eq!(err(Kind::Mysql, r#"{"sentinels":["a:1"]}"#), "sentinels is only for redis groups");
        assert_eq!(err(Kind::Redis, r#"{"repl_users":["repl"]}"#), "repl_users is only for mysql groups");
        assert_eq!(err(Kind::Galera, r#"{"heartbeat_table":"hb.t"}"#), "heartbeat_table is only for mysql groups");
        assert_eq!(err(Kind::Mysql, r#"{"galera_writers":"all"}"#), "galera_writers is only for galera groups");
        assert_eq!(err(Kind::Mysql, r#"{"max_recv_queue":5}"#), "max_recv_queue is only for galera and group-replication groups");
        assert_eq!(err(Kind::Galera, r#"{"group_writers":"one"}"#), "group_writers is only for group-replication groups");
        assert!(err(Kind::Galera, r#"{"replication":"async"}"#).contains("unknown field `replication`"), "the generator's own");
        assert!(err(Kind::Redis, r#"{"no_such":1}"#).contains("unknown field `no_such`"));
        assert!(err(Kind::Redis, r#"{"fault_after":"1s"}"#).contains("unknown field `fault_after`"), "the generator's own");
        assert!(err(Kind::Mysql, r#"{"password_file":"pw"}"#).starts_with("password_file must be the absolute path"));
        assert_eq!(err(Kind::Mysql, r#"{"replica_port":70000}"#), "replica_port 70000 is out of range (1-65535)");
        assert!(err(Kind::Redis, r#"{"sentinels":["nohostport"]}"#).starts_with("sentinel "));
    }
}
