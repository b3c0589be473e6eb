//! How the password is protected when a server asks for `caching_sha2_password` full
//! authentication: the check sends it only over TLS, over a Unix socket, or RSA-encrypted with a
//! key the operator pinned, unless the operator explicitly accepts the server's own key.
//!
//! MySQL 8.0+ asks for full authentication at the first login of an account after every server
//! restart and `FLUSH PRIVILEGES`. Over plain TCP the driver would then ask the server for its public
//! key and encrypt the password with whatever key comes back: a man in the middle sends his own and
//! reads the password. The driver reads a configured key file before it would ask, and only then;
//! pointing it at a path that cannot exist (below `/dev/null`, which is not a directory) makes that
//! step fail before a byte of the password is sent.

use crate::cli::Address;
use crate::credentials::{limits, read_bounded};
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The key file the driver is given when no key is pinned: it cannot exist (`/dev/null` is not a
/// directory, and nobody can create one there), so full authentication stops before sending.
pub const REFUSAL_KEY_PATH: &str = "/dev/null/no-pinned-server-public-key";

/// How the server's TLS certificate is verified.
#[derive(clap::ValueEnum, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsVerify {
    /// The chain up to the CA and the server's name (MySQL's `--ssl-mode=VERIFY_IDENTITY`).
    #[default]
    Full,
    /// The chain up to `--tls-ca` only, not the name (`--ssl-mode=VERIFY_CA`): for MySQL's
    /// auto-generated certificates, which name no host.
    Ca,
}

impl TlsVerify {
    /// As written on the command line (`full`, `ca`).
    pub fn as_arg(self) -> &'static str {
        match self {
            TlsVerify::Full => "full",
            TlsVerify::Ca => "ca",
        }
    }

    /// Reads a my.cnf `ssl-mode`: `VERIFY_IDENTITY` and `VERIFY_CA` ask for TLS; `DISABLED` and
    /// `PREFERRED` (the client's default) add nothing; `REQUIRED` is refused, since it encrypts
    /// without knowing to whom.
    pub fn from_ssl_mode(value: &str) -> Result<Option<TlsVerify>> {
        match value.trim().to_ascii_uppercase().as_str() {
            "VERIFY_IDENTITY" => Ok(Some(TlsVerify::Full)),
            "VERIFY_CA" => Ok(Some(TlsVerify::Ca)),
            "DISABLED" | "PREFERRED" => Ok(None),
            "REQUIRED" => bail!("ssl-mode=REQUIRED does not verify the server; use VERIFY_CA (with ssl-ca) or VERIFY_IDENTITY"),
            other => bail!("ssl-mode={other} is not one of DISABLED, PREFERRED, VERIFY_CA, VERIFY_IDENTITY"),
        }
    }

    /// How it is named in facts.
    pub fn describe(self) -> &'static str {
        match self {
            TlsVerify::Full => "TLS, certificate and name verified",
            TlsVerify::Ca => "TLS, certificate chain verified against --tls-ca (not the name)",
        }
    }
}

/// What protects the password if the server asks for full authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FullAuthentication {
    /// Sent inside a verified TLS connection.
    Tls(TlsVerify),
    /// Sent over a Unix socket to the local server.
    Socket,
    /// RSA-encrypted with the key the operator pinned (`--server-public-key`).
    PinnedKey(PathBuf),
    /// RSA-encrypted with the key the server sends (`--get-server-public-key`): a man in the middle
    /// can send his own.
    ServerKeyOptIn,
    /// Not sent: the check stops with a critical message naming the ways out.
    Refused,
}

impl FullAuthentication {
    /// The protection for a connection to `address` with these options.
    pub fn for_connection(address: &Address, tls: Option<TlsVerify>, pinned: Option<&Path>, opt_in: bool) -> FullAuthentication {
        match (address, tls, pinned) {
            (Address::Socket(_), _, _) => FullAuthentication::Socket,
            (_, Some(verify), _) => FullAuthentication::Tls(verify),
            (_, None, Some(key)) => FullAuthentication::PinnedKey(key.to_path_buf()),
            (_, None, None) if opt_in => FullAuthentication::ServerKeyOptIn,
            _ => FullAuthentication::Refused,
        }
    }

    /// The key file to give the driver: the pinned one, the refusal path, or none (TLS, socket,
    /// opt-in: the driver then never reads one or asks the server).
    pub fn driver_key_path(&self) -> Option<PathBuf> {
        match self {
            FullAuthentication::PinnedKey(path) => Some(path.clone()),
            FullAuthentication::Refused => Some(PathBuf::from(REFUSAL_KEY_PATH)),
            _ => None,
        }
    }

    /// The `transport` fact: how the login travels, and what protects the password.
    pub fn describe(&self) -> String {
        match self {
            FullAuthentication::Tls(verify) => verify.describe().into(),
            FullAuthentication::Socket => "Unix socket".into(),
            FullAuthentication::PinnedKey(path) => format!("plain TCP, full authentication with the pinned key {}", path.display()),
            FullAuthentication::ServerKeyOptIn => {
                "plain TCP, full authentication with the key the server sends (--get-server-public-key: open to a man in the middle)".into()
            }
            FullAuthentication::Refused => "plain TCP, no full authentication (no pinned key, no TLS)".into(),
        }
    }
}

/// The critical message when a server asked for full authentication the check refuses: names the
/// server and the ways out.
pub fn refusal_message(server: &Address) -> String {
    format!(
        "{server} asks for caching_sha2_password full authentication over plain TCP, and no server key is pinned: \
         the password was not sent (a man in the middle could read it). Ways out: --server-public-key FILE \
         (the server's public_key.pem), --tls (with --tls-ca; --tls-verify ca for MySQL's own certificates), \
         --socket on the server's host, or --get-server-public-key (insecure: trusts the key the server sends)"
    )
}

/// Whether a failed login is the refusal (the driver tried to read [`REFUSAL_KEY_PATH`]).
pub fn is_refusal(err: &mysql::Error) -> bool {
    matches!(err, mysql::Error::IoError(e) if e.raw_os_error() == Some(libc::ENOTDIR))
}

/// Checks a pinned key before the driver reads it: a regular file of a sane size, writable by its
/// owner only (whoever can rewrite it can read the password), and an RSA public key in PEM (a DER
/// sequence in base64). Cheap on purpose: it runs at every check; the driver parses the key only
/// when a server asks for full authentication, inside the handshake's panic guard.
pub fn check_pinned_key(path: &Path) -> Result<()> {
    let what = "server public key";
    let pem = read_bounded(path, limits::CERTIFICATE, what)?;
    let mode = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?.permissions().mode();
    if mode & 0o022 != 0 {
        bail!(
            "{what} {} is writable by other users (mode {:o}), who could pin their own key; run: chmod go-w {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = String::from_utf8_lossy(&pem);
    let body = ["PUBLIC KEY", "RSA PUBLIC KEY"].iter().find_map(|kind| {
        let begin = format!("-----BEGIN {kind}-----");
        let rest = &text[text.find(&begin)? + begin.len()..];
        Some(rest[..rest.find(&format!("-----END {kind}-----"))?].to_string())
    });
    let Some(body) = body else {
        bail!("{what} {} is not an RSA public key in PEM (the server's public_key.pem)", path.display());
    };
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Every DER sequence of an RSA key (PKCS#1 or SubjectPublicKeyInfo) of 1024 bits or more
    // starts with 0x30 0x82: "MII" in base64.
    let base64 = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    if !base64 || body.len() % 4 != 0 || !body.starts_with("MII") {
        bail!("{what} {} is not an RSA public key the MySQL driver can use", path.display());
    }
    Ok(())
}

/// The statement that tells which plugin the logged-in account authenticates with (every account
/// may read its own `SHOW CREATE USER` on MySQL 8.0+).
pub const SHOW_CREATE_USER: &str = "SHOW CREATE USER CURRENT_USER()";

/// The plugin named in a `SHOW CREATE USER` answer (`... IDENTIFIED WITH 'caching_sha2_password' AS ...`).
/// Only the plugin name is kept: the rest holds the password's hash.
pub fn plugin_of_create_user(statement: &str) -> Option<String> {
    let rest = &statement[statement.find("IDENTIFIED WITH ")? + "IDENTIFIED WITH ".len()..];
    let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '`' | '"'))?;
    let name = rest[1..].split(quote).next()?;
    (!name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then(|| name.to_string())
}

/// The warning for a login that works today only by the server's cache: an account on
/// `caching_sha2_password` over plain TCP with full authentication refused will fail at its first
/// login after the server's next restart or `FLUSH PRIVILEGES`.
pub fn cached_login_warning(server: &Address, plugin: &str) -> Option<String> {
    (plugin == "caching_sha2_password").then(|| {
        format!(
            "logged in to {server} by caching_sha2_password's cached fast path over plain TCP: after the server's next \
             restart or FLUSH PRIVILEGES this check will be refused full authentication and go critical; pin the key \
             (--server-public-key), use --tls or --socket, or opt in with --get-server-public-key"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::TempDir;

    #[test]
    fn protection_follows_the_transport_and_options() {
        let tcp = Address::Tcp { host: "10.0.0.2".into(), port: 3306 };
        let sock = Address::Socket("/run/mysqld/mysqld.sock".into());
        let key = Path::new("/etc/mysql/key.pem");
        use FullAuthentication as F;
        assert_eq!(F::for_connection(&tcp, None, None, false), F::Refused);
        assert_eq!(F::for_connection(&tcp, None, None, true), F::ServerKeyOptIn);
        assert_eq!(F::for_connection(&tcp, None, Some(key), true), F::PinnedKey(key.into()));
        assert_eq!(F::for_connection(&tcp, Some(TlsVerify::Ca), Some(key), false), F::Tls(TlsVerify::Ca));
        assert_eq!(F::for_connection(&sock, None, None, false), F::Socket);
        assert_eq!(F::Refused.driver_key_path().unwrap(), PathBuf::from(REFUSAL_KEY_PATH));
        assert_eq!(F::ServerKeyOptIn.driver_key_path(), None);
        assert_eq!(F::Tls(TlsVerify::Full).driver_key_path(), None);
        // The refusal path can never be read, planted or created.
        let e = std::fs::read(REFUSAL_KEY_PATH).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        assert!(is_refusal(&mysql::Error::IoError(e)));
        assert!(!is_refusal(&mysql::Error::IoError(std::io::Error::from(std::io::ErrorKind::ConnectionReset))));
        let m = refusal_message(&tcp);
        for way in ["10.0.0.2:3306", "--server-public-key", "--tls", "--socket", "--get-server-public-key"] {
            assert!(m.contains(way), "{way}: {m}");
        }
    }

    #[test]
    fn ssl_modes() {
        assert_eq!(TlsVerify::from_ssl_mode("verify_identity").unwrap(), Some(TlsVerify::Full));
        assert_eq!(TlsVerify::from_ssl_mode("VERIFY_CA").unwrap(), Some(TlsVerify::Ca));
        assert_eq!(TlsVerify::from_ssl_mode("PREFERRED").unwrap(), None);
        assert!(TlsVerify::from_ssl_mode("REQUIRED").unwrap_err().to_string().contains("does not verify"));
        assert!(TlsVerify::from_ssl_mode("bogus").is_err());
    }

    /// Real `SHOW CREATE USER` answers (MySQL 8.4 and 9.7, the hash shortened).
    #[test]
    fn plugin_from_show_create_user() {
        let sha2 = "CREATE USER `monitor`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$\u{1}x' REQUIRE NONE \
                    PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT";
        assert_eq!(plugin_of_create_user(sha2).as_deref(), Some("caching_sha2_password"));
        let native = "CREATE USER `m`@`localhost` IDENTIFIED WITH 'mysql_native_password' AS '*ABC' REQUIRE NONE";
        assert_eq!(plugin_of_create_user(native).as_deref(), Some("mysql_native_password"));
        assert_eq!(plugin_of_create_user("CREATE USER `m`@`%` REQUIRE NONE"), None);
        assert_eq!(plugin_of_create_user("IDENTIFIED WITH 'x y'"), None);
        assert_eq!(plugin_of_create_user("IDENTIFIED WITH "), None);
        let tcp = Address::Tcp { host: "db".into(), port: 3306 };
        assert!(cached_login_warning(&tcp, "caching_sha2_password").unwrap().contains("next restart"));
        assert_eq!(cached_login_warning(&tcp, "mysql_native_password"), None);
    }

    #[test]
    fn pinned_keys_are_checked() {
        let d = TempDir::new("pinned-key");
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            .output()
            .expect("openssl (make deps)");
        let private = d.file("private.pem", &String::from_utf8_lossy(&out.stdout), 0o600);
        let public = d.join("public.pem");
        let status =
            std::process::Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public).status().unwrap();
        assert!(status.success());
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_pinned_key(&public).unwrap();
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(format!("{:#}", check_pinned_key(&public).unwrap_err()).contains("writable by other users"));
        let garbage = d.file("garbage.pem", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", 0o644);
        assert!(format!("{:#}", check_pinned_key(&garbage).unwrap_err()).contains("the MySQL driver can use"));
        let cert = d.file("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0o644);
        assert!(format!("{:#}", check_pinned_key(&cert).unwrap_err()).contains("not an RSA public key in PEM"));
        assert!(format!("{:#}", check_pinned_key(Path::new("/dev/zero")).unwrap_err()).contains("not a regular file"));
    }
}
