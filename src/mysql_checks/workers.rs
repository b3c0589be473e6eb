//! MySQL's parallel replication (4 workers by default since 8.0.27): when a worker fails, the
//! channel's `Last_SQL_Error` only quotes the coordinator ("Coordinator stopped because there were
//! error(s) in the worker(s) ... See error log and/or
//! performance_schema.replication_applier_status_by_worker"). The cause is in that table: this
//! module reads it, only for a channel whose error says so (the normal case stays one round trip).

use super::replication::ReplicaChannel;
use super::session::{Batch, Session, Statement};

/// What the coordinator's message starts with.
const COORDINATOR_STOPPED: &str = "Coordinator stopped because there were error(s) in the worker(s)";

/// The workers' errors, per channel.
const WORKER_ERRORS: &str = "SELECT CHANNEL_NAME, WORKER_ID, LAST_ERROR_NUMBER, LAST_ERROR_MESSAGE \
     FROM performance_schema.replication_applier_status_by_worker WHERE LAST_ERROR_NUMBER <> 0 ORDER BY WORKER_ID";

/// Replaces each coordinator message in `channels` by the failed workers' own errors (`Worker 1:
/// Error 'Duplicate entry ...'`), as far as the server tells them; when it does not (no privilege on
/// that table), says how to see them.
pub fn name_worker_errors(session: &mut Session, channels: &mut [ReplicaChannel]) {
    if !channels.iter().any(|c| c.last_sql_error.starts_with(COORDINATOR_STOPPED)) {
        return;
    }
    let rows = match session.batch(&[Statement::all(WORKER_ERRORS)]) {
        Ok(Batch::Answered(mut sets)) => sets.pop().unwrap_or_default(),
        Ok(Batch::NotUnderstood(_)) | Err(_) => Vec::new(),
    };
    for channel in channels.iter_mut().filter(|c| c.last_sql_error.starts_with(COORDINATOR_STOPPED)) {
        let field = |r: &super::replication::RowMap, k: &str| r.get(k).cloned().flatten().unwrap_or_default();
        let errors: Vec<String> = rows
            .iter()
            .filter(|r| field(r, "CHANNEL_NAME") == channel.name)
            .map(|r| format!("worker {}: {}", field(r, "WORKER_ID"), field(r, "LAST_ERROR_MESSAGE")))
            .collect();
        channel.last_sql_error = if errors.is_empty() {
            format!(
                "{} (the workers' own errors are in performance_schema.replication_applier_status_by_worker: \
                 GRANT SELECT ON performance_schema.replication_applier_status_by_worker to the monitor to see them here)",
                channel.last_sql_error
            )
        } else {
            errors.join("; ")
        };
    }
}
