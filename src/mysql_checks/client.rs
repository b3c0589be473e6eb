//! Talking to one MySQL/MariaDB server: where it is and who we are (options, my.cnf, `MYSQL_PWD`),
//! one connection bounded by the deadline, and errors that name the step and the server.

use super::defaults_file::ClientGroup;
use super::replication::RowMap;
use crate::cli::{Address, ServerArgs, TlsArgs};
use crate::credentials::{PasswordSource, Secret};
use crate::deadline::{Deadline, Step};
use crate::duration::format_duration;
use anyhow::{anyhow, Context, Result};
use mysql::prelude::Queryable;
use std::path::PathBuf;

/// MySQL's default port.
pub const DEFAULT_PORT: u16 = 3306;

/// Environment variable the mysql client reads a password from.
pub const PASSWORD_ENV: &str = "MYSQL_PWD";

/// MySQL error: a statement the server does not know (older or newer syntax).
const ER_PARSE_ERROR: u16 = 1064;

/// Everything needed to connect and log in to one server.
#[derive(Clone, Debug)]
pub struct MysqlTarget {
    /// TCP address or Unix socket.
    pub address: Address,
    /// User to log in as.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
    /// Where the password came from.
    pub password_source: PasswordSource,
    /// TLS options (from the command line, or `ssl-ca` of the defaults file).
    pub tls: TlsArgs,
}

/// The login name of the user running the check (the mysql client's default user).
pub fn login_name() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; we copy the name at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        }
    }
    "root".into()
}

impl MysqlTarget {
    /// Resolves the server options, then the defaults file, then the built-in defaults, as the
    /// mysql client does: command line first.
    pub fn resolve(server: &ServerArgs, defaults_file: Option<&std::path::Path>) -> Result<MysqlTarget> {
        let group = match defaults_file {
            Some(path) => ClientGroup::load(path)?,
            None => ClientGroup::default(),
        };
        let address = if server.socket.is_some() {
            // --socket on the command line wins (and refuses a port beside it).
            server.address(DEFAULT_PORT)?
        } else {
            let host = server.host.clone().or_else(|| group.host.clone());
            let port = server.given_port()?.or(group.port);
            match (&host, port, &group.socket) {
                // As the mysql client: host "localhost" (or nothing but a socket) means the socket.
                (Some(h), None, Some(sock)) if h == "localhost" => Address::Socket(sock.clone()),
                (None, None, Some(sock)) => Address::Socket(sock.clone()),
                _ => Address::Tcp { host: host.unwrap_or_else(|| "127.0.0.1".into()), port: port.unwrap_or(DEFAULT_PORT) },
            }
        };
        let (password, password_source) = match server.command_line_password()? {
            Some((secret, source)) => (Some(secret), source),
            None => match group.password.clone() {
                Some(p) => (Some(p), PasswordSource::DefaultsFile),
                None => crate::cli::env_password(PASSWORD_ENV),
            },
        };
        let mut tls = server.tls.clone();
        if tls.tls_ca.is_none() {
            tls.tls_ca = group.ssl_ca.clone();
        }
        Ok(MysqlTarget {
            address,
            user: server.user.clone().or(group.user).unwrap_or_else(login_name),
            password,
            password_source,
            tls,
        })
    }

    /// The same login for another server (a replica to probe).
    pub fn at(&self, address: Address) -> MysqlTarget {
        MysqlTarget { address, ..self.clone() }
    }

    fn ssl_opts(&self) -> Result<Option<mysql::SslOpts>> {
        if !self.tls.enabled() {
            return Ok(None);
        }
        let mut ssl = mysql::SslOpts::default();
        if let Some(ca) = &self.tls.tls_ca {
            std::fs::metadata(ca).with_context(|| format!("cannot read CA certificate {}", ca.display()))?;
            ssl = ssl.with_root_cert_path(Some(PathBuf::from(ca)));
        }
        if let (Some(cert), Some(key)) = (&self.tls.tls_cert, &self.tls.tls_key) {
            crate::credentials::check_private(key, "TLS key")?;
            ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(cert.clone(), key.clone())));
        }
        Ok(Some(ssl))
    }
}

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
        (E::CodecError(_) | E::DriverError(D::UnexpectedPacket | D::PacketOutOfSync | D::UnsupportedProtocol(_) | D::Protocol41NotSet | D::CouldNotParseVersion), _) => {
            format!("{target} does not speak the MySQL protocol ({err})")
        }
        (E::MySqlError(e), _) if step == "connect" => format!("log in to {target}: {e}"),
        (E::MySqlError(e), _) => format!("{step} on {target}: {e}"),
        (E::TlsError(e), _) => format!("TLS with {target}: {e}"),
        _ if step == "connect" => format!("cannot connect to {target}: {err}"),
        _ => format!("{step} on {target}: {err}"),
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
        Ok(self.conn.query_iter(sql).and_then(|result| result.map(|row| row.map(row_map)).collect()))
    }
}
