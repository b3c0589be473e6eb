//! Parses `INFO replication` (and the `loading` flag of `INFO persistence`) into replication facts.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::collections::HashMap;

/// The role a Redis server reports; a replica carries its view of the link to its master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `role:master`.
    Master,
    /// `role:slave` (Redis and Valkey keep that word).
    Replica(MasterLink),
}

/// A replica's view of its link to its master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterLink {
    /// `master_host:master_port`.
    pub master: String,
    /// `master_link_status:up`.
    pub link_up: bool,
    /// `master_last_io_seconds_ago` (-1 while the link is down, then `None`).
    pub last_io_seconds_ago: Option<i64>,
    /// `master_sync_in_progress:1`: the initial full sync is still running.
    pub sync_in_progress: bool,
    /// `master_link_down_since_seconds`, present while the link is down.
    pub link_down_since_seconds: Option<i64>,
    /// `slave_repl_offset`: how far into its master's replication stream it has processed.
    pub processed_offset: Option<i64>,
}

/// A replica as its master lists it (`slaveN:ip=...,port=...,state=online,offset=...,lag=...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedReplica {
    /// `ip:port` of the replica.
    pub address: String,
    /// `online`, `wait_bgsave`, `send_bulk`, ...
    pub state: String,
    /// Seconds since the replica's last acknowledgement (Redis 2.8+).
    pub lag_seconds: Option<i64>,
    /// `offset=`: the replication offset the replica last acknowledged (every second).
    pub offset: Option<i64>,
}

impl ConnectedReplica {
    /// Whether the master considers the replica caught up and streaming.
    pub fn is_online(&self) -> bool {
        self.state == "online"
    }
}

/// Everything the Redis checks decide on, read from one INFO reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationInfo {
    /// Master, or replica with its link.
    pub role: Role,
    /// For a master (or a replica with sub-replicas): the replicas it lists.
    pub replicas: Vec<ConnectedReplica>,
    /// `loading:1` (or `async_loading:1`): the dataset is being loaded; commands answer `-LOADING`.
    pub loading: bool,
    /// `valkey_version` or `redis_version`, when the reply had the server section.
    pub version: Option<String>,
    /// `server_name` (`valkey`), when the server says it.
    pub server_name: Option<String>,
    /// `master_repl_offset`: how far its replication stream has gone (a master's: what it wrote).
    pub repl_offset: Option<i64>,
    /// `min_slaves_good_slaves`: present only when the master enforces `min-replicas-to-write`
    /// (it then refuses writes with too few replicas acknowledging within `min-replicas-max-lag`).
    pub min_replicas_good: Option<i64>,
}

/// Splits INFO text (CRLF or LF lines, `# Section` headers) into `field -> value`.
pub fn parse_fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .collect()
}

fn int(fields: &HashMap<&str, &str>, key: &str) -> Result<Option<i64>> {
    fields.get(key).map(|v| v.trim().parse::<i64>().map_err(|_| anyhow!("{key}:{v} is not a number"))).transpose()
}

fn flag(fields: &HashMap<&str, &str>, key: &str) -> Result<bool> {
    Ok(int(fields, key)?.is_some_and(|v| v != 0))
}

/// Parses a `slaveN` value: `ip=10.0.0.3,port=6029,state=online,offset=123,lag=0`.
fn parse_replica(value: &str) -> Result<ConnectedReplica> {
    let kv: HashMap<&str, &str> = value.split(',').filter_map(|p| p.split_once('=')).collect();
    let ip = kv.get("ip").ok_or_else(|| anyhow!("no ip= in '{value}'"))?;
    let port = kv.get("port").ok_or_else(|| anyhow!("no port= in '{value}'"))?;
    let state = kv.get("state").ok_or_else(|| anyhow!("no state= in '{value}'"))?;
    let number = |key: &str| kv.get(key).map(|v| v.parse::<i64>().map_err(|_| anyhow!("{key}={v} is not a number"))).transpose();
    Ok(ConnectedReplica {
        address: format!("{ip}:{port}"),
        state: state.to_string(),
        lag_seconds: number("lag")?,
        offset: number("offset")?,
    })
}

impl ReplicationInfo {
    /// Reads the facts from INFO text; unknown fields are ignored, missing or malformed ones are errors.
    pub fn parse(text: &str) -> Result<Self> {
        let fields = parse_fields(text);
        let role = match fields.get("role").map(|r| r.trim()) {
            Some("master") => Role::Master,
            Some("slave") | Some("replica") => {
                let host = fields.get("master_host").context("a replica without master_host")?;
                let port = fields.get("master_port").context("a replica without master_port")?;
                let port: u16 = port.trim().parse().map_err(|_| anyhow!("master_port:{port} is not a port"))?;
                Role::Replica(MasterLink {
                    master: crate::cli::Address::Tcp { host: host.to_string(), port }.to_string(),
                    link_up: fields.get("master_link_status").map(|s| s.trim()) == Some("up"),
                    last_io_seconds_ago: int(&fields, "master_last_io_seconds_ago")?.filter(|v| *v >= 0),
                    // Fail closed: without it, a replica still loading its first copy would look synced.
                    sync_in_progress: match fields.get("master_sync_in_progress") {
                        Some(_) => flag(&fields, "master_sync_in_progress")?,
                        None => bail!("a replica without master_sync_in_progress, which the decision needs"),
                    },
                    link_down_since_seconds: int(&fields, "master_link_down_since_seconds")?.filter(|v| *v >= 0),
                    processed_offset: int(&fields, "slave_repl_offset")?,
                })
            }
            Some(other) => bail!("unexpected role:{other}"),
            None => bail!("the reply has no role: field (is this a Redis server?)"),
        };
        let mut numbered: Vec<(u32, &str)> =
            fields.iter().filter_map(|(k, v)| k.strip_prefix("slave").and_then(|n| n.parse::<u32>().ok()).map(|n| (n, *v))).collect();
        numbered.sort_unstable();
        let replicas = numbered
            .into_iter()
            .map(|(n, v)| parse_replica(v).with_context(|| format!("cannot read slave{n}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(ReplicationInfo {
            role,
            replicas,
            // Fail closed: a reply without the loading flag could be a server loading its dataset.
            loading: match fields.get("loading") {
                Some(_) => flag(&fields, "loading")? || flag(&fields, "async_loading")?,
                None => bail!("the reply has no loading: field (INFO persistence), which the decision needs"),
            },
            // Valkey keeps redis_version frozen at 7.2.4: its own version is valkey_version.
            version: fields.get("valkey_version").or(fields.get("redis_version")).map(|v| v.to_string()),
            server_name: fields.get("server_name").map(|v| v.to_string()),
            min_replicas_good: int(&fields, "min_slaves_good_slaves")?,
            repl_offset: int(&fields, "master_repl_offset")?,
        })
    }

    /// A replica's link to its master; `None` for a master.
    pub fn link(&self) -> Option<&MasterLink> {
        match &self.role {
            Role::Master => None,
            Role::Replica(link) => Some(link),
        }
    }

    /// The replicas the master lists as `state=online`.
    pub fn online_replicas(&self) -> impl Iterator<Item = &ConnectedReplica> {
        self.replicas.iter().filter(|r| r.is_online())
    }

    /// The facts as shown in output.
    pub fn facts(&self) -> crate::report::Facts {
        let mut f = crate::report::Facts::new();
        f.set("role", if self.role == Role::Master { "master" } else { "slave" });
        if let Some(link) = self.link() {
            f.set("master", link.master.as_str())
                .set("master_link_status", if link.link_up { "up" } else { "down" })
                .set("master_last_io_seconds_ago", link.last_io_seconds_ago)
                .set("master_sync_in_progress", link.sync_in_progress);
            if let Some(s) = link.link_down_since_seconds {
                f.set("master_link_down_since_seconds", s);
            }
        }
        let replicas: Vec<_> = self
            .replicas
            .iter()
            .map(|r| json!({"address": r.address, "state": r.state, "lag_seconds": r.lag_seconds, "offset": r.offset}))
            .collect();
        f.set("connected_replicas", replicas).set("loading", self.loading);
        if self.role == Role::Master {
            let enforced = match self.min_replicas_good {
                Some(good) => format!("enforced, {good} replica(s) acknowledging in time"),
                None => "not set: a cut-off master acknowledges writes until it gives up the write service".into(),
            };
            f.set("min_replicas_to_write", enforced);
        }
        if let Some(name) = &self.server_name {
            f.set("server_name", name.as_str());
        }
        if let Some(v) = &self.version {
            f.set(if self.server_name.as_deref() == Some("valkey") { "valkey_version" } else { "redis_version" }, v.as_str());
        }
        f
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! `INFO replication` + `INFO persistence` replies of redis-server 7.0.15 (Debian 12), CRLF as on
    //! the wire. The files in `testdata/` are verbatim captures; the two constants below are those
    //! captures with the fields of their state changed (states too brief to catch by hand).

    /// A master with two online replicas (captured).
    pub const MASTER_TWO_REPLICAS: &str = include_str!("testdata/master_two_replicas.txt");
    /// A healthy replica (captured).
    pub const REPLICA_UP: &str = include_str!("testdata/replica_up.txt");
    /// A replica one second after its master was killed (captured).
    pub const REPLICA_LINK_DOWN: &str = include_str!("testdata/replica_link_down.txt");

    /// A master whose replicas are gone.
    pub const MASTER_ALONE: &str = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_repl_offset:0\r\n\r\n# Persistence\r\nloading:0\r\nasync_loading:0\r\n";

    /// A replica still receiving its first full sync.
    pub const REPLICA_SYNCING: &str = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:41000\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:1\r\nslave_read_repl_offset:1\r\nslave_repl_offset:1\r\nmaster_sync_total_bytes:-1\r\nmaster_sync_read_bytes:123\r\nmaster_sync_left_bytes:-124\r\nmaster_sync_perc:-0.00\r\nmaster_sync_last_io_seconds_ago:0\r\nmaster_link_down_since_seconds:-1\r\nslave_priority:100\r\nconnected_slaves:0\r\n\r\n# Persistence\r\nloading:0\r\nasync_loading:0\r\n";
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    #[test]
    fn master_with_replicas() {
        let info = ReplicationInfo::parse(MASTER_TWO_REPLICAS).unwrap();
        assert_eq!(info.role, Role::Master);
        assert_eq!(info.link(), None);
        assert_eq!(info.replicas.len(), 2);
        assert_eq!(info.replicas[1].address, "127.0.0.1:41002");
        assert_eq!(info.replicas[1].lag_seconds, Some(0));
        assert_eq!(info.online_replicas().count(), 2);
        assert!(!info.loading);
    }

    #[test]
    fn replica_link_states() {
        let up = ReplicationInfo::parse(REPLICA_UP).unwrap();
        let link = up.link().unwrap();
        assert!(link.link_up && !link.sync_in_progress);
        assert_eq!(link.master, "127.0.0.1:41000");
        assert_eq!(link.last_io_seconds_ago, Some(0));

        let down = ReplicationInfo::parse(REPLICA_LINK_DOWN).unwrap().link().cloned().unwrap();
        assert!(!down.link_up);
        assert_eq!(down.last_io_seconds_ago, None);
        assert_eq!(down.link_down_since_seconds, Some(1));

        let syncing = ReplicationInfo::parse(REPLICA_SYNCING).unwrap().link().cloned().unwrap();
        assert!(syncing.sync_in_progress);
    }

    #[test]
    fn lf_only_and_unknown_fields_are_fine() {
        let text = REPLICA_UP.replace("\r\n", "\n") + "some_future_field:xyz\nslave_lag_weird:abc\n";
        assert!(matches!(ReplicationInfo::parse(&text).unwrap().role, Role::Replica(_)));
    }

    #[test]
    fn loading_is_seen() {
        let text = MASTER_ALONE.replace("loading:0", "loading:1");
        assert!(ReplicationInfo::parse(&text).unwrap().loading);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\n",
            "role:sentinel\r\n",
            "role:slave\r\n",
            "role:master\r\nslave0:ip=1.2.3.4\r\n",
            "role:master\r\nslave0:ip=1.2.3.4,port=1,state=online,lag=x\r\n",
            "role:master\r\nloading:maybe\r\n",
            "\u{0}\u{1}\u{ff}role",
        ] {
            assert!(ReplicationInfo::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn old_style_slave_lines_without_lag() {
        let info = ReplicationInfo::parse("role:master\r\nslave0:ip=10.0.0.3,port=6029,state=online\r\nloading:0\r\n").unwrap();
        assert_eq!(info.replicas[0].lag_seconds, None);
    }

    /// A replica without its sync flag is an error (fail closed), not "synced".
    #[test]
    fn replica_without_sync_flag_fails_closed() {
        let text = REPLICA_UP.replace("master_sync_in_progress:0\r\n", "");
        assert!(ReplicationInfo::parse(&text).unwrap_err().to_string().contains("master_sync_in_progress"));
    }

    /// A reply without the loading flag is an error (fail closed), not "not loading".
    #[test]
    fn missing_loading_flag_fails_closed() {
        let e = ReplicationInfo::parse("role:master\r\nconnected_slaves:0\r\n").unwrap_err().to_string();
        assert!(e.contains("no loading: field"), "{e}");
    }

    /// Valkey: its own version and name are reported (redis_version stays 7.2.4 there).
    #[test]
    fn valkey_names_itself() {
        let text = format!("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n{MASTER_ALONE}");
        let info = ReplicationInfo::parse(&text).unwrap();
        assert_eq!((info.version.as_deref(), info.server_name.as_deref()), (Some("8.1.1"), Some("valkey")));
        let facts = format!("{:?}", info.facts());
        assert!(facts.contains("valkey_version") && !facts.contains("redis_version"), "{facts}");
    }
}
