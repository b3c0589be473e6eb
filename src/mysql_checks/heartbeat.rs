//! Lag as evidence: the age of a heartbeat row the source writes every second (pt-heartbeat, or
//! the event-scheduler alternative), read on the replica for the row of each channel's own source.
//!
//! `Seconds_Behind_Master` is the replica's own word, and it is 0 on a link that silently stalled
//! (the IO thread says `Yes` and the SQL thread has applied all it received) until
//! `slave_net_timeout` makes the IO thread reconnect, 60 s by default. A heartbeat that stopped
//! arriving ages, whatever the threads say. The lag that decides is the worst of the two.
//!
//! The age is measured as pt-heartbeat measures it: the replica server's `UTC_TIMESTAMP(6)` minus
//! the row's `ts` (pt-heartbeat writes it in UTC with `--utc`; the event alternative with
//! `UTC_TIMESTAMP(6)`), in one statement on the replica. A clock offset between the writer and the
//! replica adds to (or takes from) every age: keep both on NTP; `--heartbeat-skew` subtracts a known
//! offset. An age more than a second in the future is a clock problem, and critical.

use super::replication::ReplicaChannel;
use super::session::Session;
use crate::duration::parse_duration;
use anyhow::Result;
use std::time::Duration;

/// MySQL and MariaDB: no such column (a legacy `id`/`ts` table has no `server_id`).
const ER_BAD_FIELD_ERROR: &str = "1054";
/// MySQL and MariaDB: no such table.
const ER_NO_SUCH_TABLE: &str = "1146";

/// The heartbeat options of the read check.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct HeartbeatArgs {
    /// A pt-heartbeat table (DB.TABLE) the source writes every second: lag is also the age of the row
    /// of each channel's source, measured on this server's clock, and the worst of that and
    /// Seconds_Behind_Master decides. Catches a link that stalled silently.
    #[arg(long, value_name = "DB.TABLE", value_parser = HeartbeatTable::parse)]
    pub heartbeat_table: Option<HeartbeatTable>,
    /// The server_id whose heartbeat row to read [default: each channel's source, as
    /// Source_Server_Id / Master_Server_Id says].
    #[arg(long, value_name = "ID", requires = "heartbeat_table")]
    pub heartbeat_server_id: Option<u64>,
    /// A known offset of the heartbeat writer's clock ahead of this server's, subtracted from every
    /// heartbeat's age (keep both clocks on NTP instead, when you can).
    #[arg(long, value_name = "DURATION", requires = "heartbeat_table", value_parser = parse_duration)]
    pub heartbeat_skew: Option<Duration>,
}

/// A table named `db.table`, each part a plain identifier (it is written into SQL, quoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatTable {
    /// The database.
    pub database: String,
    /// The table.
    pub table: String,
}

impl HeartbeatTable {
    /// Reads `db.table`: letters, digits, `_` and `$` on each side of one dot.
    pub fn parse(s: &str) -> Result<HeartbeatTable, String> {
        let plain = |p: &str| !p.is_empty() && p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        match s.split_once('.') {
            Some((db, t)) if plain(db) && plain(t) => Ok(HeartbeatTable { database: db.into(), table: t.into() }),
            _ => Err(format!("'{s}' is not DB.TABLE (letters, digits, _ and $ on each side of one dot)")),
        }
    }

    /// The table as SQL names it.
    fn sql(&self) -> String {
        format!("`{}`.`{}`", self.database, self.table)
    }
}

impl std::fmt::Display for HeartbeatTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// What the heartbeat says of one channel.
#[derive(Clone, Debug, PartialEq)]
pub enum Heartbeat {
    /// The row of the channel's source is this many seconds old (skew taken off, never negative).
    Age(f64),
    /// No age could be read: why (no table, no row for that server, an unreadable timestamp). The
    /// channel is then critical: a fact the decision needs and did not get.
    Missing(String),
}

/// Reads the heartbeat of every channel of `channels` on `session` (one statement; a legacy table
/// one more), and sets each channel's `heartbeat`.
pub fn read(session: &mut Session, args: &HeartbeatArgs, channels: &mut [ReplicaChannel]) -> Result<()> {
    let Some(table) = &args.heartbeat_table else { return Ok(()) };
    if channels.is_empty() {
        return Ok(());
    }
    let ids: Vec<Option<u64>> = channels.iter().map(|c| args.heartbeat_server_id.or(c.source_server_id).filter(|id| *id > 0)).collect();
    let known: Vec<String> = ids.iter().flatten().map(u64::to_string).collect();
    let age = "TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6))";
    let current = format!(
        "SELECT server_id, ts, {age} AS age_us FROM {} WHERE server_id IN ({})",
        table.sql(),
        if known.is_empty() { "NULL".into() } else { known.join(",") }
    );
    let rows = match session.rows(&current) {
        Ok(rows) => Layout::Current(rows),
        Err(e) if server_code(&e) == Some(ER_BAD_FIELD_ERROR) => {
            match session.rows(&format!("SELECT ts, {age} AS age_us FROM {} WHERE id = 1", table.sql())) {
                Ok(rows) => Layout::Legacy(rows),
                Err(e) => Layout::Failed(format!("cannot read heartbeat table {table}: {e:#}")),
            }
        }
        Err(e) if server_code(&e) == Some(ER_NO_SUCH_TABLE) => Layout::Failed(format!("heartbeat table {table} does not exist")),
        Err(e) => Layout::Failed(format!("cannot read heartbeat table {table}: {e:#}")),
    };
    let skew = args.heartbeat_skew.unwrap_or_default();
    let several = channels.len() > 1;
    for (channel, id) in channels.iter_mut().zip(ids) {
        channel.heartbeat = Some(match (&rows, id) {
            (Layout::Failed(why), _) => Heartbeat::Missing(why.clone()),
            (_, None) => Heartbeat::Missing(format!(
                "the server did not say which server_id its source has (Source_Server_Id): cannot pick its row of {table}; \
                 give --heartbeat-server-id"
            )),
            (Layout::Legacy(_), Some(_)) if several => Heartbeat::Missing(format!(
                "{table} has the legacy layout (id, ts): one row for every source, so it cannot tell this server's channels apart"
            )),
            (Layout::Legacy(rows), Some(_)) => age_of(rows.first(), &format!("row id=1 in {table}"), skew),
            (Layout::Current(rows), Some(id)) => {
                let row = rows.iter().find(|r| r.get("server_id").cloned().flatten().and_then(|v| v.parse::<u64>().ok()) == Some(id));
                age_of(row, &format!("row for server_id {id} (the source of {}) in {table}", channel.label()), skew)
            }
        });
    }
    Ok(())
}

/// How the table answered.
enum Layout {
    /// pt-heartbeat's current layout: a row per `server_id`.
    Current(Vec<super::replication::RowMap>),
    /// The legacy layout: `id` 1, `ts`.
    Legacy(Vec<super::replication::RowMap>),
    /// Neither: why.
    Failed(String),
}

/// The age in a row (`ts`, `age_us`), or why there is none; `what` names the row looked for.
fn age_of(row: Option<&super::replication::RowMap>, what: &str, skew: Duration) -> Heartbeat {
    let Some(row) = row else { return Heartbeat::Missing(format!("no heartbeat: there is no {what}")) };
    let ts = row.get("ts").cloned().flatten().unwrap_or_default();
    let Some(us) = row.get("age_us").cloned().flatten().and_then(|v| v.trim().parse::<i64>().ok()) else {
        return Heartbeat::Missing(format!("the heartbeat timestamp '{ts}' of {what} is not a time"));
    };
    let age = us as f64 / 1e6 - skew.as_secs_f64();
    if age < -1.0 {
        return Heartbeat::Missing(format!(
            "the heartbeat '{ts}' is {:.1}s in the future of this server's clock: the writer's clock and this server's differ \
             (NTP), or pt-heartbeat writes local time (run it with --utc)",
            -age
        ));
    }
    Heartbeat::Age(age.max(0.0))
}

/// The server's error code, when `e` is a server's refusal.
fn server_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<crate::edge::EdgeError>().and_then(|e| e.server_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(HeartbeatTable::parse("percona.heartbeat").unwrap().sql(), "`percona`.`heartbeat`");
        for bad in ["heartbeat", "a.b.c", "a`.b", "a.b;DROP", ".b", "a.", "a b.c", ""] {
            assert!(HeartbeatTable::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages_are_read_strictly() {
        let row = |ts: &str, us: Option<&str>| -> super::super::replication::RowMap {
            [("ts".to_string(), Some(ts.to_string())), ("age_us".to_string(), us.map(String::from))].into_iter().collect()
        };
        let none = Duration::ZERO;
        assert_eq!(age_of(Some(&row("2026-12-07T06:41:07.1", Some("2500000"))), "x", none), Heartbeat::Age(2.5));
        assert_eq!(age_of(Some(&row("t", Some("2500000"))), "x", Duration::from_secs(1)), Heartbeat::Age(1.5));
        assert_eq!(age_of(Some(&row("t", Some("-300000"))), "x", none), Heartbeat::Age(0.0), "a writer a little ahead");
        assert!(matches!(age_of(Some(&row("t", Some("-5000000"))), "x", none), Heartbeat::Missing(w) if w.contains("in the future")));
        assert!(matches!(age_of(Some(&row("garbage", None)), "x", none), Heartbeat::Missing(w) if w.contains("'garbage'")));
        assert_eq!(age_of(None, "row for server_id 7", none), Heartbeat::Missing("no heartbeat: there is no row for server_id 7".into()));
    }
}
