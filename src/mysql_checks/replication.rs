//! Replication facts read from `SHOW REPLICA/SLAVE STATUS` rows by column name, under both the
//! MySQL 8.0.22+/8.4 spelling (`Replica_IO_Running`, `Seconds_Behind_Source`, `Source_Host`) and the
//! MySQL 5.7/MariaDB one (`Slave_IO_Running`, `Seconds_Behind_Master`, `Master_Host`).

use super::heartbeat::Heartbeat;
use crate::read_pool::ReadPolicy;
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use std::collections::HashMap;

/// One result row: column name to value (`None` for SQL NULL).
pub type RowMap = HashMap<String, Option<String>>;

/// One replication channel of a replica (MySQL channel, MariaDB named connection).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaChannel {
    /// Channel or connection name; empty for the default one.
    pub name: String,
    /// `Source_Host:Source_Port` (or `Master_Host:Master_Port`).
    pub source: String,
    /// IO (receiver) thread: `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// SQL (applier) thread: `Yes` or `No`.
    pub sql_running: String,
    /// `Seconds_Behind_Source`/`Seconds_Behind_Master`; `None` when NULL (a thread is not running).
    pub lag_seconds: Option<u64>,
    /// Which of the two the server spells it (for messages).
    pub lag_column: &'static str,
    /// `Last_IO_Error`, empty when none.
    pub last_io_error: String,
    /// `Last_SQL_Error`, empty when none.
    pub last_sql_error: String,
    /// `Source_Server_Id`/`Master_Server_Id`: whose heartbeat row is this channel's (0 or absent:
    /// not known yet).
    pub source_server_id: Option<u64>,
    /// The age of its source's heartbeat, when `--heartbeat-table` is given.
    pub heartbeat: Option<super::heartbeat::Heartbeat>,
    /// How long the link has been silent, as the server reports it (read checks only).
    pub link: Option<super::link::Silence>,
}

/// Returns the first present column among `names` (the spellings of one field).
fn column<'a>(row: &'a RowMap, names: &[&str]) -> Option<&'a Option<String>> {
    names.iter().find_map(|n| row.get(*n))
}

fn text(row: &RowMap, names: &[&str]) -> String {
    column(row, names).cloned().flatten().unwrap_or_default()
}

impl ReplicaChannel {
    /// Reads a channel from a status row, whichever spelling it uses.
    pub fn from_row(row: &RowMap) -> Result<ReplicaChannel> {
        let required = |names: &[&str]| -> Result<String> {
            match column(row, names) {
                Some(v) => Ok(v.clone().unwrap_or_default()),
                None => bail!("the status row has no {} column", names.join(" or ")),
            }
        };
        let io_running = required(&["Replica_IO_Running", "Slave_IO_Running"])?;
        let sql_running = required(&["Replica_SQL_Running", "Slave_SQL_Running"])?;
        let lag_column = if row.contains_key("Seconds_Behind_Source") { "Seconds_Behind_Source" } else { "Seconds_Behind_Master" };
        let lag_seconds = match column(row, &["Seconds_Behind_Source", "Seconds_Behind_Master"]) {
            None => bail!("the status row has no Seconds_Behind_Source or Seconds_Behind_Master column"),
            Some(None) => None,
            Some(Some(v)) => Some(v.trim().parse::<u64>().map_err(|_| anyhow!("Seconds_Behind_Source is '{v}', not a number"))?),
        };
        let host = text(row, &["Source_Host", "Master_Host"]);
        let port = text(row, &["Source_Port", "Master_Port"]);
        Ok(ReplicaChannel {
            name: text(row, &["Channel_Name", "Connection_name", "Channel_name"]),
            source: crate::cli::Address::Tcp { host, port: port.parse().unwrap_or(0) }.to_string(),
            io_running,
            sql_running,
            lag_seconds,
            lag_column,
            last_io_error: text(row, &["Last_IO_Error"]),
            last_sql_error: text(row, &["Last_SQL_Error"]),
            source_server_id: text(row, &["Source_Server_Id", "Master_Server_Id"]).trim().parse().ok(),
            heartbeat: None,
            link: None,
        })
    }

    /// How the channel is named in messages: `channel 'x'` or `the default channel`.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            "the default channel".into()
        } else {
            format!("channel '{}'", self.name)
        }
    }

    /// Healthy iff both threads say `Yes` and the lag is known and within `--max-lag`; else why not.
    pub fn problem(&self, policy: &ReadPolicy) -> Option<String> {
        let from = format!("{} from {}", self.label(), self.source);
        if self.io_running != "Yes" {
            let err = if self.last_io_error.is_empty() { String::new() } else { format!(": {}", self.last_io_error) };
            return Some(format!("{from}: the IO thread {}{err}", thread_state(&self.io_running)));
        }
        if self.sql_running != "Yes" {
            let err = if self.last_sql_error.is_empty() { String::new() } else { format!(": {}", self.last_sql_error) };
            return Some(format!("{from}: the SQL thread {}{err}", thread_state(&self.sql_running)));
        }
        if let Some(Heartbeat::Missing(why)) = &self.heartbeat {
            return Some(format!("{from}: {why}"));
        }
        match self.lag() {
            None => Some(format!("{from}: lag is NULL (unknown)")),
            Some(lag) if !policy.lag_passes_seconds(Some(lag)) => {
                Some(format!("{from}: lag {}{}", self.lag_words(), policy.over_limit_clause()))
            }
            Some(_) => self.silence_problem(&from, policy),
        }
    }

    /// The link silent past `--max-lag` by the server's own account (MySQL 8.0+), when that can be
    /// told (see [`super::link`]).
    fn silence_problem(&self, from: &str, policy: &ReadPolicy) -> Option<String> {
        let max = policy.max_lag?.as_secs_f64();
        match self.link.as_ref()? {
            silence @ super::link::Silence::Seen { seconds, period } if silence.over(max) == Some(true) => Some(format!(
                "{from}: the link has been silent for {seconds:.1}s (no transaction, no heartbeat; the source sends one \
                 every {period}s when idle){}",
                policy.over_limit_clause()
            )),
            _ => None,
        }
    }

    /// The lag that decides, in seconds: the server's own figure, or the heartbeat's age when it is
    /// worse; `None` when the server says NULL (a heartbeat alone does not make a stopped channel's
    /// lag known).
    pub fn lag(&self) -> Option<f64> {
        let own = self.lag_seconds? as f64;
        Some(match &self.heartbeat {
            Some(Heartbeat::Age(age)) => own.max(*age),
            _ => own,
        })
    }

    /// The lag in words, with its evidence: `0s` (the server's own figure only: a stalled link
    /// reads 0), or `14.2s (heartbeat 14.2s old, Seconds_Behind_Master 0s)` (the server's spelling).
    pub fn lag_words(&self) -> String {
        let own = self.lag_seconds.map(|l| format!("{l}s")).unwrap_or_else(|| "NULL".into());
        match (&self.heartbeat, self.lag()) {
            (Some(Heartbeat::Age(age)), Some(lag)) => format!("{lag:.1}s (heartbeat {age:.1}s old, {} {own})", self.lag_column),
            _ => own,
        }
    }

    /// The channel as a fact.
    pub fn fact(&self) -> serde_json::Value {
        let mut fact = json!({
            "channel": self.name,
            "source": self.source,
            "io_running": self.io_running,
            "sql_running": self.sql_running,
            "lag_seconds": self.lag_seconds,
            "last_io_error": self.last_io_error,
            "last_sql_error": self.last_sql_error,
            "source_server_id": self.source_server_id,
        });
        match &self.heartbeat {
            Some(Heartbeat::Age(age)) => fact["heartbeat_age_seconds"] = json!((age * 10.0).round() / 10.0),
            Some(Heartbeat::Missing(why)) => fact["heartbeat_error"] = json!(why),
            None => {}
        }
        match &self.link {
            Some(super::link::Silence::Seen { seconds, period }) => {
                fact["link_silent_seconds"] = json!((seconds * 10.0).round() / 10.0);
                fact["source_heartbeat_period_seconds"] = json!(period);
            }
            Some(super::link::Silence::Unseen(why)) => fact["link_silence"] = json!(why),
            None => {}
        }
        fact
    }
}

/// Reads every channel of a status result set.
pub fn channels(rows: &[RowMap]) -> Result<Vec<ReplicaChannel>> {
    rows.iter().map(ReplicaChannel::from_row).collect()
}

/// The problems of a replica's channels (empty: healthy). A replica is healthy iff all its channels are.
pub fn replica_problems(channels: &[ReplicaChannel], policy: &ReadPolicy) -> Vec<String> {
    channels.iter().filter_map(|c| c.problem(policy)).collect()
}

/// A replication dump thread on a master (`Binlog Dump`, `Binlog Dump GTID`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpThread {
    /// The user the replica (or CDC reader) logged in as.
    pub user: String,
    /// `host:port` it connected from, as the processlist shows it.
    pub host: String,
}

impl DumpThread {
    /// The host part, without the client port.
    pub fn client_host(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.trim_start_matches('[').trim_end_matches(']'),
            _ => &self.host,
        }
    }
}

/// A replica as `SHOW SLAVE HOSTS`/`SHOW REPLICAS` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaHost {
    /// `Host` (the replica's `report_host`).
    pub host: String,
    /// `Port` (its `report_port`).
    pub port: u16,
}

/// Reads `SHOW SLAVE HOSTS`/`SHOW REPLICAS` rows, keeping those with a usable host and port.
pub fn replica_hosts(rows: &[RowMap]) -> Vec<ReplicaHost> {
    rows.iter()
        .filter_map(|r| {
            let host = text(r, &["Host"]);
            let port = text(r, &["Port"]).parse::<u16>().ok().filter(|p| *p > 0)?;
            (!host.is_empty()).then_some(ReplicaHost { host, port })
        })
        .collect()
}

/// A replication thread's `*_Running` column (`No`, `Connecting`, empty), in words.
fn thread_state(running: &str) -> String {
    match running {
        "No" => "has stopped (Running: No)".into(),
        "Connecting" => "is not connected: it keeps trying to connect to the source (Running: Connecting)".into(),
        "" => "is not running".into(),
        other => format!("is not running (Running: {other})"),
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! Row sets captured from MariaDB 10.11 (`SHOW ALL SLAVES STATUS`, NULLs kept as null), and the
    //! same states in the MySQL 8.4 spelling (`SHOW REPLICA STATUS`, column list of the 8.4 manual).
    use super::RowMap;

    fn load(json: &str) -> Vec<RowMap> {
        serde_json::from_str(json).unwrap()
    }
    /// A healthy replica (captured).
    pub fn healthy() -> Vec<RowMap> {
        load(include_str!("testdata/healthy.json"))
    }
    /// After `STOP SLAVE IO_THREAD` (captured).
    pub fn io_stopped() -> Vec<RowMap> {
        load(include_str!("testdata/io_stopped.json"))
    }
    /// SQL thread stopped by a duplicate-key error (captured).
    pub fn sql_error() -> Vec<RowMap> {
        load(include_str!("testdata/sql_error.json"))
    }
    /// Two named connections: the default one broken, 'second' connecting to a dead port (captured).
    pub fn multi_source() -> Vec<RowMap> {
        load(include_str!("testdata/multi_source.json"))
    }

    /// MariaDB/5.7 column names and their MySQL 8.0.22+/8.4 names.
    const RENAMES: &[(&str, &str)] = &[
        ("Slave_IO_State", "Replica_IO_State"),
        ("Master_Host", "Source_Host"),
        ("Master_User", "Source_User"),
        ("Master_Port", "Source_Port"),
        ("Master_Log_File", "Source_Log_File"),
        ("Read_Master_Log_Pos", "Read_Source_Log_Pos"),
        ("Relay_Master_Log_File", "Relay_Source_Log_File"),
        ("Slave_IO_Running", "Replica_IO_Running"),
        ("Slave_SQL_Running", "Replica_SQL_Running"),
        ("Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
        ("Master_SSL_Allowed", "Source_SSL_Allowed"),
        ("Master_SSL_CA_File", "Source_SSL_CA_File"),
        ("Master_SSL_CA_Path", "Source_SSL_CA_Path"),
        ("Master_SSL_Cert", "Source_SSL_Cert"),
        ("Master_SSL_Cipher", "Source_SSL_Cipher"),
        ("Master_SSL_Key", "Source_SSL_Key"),
        ("Seconds_Behind_Master", "Seconds_Behind_Source"),
        ("Master_SSL_Verify_Server_Cert", "Source_SSL_Verify_Server_Cert"),
        ("Master_Server_Id", "Source_Server_Id"),
        ("Master_SSL_Crl", "Source_SSL_Crl"),
        ("Master_SSL_Crlpath", "Source_SSL_Crlpath"),
        ("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
        ("Connection_name", "Channel_Name"),
    ];
    /// MySQL 8.4 has these columns and MariaDB does not; MariaDB's own extra columns are dropped.
    const MYSQL_ONLY: &[&str] = &[
        "Source_UUID",
        "Source_Info_File",
        "Source_Retry_Count",
        "Source_Bind",
        "Last_IO_Error_Timestamp",
        "Last_SQL_Error_Timestamp",
        "Retrieved_Gtid_Set",
        "Executed_Gtid_Set",
        "Auto_Position",
        "Source_TLS_Version",
        "Source_public_key_path",
        "Get_Source_public_key",
        "Network_Namespace",
    ];

    /// The same row set as MySQL 8.4's `SHOW REPLICA STATUS` would spell it.
    pub fn as_mysql84(rows: &[RowMap]) -> Vec<RowMap> {
        rows.iter()
            .map(|r| {
                let mut out = RowMap::new();
                for (k, v) in r {
                    if let Some((_, new)) = RENAMES.iter().find(|(old, _)| old == k) {
                        out.insert(new.to_string(), v.clone());
                    } else if !k.starts_with("Slave_") && !k.starts_with("Gtid_") && !k.starts_with("Master_") {
                        out.insert(k.clone(), v.clone());
                    }
                }
                for c in MYSQL_ONLY {
                    out.insert(c.to_string(), Some(String::new()));
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    use std::time::Duration;

    const MAX: ReadPolicy = ReadPolicy { max_lag: Some(Duration::from_secs(120)), master_fallback: true };

    fn max(secs: u64) -> ReadPolicy {
        ReadPolicy { max_lag: Some(Duration::from_secs(secs)), master_fallback: true }
    }

    #[test]
    fn captured_states_read_as_expected() {
        let h = channels(&healthy()).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].io_running.as_str(), h[0].sql_running.as_str(), h[0].lag_seconds), ("Yes", "Yes", Some(0)));
        assert_eq!(h[0].problem(&MAX), None);

        let io = channels(&io_stopped()).unwrap();
        assert_eq!(io[0].lag_seconds, None);
        assert_eq!(
            io[0].problem(&MAX).unwrap(),
            format!("the default channel from {}: the IO thread has stopped (Running: No)", io[0].source)
        );

        let sql = &channels(&sql_error()).unwrap()[0];
        let p = sql.problem(&MAX).unwrap();
        assert!(p.contains("the SQL thread has stopped (Running: No)") && p.contains("Duplicate entry"), "{p}");

        let multi = channels(&multi_source()).unwrap();
        assert_eq!(multi.len(), 2);
        let problems = replica_problems(&multi, &MAX);
        assert_eq!(problems.len(), 2);
        assert!(problems[1].starts_with("channel 'second' from 127.0.0.1:1: the IO thread is not connected: it keeps trying to connect to the source (Running: Connecting): error connecting"), "{}", problems[1]);
    }

    /// The MySQL 8.4 spelling decides exactly like the MariaDB one, state by state.
    #[test]
    fn both_spellings_decide_alike() {
        for rows in [healthy(), io_stopped(), sql_error(), multi_source()] {
            let mysql84 = as_mysql84(&rows);
            assert!(mysql84[0].contains_key("Replica_IO_Running") && !mysql84[0].contains_key("Slave_IO_Running"));
            let a = channels(&rows).unwrap();
            let b = channels(&mysql84).unwrap();
            // Alike but for the spelling messages use.
            assert!(a.iter().all(|c| c.lag_column == "Seconds_Behind_Master") && b.iter().all(|c| c.lag_column == "Seconds_Behind_Source"));
            let respelled: Vec<ReplicaChannel> =
                b.iter().cloned().map(|c| ReplicaChannel { lag_column: "Seconds_Behind_Master", ..c }).collect();
            assert_eq!(a, respelled);
            for policy in [max(0), max(1), MAX] {
                assert_eq!(replica_problems(&a, &policy), replica_problems(&b, &policy));
            }
        }
    }

    #[test]
    fn lag_at_most_the_limit_passes_and_null_is_unhealthy() {
        let mut c = channels(&healthy()).unwrap().remove(0);
        for (lag, limit, healthy) in
            [(Some(0), 0, true), (Some(1), 0, false), (Some(120), 120, true), (Some(121), 120, false), (None, 120, false)]
        {
            c.lag_seconds = lag;
            assert_eq!(c.problem(&max(limit)).is_none(), healthy, "lag {lag:?} max {limit}");
        }
        c.lag_seconds = Some(121);
        assert!(c.problem(&MAX).unwrap().ends_with("lag 121s, over --max-lag 2m"), "{:?}", c.problem(&MAX));
    }

    #[test]
    fn missing_or_garbled_columns_are_errors_not_not_a_replica() {
        let mut row = healthy().remove(0);
        row.remove("Slave_IO_Running");
        assert!(ReplicaChannel::from_row(&row).unwrap_err().to_string().contains("Replica_IO_Running or Slave_IO_Running"));
        let mut row = healthy().remove(0);
        row.insert("Seconds_Behind_Master".into(), Some("soon".into()));
        assert!(ReplicaChannel::from_row(&row).is_err());
    }

    #[test]
    fn dump_thread_hosts() {
        let t = |h: &str| DumpThread { user: "repl".into(), host: h.into() };
        assert_eq!(t("10.0.0.3:51234").client_host(), "10.0.0.3");
        assert_eq!(t("localhost").client_host(), "localhost");
        assert_eq!(t("[::1]:4000").client_host(), "::1");
        assert_eq!(t("db-2.example:33060").client_host(), "db-2.example");
    }
}
