//! Who logs in to which MySQL/MariaDB server: the options, then the my.cnf `[client]` group, then
//! `MYSQL_PWD` and the built-in defaults, as the mysql client resolves them.

use super::defaults_file::ClientGroup;
use crate::cli::{Address, ClientDefaults, ServerArgs, TlsArgs};
use crate::credentials::{PasswordSource, Secret};
use anyhow::Result;
use std::path::PathBuf;

/// MySQL's default port.
pub const DEFAULT_PORT: u16 = 3306;

/// Environment variable the mysql client reads a password from.
pub const PASSWORD_ENV: &str = "MYSQL_PWD";

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
        let defaults = ClientDefaults { host: group.host.clone(), port: group.port, socket: group.socket.clone() };
        let address = server.address_with(&defaults, DEFAULT_PORT)?;
        let (password, password_source) = server.password(group.password.clone(), PASSWORD_ENV)?;
        let mut tls = server.tls.clone();
        if tls.tls_ca.is_none() {
            tls.tls_ca = group.ssl_ca.clone();
        }
        Ok(MysqlTarget { address, user: server.user.clone().or(group.user).unwrap_or_else(login_name), password, password_source, tls })
    }

    /// The `login` fact: who logs in and where the password came from (never the password).
    pub fn login_fact(&self) -> String {
        crate::credentials::login_fact(Some(&self.user), self.password_source)
    }

    /// The same login for another server (a replica to probe).
    pub fn at(&self, address: Address) -> MysqlTarget {
        MysqlTarget { address, ..self.clone() }
    }

    /// The driver's TLS options, `None` without TLS; checks the CA file and the key's mode.
    pub fn ssl_opts(&self) -> Result<Option<mysql::SslOpts>> {
        if !self.tls.enabled() {
            return Ok(None);
        }
        let mut ssl = mysql::SslOpts::default();
        use crate::credentials::{limits, read_bounded};
        if let Some(ca) = &self.tls.tls_ca {
            // The driver reads the file itself: make sure it is a regular file of a sane size first.
            read_bounded(ca, limits::CA_BUNDLE, "CA certificate")?;
            ssl = ssl.with_root_cert_path(Some(PathBuf::from(ca)));
        }
        if let (Some(cert), Some(key)) = (&self.tls.tls_cert, &self.tls.tls_key) {
            crate::credentials::check_private(key, "TLS key")?;
            read_bounded(cert, limits::CERTIFICATE, "client certificate")?;
            read_bounded(key, limits::CERTIFICATE, "TLS key")?;
            ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(cert.clone(), key.clone())));
        }
        Ok(Some(ssl))
    }
}
