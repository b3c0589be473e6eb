//! One connection to a MySQL/MariaDB server, bounded by the deadline, with errors that name the
//! step and the server in the server's own words.

use super::auth::{is_refusal, refusal_message, FullAuthentication};
use super::dialect::Dialect;
use super::login::MysqlTarget;
use super::replication::RowMap;
use crate::cli::Address;
use crate::deadline::{Deadline, Step};
use crate::edge::{Cause, EdgeError, Protocol, Stage};
use crate::runner::contained;
use anyhow::{anyhow, Result};
use mysql::prelude::Queryable;

/// Most rows kept from one statement: real answers have a few (variables, channels, dump threads)
/// to a few hundred (replicas of one master).
const MAX_ROWS: usize = 10_000;

/// Most rows read (and mostly dropped) from one statement: `SHOW PROCESSLIST` lists every
/// connection, and a server allows at most 100,000.
const MAX_SCANNED_ROWS: usize = 250_000;

/// MySQL error: a statement the server does not know (older or newer syntax).
const ER_PARSE_ERROR: u16 = 1064;

/// MySQL error: a system variable the server does not have (`@@super_read_only` on MariaDB).
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

/// An open connection to one server.
pub struct Session<'a> {
    conn: mysql::Conn,
    address: Address,
    deadline: &'a Deadline,
    dialect: Option<Dialect>,
}

/// Why a MySQL driver call failed, as the edge's [`Cause`].
pub fn cause_of(err: &mysql::Error) -> Cause {
    use mysql::{DriverError as D, Error as E};
    use std::io::ErrorKind as K;
    let io_error: Option<&std::io::Error> = match err {
        E::IoError(e) => Some(e),
        // A socket error inside the packet codec (its type is not exported; its source is the io::Error).
        E::CodecError(c) => std::error::Error::source(c).and_then(|s| s.downcast_ref::<std::io::Error>()),
        _ => None,
    };
    // rustls reports a failed handshake (unknown issuer, bad name) as an io::Error wrapping its own.
    if let Some(tls) = io_error.and_then(|e| e.get_ref()).and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return Cause::Tls(tls.to_string());
    }
    let io_kind = match err {
        E::DriverError(D::CouldNotConnect(Some((_, _, kind)))) => Some(*kind),
        _ => io_error.map(|e| e.kind()),
    };
    match (err, io_kind) {
        (_, Some(K::ConnectionRefused)) => Cause::Refused,
        (_, Some(K::NotFound)) => Cause::NoSuchSocket,
        (_, Some(K::PermissionDenied)) => Cause::PermissionDenied,
        (E::DriverError(D::ConnectTimeout), _) | (E::DriverError(D::CouldNotConnect(_)), Some(K::TimedOut)) => Cause::ConnectTimedOut,
        (_, Some(K::WouldBlock | K::TimedOut)) => Cause::TimedOut,
        (_, Some(K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe)) => Cause::Closed,
        (
            E::CodecError(_)
            | E::DriverError(
                D::UnexpectedPacket | D::PacketOutOfSync | D::UnsupportedProtocol(_) | D::Protocol41NotSet | D::CouldNotParseVersion,
            ),
            _,
        ) => Cause::NotTheProtocol(words(err)),
        (E::MySqlError(e), _) => Cause::Server { code: e.code.to_string(), text: e.to_string() },
        (E::TlsError(e), _) => Cause::Tls(e.to_string()),
        _ => Cause::Other(words(err)),
    }
}

/// The edge error of `err` at `stage` against `target`.
fn edge_error(err: &mysql::Error, target: &Address, stage: Stage, deadline: &Deadline) -> anyhow::Error {
    anyhow::Error::new(EdgeError::new(Protocol::Mysql, stage, target, cause_of(err), deadline.limit()))
}

/// The driver's error in words, without its type names (`DriverError { .. }`).
fn words(err: &mysql::Error) -> String {
    use mysql::Error as E;
    match err {
        E::IoError(e) => e.to_string(),
        E::CodecError(e) => e.to_string(),
        E::MySqlError(e) => e.to_string(),
        E::DriverError(e) => e.to_string(),
        E::UrlError(e) => e.to_string(),
        E::TlsError(e) => e.to_string(),
        other => other.to_string(),
    }
}

fn row_map(row: mysql::Row) -> RowMap {
    let names: Vec<String> = row.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
    names
        .into_iter()
        .zip(row.unwrap())
        .map(|(name, v)| {
            let value = match v {
                mysql::Value::NULL => None,
                mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                mysql::Value::Int(i) => Some(i.to_string()),
                mysql::Value::UInt(u) => Some(u.to_string()),
                other => Some(other.as_sql(true).trim_matches('\'').to_string()),
            };
            (name, value)
        })
        .collect()
}

/// Compiles the driver's two server-version regular expressions (about 1.5 ms of CPU, once per
/// process) ahead of the handshake that needs them: the `mysql_common` crate matches every
/// greeting's version with both, and the main thread is waiting for the network meanwhile (see the
/// README's "where the time goes").
pub fn warm_up_driver() {
    use mysql_common::constants::{CapabilityFlags, StatusFlags};
    use mysql_common::packets::HandshakePacket;
    let version: &[u8] = b"5.5.5-10.11.0-MariaDB";
    let greeting =
        HandshakePacket::new(10, version, 0, [0; 8], None::<&[u8]>, CapabilityFlags::empty(), 0, StatusFlags::empty(), None::<&[u8]>);
    std::hint::black_box((greeting.server_version_parsed(), greeting.maria_db_server_version_parsed()));
}

/// A statement of a batch, and which of its rows to keep.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'s> {
    /// The SQL.
    pub sql: &'s str,
    /// Keep only rows whose column `.0` starts with `.1` (the rest are read and dropped). Such a
    /// listing must have that column and at least one row: `SHOW PROCESSLIST` always lists the
    /// connection asking, so an empty answer is not "nothing found".
    pub keep_only: Option<(&'static str, &'static str)>,
}

impl<'s> Statement<'s> {
    /// A statement whose rows are all kept.
    pub const fn all(sql: &'s str) -> Statement<'s> {
        Statement { sql, keep_only: None }
    }

    /// A listing of which only rows whose `column` starts with `prefix` are kept (see `keep_only`).
    pub const fn keeping(sql: &'s str, column: &'static str, prefix: &'static str) -> Statement<'s> {
        Statement { sql, keep_only: Some((column, prefix)) }
    }
}

/// A statement's head: up to its `WHERE`, and a `SELECT` list's first item.
fn brief(sql: &str) -> String {
    let head = sql.split(" WHERE ").next().unwrap_or(sql);
    match head.split_once(", ") {
        Some((first, _)) if head.starts_with("SELECT ") => format!("{first}, ..."),
        _ => head.to_string(),
    }
}

/// How a server answered a batch of statements.
#[derive(Debug)]
pub enum Batch {
    /// Every statement's rows, in order.
    Answered(Vec<Vec<RowMap>>),
    /// A statement the server does not know (syntax error, unknown variable), or fewer answers
    /// than statements: the server's words. The statements are then worth sending one by one.
    NotUnderstood(String),
}

/// Whether the server refused a statement for not knowing it (older or newer syntax, or a
/// variable its flavour does not have), rather than for a reason that sending it again would hit.
fn not_known(err: &mysql::Error) -> bool {
    matches!(err, mysql::Error::MySqlError(e) if e.code == ER_PARSE_ERROR || e.code == ER_UNKNOWN_SYSTEM_VARIABLE)
}

impl<'a> Session<'a> {
    /// Connects and logs in within the deadline.
    pub fn open(target: &MysqlTarget, deadline: &'a Deadline) -> Result<Session<'a>> {
        // The step covers TCP connect, the server's greeting, TLS and login: the MySQL handshake.
        let step = format!("MySQL handshake with {}", target.address);
        let _step = Step::begin(&step);
        let left = deadline.remaining(&step)?;
        let full_auth = target.full_authentication();
        let mut opts = mysql::OptsBuilder::new()
            .user(Some(target.user.clone()))
            .pass(target.password.as_ref().map(|p| p.expose().to_string()))
            .tcp_connect_timeout(Some(left))
            .read_timeout(Some(left))
            .write_timeout(Some(left))
            .prefer_socket(false)
            .max_allowed_packet(Some(16 << 20))
            .stmt_cache_size(0)
            .ssl_opts(target.ssl_opts()?)
            .server_key_path(full_auth.driver_key_path());
        opts = match &target.address {
            Address::Tcp { host, port } => opts.ip_or_hostname(Some(host.clone())).tcp_port(*port),
            Address::Socket(path) => opts.socket(Some(path.to_string_lossy().into_owned())),
        };
        // The driver panics on a greeting whose version it matches but cannot parse (non-ASCII digits).
        let conn = contained(|| mysql::Conn::new(opts))
            .ok_or_else(|| match &full_auth {
                // The driver parses a pinned key only when the server asks for full authentication.
                FullAuthentication::PinnedKey(key) => anyhow!(
                    "the MySQL handshake with {} failed: the driver cannot read its greeting or the pinned key {}",
                    target.address,
                    key.display()
                ),
                _ => anyhow!("{} sent a greeting the MySQL driver cannot read (is this a MySQL server?)", target.address),
            })?
            .map_err(|e| match full_auth {
                FullAuthentication::Refused if is_refusal(&e) => anyhow!(refusal_message(&target.address)),
                _ => edge_error(&e, &target.address, Stage::Connect, deadline),
            })?;
        // `server_version()` panics when the greeting had no version at all.
        let dialect = contained(|| conn.server_version()).and_then(|v| Dialect::from_greeting(Some(v)));
        Ok(Session { conn, address: target.address.clone(), deadline, dialect })
    }

    /// The server this session is connected to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The statements the server understands, as its greeting tells; `None` when it does not say.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// Runs `sql` and returns its rows.
    pub fn rows(&mut self, sql: &str) -> Result<Vec<RowMap>> {
        self.kept_rows(Statement::all(sql))
    }

    /// Runs `statement` and returns the rows it keeps.
    pub fn kept_rows(&mut self, statement: Statement) -> Result<Vec<RowMap>> {
        match self.batch(&[statement])? {
            Batch::Answered(mut sets) => Ok(sets.pop().unwrap_or_default()),
            Batch::NotUnderstood(words) => Err(anyhow!("{} on {}: {words}", statement.sql, self.address)),
        }
    }

    /// Runs the first statement the server knows: a syntax error (1064) moves on to the next.
    /// Any other error is an error, never "no rows".
    pub fn rows_first_known(&mut self, statements: &[&str]) -> Result<(String, Vec<RowMap>)> {
        for sql in statements {
            if let Batch::Answered(mut sets) = self.batch(&[Statement::all(sql)])? {
                return Ok((sql.to_string(), sets.pop().unwrap_or_default()));
            }
        }
        Err(anyhow!("{} knows none of: {}", self.address, statements.join(", ")))
    }

    /// Sends `statements` as one multi-statement query (one round trip) and reads every answer.
    /// Errors other than "not understood" name the statement and the server; so does an answer the
    /// driver panics on (a column count near 2^64 overflows its capacity computation).
    pub fn batch(&mut self, statements: &[Statement]) -> Result<Batch> {
        let address = self.address.clone();
        contained(|| self.batch_unguarded(statements)).unwrap_or_else(|| {
            let sql = statements.iter().map(|s| s.sql).collect::<Vec<_>>().join("; ");
            Err(anyhow!("{sql} on {address}: the answer cannot be read by the MySQL driver (is this a MySQL server?)"))
        })
    }

    fn batch_unguarded(&mut self, statements: &[Statement]) -> Result<Batch> {
        // A batch is named by its statements' heads, so that the server's address stays in the
        // few hundred bytes a message keeps of a step (a failed statement is named in full).
        let sql = statements.iter().map(|s| s.sql).collect::<Vec<_>>().join("; ");
        let label = match statements {
            [one] => one.sql.to_string(),
            many => many.iter().map(|s| brief(s.sql)).collect::<Vec<_>>().join("; "),
        };
        let step = format!("{label} on {}", self.address);
        let _step = Step::begin(&step);
        self.deadline.remaining(&step)?;
        let (address, deadline) = (&self.address, self.deadline);
        let failed = |e: &mysql::Error, statement: &Statement| -> Result<Batch> {
            if not_known(e) {
                return Ok(Batch::NotUnderstood(words(e)));
            }
            Err(edge_error(e, address, Stage::Request(statement.sql.to_string()), deadline))
        };
        let mut result = match self.conn.query_iter(&sql) {
            Ok(result) => result,
            Err(e) => return failed(&e, &statements[0]),
        };
        let mut answers = Vec::with_capacity(statements.len());
        for statement in statements {
            let Some(set) = result.iter() else {
                return Ok(Batch::NotUnderstood(format!("{} answers to {} statements", answers.len(), statements.len())));
            };
            match read_set(set, statement) {
                Ok(rows) => answers.push(rows),
                Err(SetError::Driver(e)) => {
                    drop(result);
                    return failed(&e, statement);
                }
                Err(SetError::Implausible(what)) => {
                    // Dropping the result would read the rest of it, which may never end.
                    std::mem::forget(result);
                    anyhow::bail!("{} on {address}: {what} (fail closed: critical)", statement.sql);
                }
            }
        }
        if result.iter().is_some() {
            std::mem::forget(result);
            anyhow::bail!("{step}: more answers than statements (is this a MySQL server?)");
        }
        Ok(Batch::Answered(answers))
    }
}

/// Why reading one result set stopped.
enum SetError {
    /// The driver's error (the server refused the statement, or the connection failed).
    Driver(mysql::Error),
    /// More rows than any real answer has, or fewer (or other columns) than a real listing has.
    Implausible(String),
}

/// Reads one result set, keeping the rows `statement` keeps, within the row limits.
fn read_set<T: mysql::prelude::Protocol>(
    mut set: mysql::ResultSet<'_, '_, '_, '_, T>,
    statement: &Statement,
) -> std::result::Result<Vec<RowMap>, SetError> {
    let filter = statement.keep_only.map(|(column, prefix)| (set.columns().column_index(column), prefix.as_bytes()));
    let mut rows = Vec::new();
    let mut scanned = 0usize;
    for row in set.by_ref() {
        let row = row.map_err(SetError::Driver)?;
        scanned += 1;
        if scanned > MAX_SCANNED_ROWS {
            return Err(SetError::Implausible(format!("more than {MAX_SCANNED_ROWS} rows, far more than a real server answers")));
        }
        let keep = match filter {
            None => true,
            Some((Some(i), prefix)) => matches!(row.as_ref(i), Some(mysql::Value::Bytes(b)) if b.starts_with(prefix)),
            Some((None, _)) => {
                let column = statement.keep_only.map_or("", |(c, _)| c);
                return Err(SetError::Implausible(format!("the answer has no {column} column")));
            }
        };
        if keep {
            if rows.len() == MAX_ROWS {
                return Err(SetError::Implausible(format!("more than {MAX_ROWS} rows, far more than a real server answers")));
            }
            rows.push(row_map(row));
        }
    }
    if filter.is_some() && scanned == 0 {
        return Err(SetError::Implausible("no row at all, not even this connection".into()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages say what happened, never the driver's type names.
    #[test]
    fn errors_in_words() {
        let deadline = Deadline::new(std::time::Duration::from_secs(3));
        let target = Address::Tcp { host: "10.0.0.2".into(), port: 3306 };
        let errors = [
            mysql::Error::DriverError(mysql::DriverError::CouldNotConnect(None)),
            mysql::Error::DriverError(mysql::DriverError::UnexpectedPacket),
            mysql::Error::DriverError(mysql::DriverError::ConnectTimeout),
            mysql::Error::IoError(std::io::Error::other("boom")),
        ];
        for e in &errors {
            for stage in [Stage::Connect, Stage::Request("SHOW GLOBAL VARIABLES".into())] {
                let m = edge_error(e, &target, stage, &deadline).to_string();
                assert!(!m.contains("DriverError") && !m.contains("IoError") && !m.contains("CodecError"), "{m}");
                assert!(m.contains("10.0.0.2:3306"), "{m}");
            }
        }
    }
}
