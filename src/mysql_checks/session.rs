//! One connection to a MySQL/MariaDB server, bounded by the deadline, with errors that name the
//! step and the server in the server's own words.

use super::login::MysqlTarget;
use super::replication::RowMap;
use crate::cli::Address;
use crate::deadline::{Deadline, Step};
use crate::duration::format_duration;
use anyhow::{anyhow, Result};
use mysql::prelude::Queryable;

/// Most rows read from one statement: real answers have a few (variables, channels) to a few
/// thousand (the processlist of a busy server).
const MAX_ROWS: usize = 10_000;

/// MySQL error: a statement the server does not know (older or newer syntax).
const ER_PARSE_ERROR: u16 = 1064;

/// An open connection to one server.
pub struct Session<'a> {
    conn: mysql::Conn,
    address: Address,
    deadline: &'a Deadline,
}

/// Says what went wrong in words an operator expects, for the step `step` against `target`.
fn explain(err: &mysql::Error, target: &Address, step: &str, deadline: &Deadline) -> String {
    use mysql::{DriverError as D, Error as E};
    use std::io::ErrorKind as K;
    let limit = format_duration(deadline.limit());
    let io_error: Option<&std::io::Error> = match err {
        E::IoError(e) => Some(e),
        // A socket error inside the packet codec (its type is not exported; its source is the io::Error).
        E::CodecError(c) => std::error::Error::source(c).and_then(|s| s.downcast_ref::<std::io::Error>()),
        _ => None,
    };
    // rustls reports a failed handshake (unknown issuer, bad name) as an io::Error wrapping its own.
    if let Some(tls) = io_error.and_then(|e| e.get_ref()).and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return format!("TLS with {target}: {tls}");
    }
    let io_kind = match err {
        E::DriverError(D::CouldNotConnect(Some((_, _, kind)))) => Some(*kind),
        _ => io_error.map(|e| e.kind()),
    };
    match (err, io_kind) {
        (_, Some(K::ConnectionRefused)) => format!("cannot connect to {target}: connection refused"),
        (_, Some(K::NotFound)) => format!("cannot connect to {target}: no such socket"),
        (_, Some(K::PermissionDenied)) => format!("cannot connect to {target}: permission denied"),
        (E::DriverError(D::ConnectTimeout), _) | (E::DriverError(D::CouldNotConnect(_)), Some(K::TimedOut)) => {
            format!("cannot connect to {target}: no answer within {limit}")
        }
        (_, Some(K::WouldBlock | K::TimedOut)) if step == "connect" => {
            format!("{target} did not answer the MySQL handshake within {limit}")
        }
        (_, Some(K::WouldBlock | K::TimedOut)) => format!("{step} on {target}: no answer within {limit}"),
        (_, Some(K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe)) if step == "connect" => {
            format!("{target} closed the connection during the MySQL handshake (is this a MySQL server?)")
        }
        (_, Some(K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe)) => format!("{step} on {target}: the server closed the connection"),
        (
            E::CodecError(_)
            | E::DriverError(
                D::UnexpectedPacket | D::PacketOutOfSync | D::UnsupportedProtocol(_) | D::Protocol41NotSet | D::CouldNotParseVersion,
            ),
            _,
        ) => {
            format!("{target} does not speak the MySQL protocol ({})", words(err))
        }
        (E::MySqlError(e), _) if step == "connect" => format!("log in to {target}: {e}"),
        (E::MySqlError(e), _) => format!("{step} on {target}: {e}"),
        (E::TlsError(e), _) => format!("TLS with {target}: {e}"),
        _ if step == "connect" => format!("cannot connect to {target}: {}", words(err)),
        _ => format!("{step} on {target}: {}", words(err)),
    }
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

impl<'a> Session<'a> {
    /// Connects and logs in within the deadline.
    pub fn open(target: &MysqlTarget, deadline: &'a Deadline) -> Result<Session<'a>> {
        // The step covers TCP connect, the server's greeting, TLS and login: the MySQL handshake.
        let step = format!("MySQL handshake with {}", target.address);
        let _step = Step::begin(&step);
        let left = deadline.remaining(&step)?;
        let mut opts = mysql::OptsBuilder::new()
            .user(Some(target.user.clone()))
            .pass(target.password.as_ref().map(|p| p.expose().to_string()))
            .tcp_connect_timeout(Some(left))
            .read_timeout(Some(left))
            .write_timeout(Some(left))
            .prefer_socket(false)
            .max_allowed_packet(Some(16 << 20))
            .stmt_cache_size(0)
            .ssl_opts(target.ssl_opts()?);
        opts = match &target.address {
            Address::Tcp { host, port } => opts.ip_or_hostname(Some(host.clone())).tcp_port(*port),
            Address::Socket(path) => opts.socket(Some(path.to_string_lossy().into_owned())),
        };
        let conn = mysql::Conn::new(opts).map_err(|e| anyhow!(explain(&e, &target.address, "connect", deadline)))?;
        Ok(Session { conn, address: target.address.clone(), deadline })
    }

    /// Runs `sql` and returns its rows; `step` names it in errors.
    pub fn rows(&mut self, sql: &str) -> Result<Vec<RowMap>> {
        self.try_rows(sql)?.map_err(|e| anyhow!(explain(&e, &self.address, sql, self.deadline)))
    }

    /// Runs the first statement the server knows: a syntax error (1064) moves on to the next.
    /// Any other error is an error, never "no rows".
    pub fn rows_first_known(&mut self, statements: &[&str]) -> Result<(String, Vec<RowMap>)> {
        for sql in statements {
            match self.try_rows(sql)? {
                Ok(rows) => return Ok((sql.to_string(), rows)),
                Err(mysql::Error::MySqlError(e)) if e.code == ER_PARSE_ERROR => continue,
                Err(e) => return Err(anyhow!(explain(&e, &self.address, sql, self.deadline))),
            }
        }
        Err(anyhow!("{} knows none of: {}", self.address, statements.join(", ")))
    }

    fn try_rows(&mut self, sql: &str) -> Result<std::result::Result<Vec<RowMap>, mysql::Error>> {
        let step = format!("{sql} on {}", self.address);
        let _step = Step::begin(&step);
        self.deadline.remaining(&step)?;
        let mut result = match self.conn.query_iter(sql) {
            Ok(result) => result,
            Err(e) => return Ok(Err(e)),
        };
        let mut rows = Vec::new();
        while let Some(row) = result.next() {
            match row {
                Ok(row) if rows.len() < MAX_ROWS => rows.push(row_map(row)),
                Ok(_) => {
                    // Dropping the result would read the rest of it, which may never end.
                    std::mem::forget(result);
                    anyhow::bail!("{step}: more than {MAX_ROWS} rows, far more than a real server answers");
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(rows))
    }
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
            for step in ["connect", "SHOW GLOBAL VARIABLES"] {
                let m = explain(e, &target, step, &deadline);
                assert!(!m.contains("DriverError") && !m.contains("IoError") && !m.contains("CodecError"), "{m}");
                assert!(m.contains("10.0.0.2:3306"), "{m}");
            }
        }
    }
}
