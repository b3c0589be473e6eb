//! How long each replication link has been silent, as MySQL 8.0+ itself reports it
//! (`performance_schema.replication_connection_status`): the last heartbeat and the last
//! transaction queued from the source. A source sends a heartbeat whenever it has sent nothing for
//! its heartbeat period (`SOURCE_HEARTBEAT_PERIOD`, default half of `replica_net_timeout`: 30 s),
//! so a healthy link is never silent for much longer than that; a stalled one goes silent for good.
//!
//! That tells a stall within `--max-lag` only when the period is shorter than `--max-lag` (an idle
//! source is silent for up to a whole period): then a link silent for longer than `--max-lag` is a
//! lag over the limit. Otherwise the check says in its facts that it cannot tell, and how to make it
//! able to (a shorter period, or `--heartbeat-table`). MariaDB reports no time of the last
//! heartbeat: there only a heartbeat table tells.

use super::replication::ReplicaChannel;
use super::session::Session;

/// The query: per channel, seconds since the last thing received (heartbeat or transaction) on the
/// server's own clock, and the heartbeat period.
const SILENCE: &str = "SELECT s.CHANNEL_NAME AS channel, \
     TIMESTAMPDIFF(MICROSECOND, GREATEST(COALESCE(s.LAST_HEARTBEAT_TIMESTAMP, 0), \
     COALESCE(s.LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP, 0)), NOW(6)) AS silent_us, \
     c.HEARTBEAT_INTERVAL AS period \
     FROM performance_schema.replication_connection_status s \
     JOIN performance_schema.replication_connection_configuration c USING (CHANNEL_NAME)";

/// A silence this long (about 30 years) is a zero timestamp: nothing received yet.
const NEVER_US: f64 = 1e15;

/// What the server says of one channel's link.
#[derive(Clone, Debug, PartialEq)]
pub enum Silence {
    /// Silent for `seconds`; the source sends a heartbeat after `period` seconds of nothing.
    Seen {
        /// Seconds since the last heartbeat or transaction received.
        seconds: f64,
        /// The heartbeat period, in seconds.
        period: f64,
    },
    /// The server does not say (MariaDB, MySQL before 8.0, a login without the grant): why.
    Unseen(String),
}

impl Silence {
    /// Whether the link has been silent past `max_lag` when that can be told without a false alarm
    /// (the period at least a second shorter than `max_lag`); `None` when it cannot be told.
    pub fn over(&self, max_lag: f64) -> Option<bool> {
        match self {
            Silence::Seen { seconds, period } if period + 1.0 <= max_lag => Some(*seconds > max_lag),
            _ => None,
        }
    }

    /// Why it cannot be told within `max_lag`, when it cannot.
    pub fn blind_spot(&self, max_lag: f64) -> Option<String> {
        match self {
            Silence::Unseen(why) => Some(why.clone()),
            Silence::Seen { period, .. } if period + 1.0 > max_lag => Some(format!(
                "the source's heartbeat period is {period}s, not under --max-lag {max_lag}s by a second: an idle source is \
                 silent that long, so a stalled link cannot be told in time (set SOURCE_HEARTBEAT_PERIOD lower, or give --heartbeat-table)"
            )),
            Silence::Seen { .. } => None,
        }
    }
}

/// Reads each channel's link silence on a MySQL 8.0+ server (one statement); on any other server,
/// or when the statement is refused, says so per channel. Never fails the check: it is evidence
/// added to the server's own figure, not a fact the decision needs.
pub fn read(session: &mut Session, channels: &mut [ReplicaChannel]) {
    if channels.is_empty() {
        return;
    }
    let mysql8 = matches!(session.dialect().map(|d| d.flavour), Some(super::dialect::Flavour::MySql(v)) if v >= (8, 0, 0));
    if !mysql8 {
        for c in channels.iter_mut() {
            c.link = Some(Silence::Unseen("the server reports no time of the last heartbeat (MariaDB, MySQL before 8.0)".into()));
        }
        return;
    }
    let rows = session.rows(SILENCE);
    for c in channels.iter_mut() {
        c.link = Some(match &rows {
            Err(e) => Silence::Unseen(format!("{e:#}")),
            Ok(rows) => {
                let row = rows.iter().find(|r| r.get("channel").cloned().flatten().unwrap_or_default() == c.name);
                let number = |k: &str| row.and_then(|r| r.get(k).cloned().flatten()).and_then(|v| v.trim().parse::<f64>().ok());
                match (row, number("silent_us"), number("period")) {
                    (None, ..) => Silence::Unseen(format!("performance_schema has no connection status for {}", c.label())),
                    // Both timestamps are zero until the first heartbeat or transaction arrives.
                    (Some(_), Some(us), Some(period)) if us < NEVER_US => Silence::Seen { seconds: (us / 1e6).max(0.0), period },
                    _ => Silence::Unseen(format!("nothing received on {} yet (no heartbeat, no transaction)", c.label())),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_judged_only_when_the_period_allows() {
        let seen = |seconds, period| Silence::Seen { seconds, period };
        assert_eq!(seen(7.0, 1.0).over(5.0), Some(true));
        assert_eq!(seen(3.0, 1.0).over(5.0), Some(false));
        assert_eq!(seen(29.0, 30.0).over(5.0), None, "an idle source is silent for 30 s: no alarm, no verdict");
        assert!(seen(29.0, 30.0).blind_spot(5.0).unwrap().contains("heartbeat period is 30s"));
        assert_eq!(seen(3.0, 1.0).blind_spot(5.0), None);
        assert_eq!(Silence::Unseen("x".into()).over(5.0), None);
    }
}
