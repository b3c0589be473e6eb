//! Who logs in to which MySQL/MariaDB server: the options, then the my.cnf `[client]` group, then
//! `MYSQL_PWD` and the built-in defaults, as the mysql client resolves them.

use super::auth::{check_pinned_key, FullAuthentication, TlsVerify};
use super::defaults_file::ClientGroup;
use super::MysqlArgs;
use crate::cli::{Address, ClientDefaults, ServerArgs, TlsArgs};
use crate::credentials::{PasswordSource, Secret};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

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
    /// How TLS verifies the server, when TLS is on.
    pub tls_verify: TlsVerify,
    /// The pinned server key for full authentication (`--server-public-key`), checked.
    pub server_public_key: Option<PathBuf>,
    /// `--get-server-public-key`: full authentication may use the key the server sends.
    pub get_server_public_key: bool,
}

/// CA bundles of the system, tried in order when TLS is asked for without `--tls-ca` (Debian,
/// then Red Hat): the MySQL driver trusts no CA compiled into the executable.
const SYSTEM_CA_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

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
    pub fn resolve(server: &ServerArgs, mysql: &MysqlArgs) -> Result<MysqlTarget> {
        let group = match mysql.defaults_file.as_deref() {
            Some(path) => ClientGroup::load(path)?,
            None => ClientGroup::default(),
        };
        if let (Some(path), None, None) = (mysql.defaults_file.as_deref(), &server.user, &server.password_file) {
            group.refuse_login_elsewhere(path)?;
        }
        let defaults = ClientDefaults { host: group.host.clone(), port: group.port, socket: group.socket.clone() };
        let address = server.address_with(&defaults, DEFAULT_PORT)?;
        let (password, password_source) = server.password(group.password.clone(), PASSWORD_ENV)?;
        let mut tls = server.tls.clone();
        if tls.tls_ca.is_none() {
            tls.tls_ca = group.ssl_ca.clone();
        }
        let tls_verify = mysql.tls_verify.or(group.ssl_mode);
        tls.tls |= tls_verify.is_some();
        let mut target = MysqlTarget {
            address,
            user: server.user.clone().or(group.user.clone()).unwrap_or_else(login_name),
            password,
            password_source,
            tls,
            tls_verify: tls_verify.unwrap_or_default(),
            server_public_key: None,
            get_server_public_key: false,
        };
        target.set_full_authentication(&group, mysql.server_public_key.as_deref(), mysql.get_server_public_key)?;
        Ok(target)
    }

    /// Takes the full-authentication options (the command line over the defaults file's
    /// `server-public-key-path` and `get-server-public-key`) and checks a pinned key.
    pub fn set_full_authentication(&mut self, group: &ClientGroup, key: Option<&Path>, opt_in: bool) -> Result<()> {
        if let Some(key) = key.map(Path::to_path_buf).or_else(|| group.server_public_key.clone()) {
            check_pinned_key(&key)?;
            self.server_public_key = Some(key);
        }
        self.get_server_public_key |= opt_in || group.get_server_public_key;
        if self.tls.enabled() && self.tls_verify == TlsVerify::Ca && self.tls.tls_ca.is_none() {
            bail!("--tls-verify ca checks the chain against --tls-ca (or ssl-ca): give the CA that signed the server's certificate");
        }
        Ok(())
    }

    /// What protects the password if the server asks for full authentication.
    pub fn full_authentication(&self) -> FullAuthentication {
        let tls = self.tls.enabled().then_some(self.tls_verify);
        FullAuthentication::for_connection(&self.address, tls, self.server_public_key.as_deref(), self.get_server_public_key)
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
        let mut ssl = mysql::SslOpts::default().with_danger_skip_domain_validation(self.tls_verify == TlsVerify::Ca);
        use crate::credentials::{limits, read_bounded};
        let ca = match &self.tls.tls_ca {
            Some(ca) => ca.clone(),
            None => match SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
                Some(bundle) => bundle.to_path_buf(),
                None => bail!("--tls without --tls-ca: no system CA bundle found ({})", SYSTEM_CA_BUNDLES.join(", ")),
            },
        };
        // The driver reads the file itself: make sure it is a regular file of a sane size first.
        read_bounded(&ca, limits::CA_BUNDLE, "CA certificate")?;
        ssl = ssl.with_root_cert_path(Some(ca));
        if let (Some(cert), Some(key)) = (&self.tls.tls_cert, &self.tls.tls_key) {
            crate::credentials::check_private(key, "TLS key")?;
            read_bounded(cert, limits::CERTIFICATE, "client certificate")?;
            read_bounded(key, limits::CERTIFICATE, "TLS key")?;
            ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(cert.clone(), key.clone())));
        }
        Ok(Some(ssl))
    }
}
