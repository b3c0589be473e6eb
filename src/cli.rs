//! Command-line options shared by every check, and where the server and its password come from.

use crate::credentials::{read_password_file, PasswordSource, Secret};
use crate::duration::parse_positive_duration;
use crate::report::Format;
use anyhow::{bail, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a server listens: TCP host and port, or a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix socket path.
    Socket(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Socket(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Parses a TCP port (1-65535).
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err("not a TCP port (1-65535)".into()),
        Ok(p) => Ok(p),
    }
}

/// Parses a size in bytes: a number, or one with a K, M or G suffix (1024-based, `B`/`iB` allowed
/// after it: `512k`, `16MB`, `1GiB`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let scale: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{text}' is not a size in bytes (a number, or with K, M or G: 512k, 16MB)")),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("'{text}' is not a size in bytes (a number, or with K, M or G: 512k, 16MB)"))
}

/// Parses `HOST:PORT` (also `[v6]:PORT`) into an address.
pub fn parse_host_port(text: &str) -> Result<Address, String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("'{text}' is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    let port = parse_port(port).map_err(|e| format!("'{text}': {e}"))?;
    Ok(Address::Tcp { host: host.to_string(), port })
}

/// TLS options shared by all checks.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Connect with TLS (verifying the server against the system roots or --tls-ca).
    #[arg(long)]
    pub tls: bool,
    /// CA certificate (PEM) to verify the server with; implies --tls.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; implies --tls.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether TLS is asked for, directly or through a certificate option.
    pub fn enabled(&self) -> bool {
        self.tls || self.tls_ca.is_some() || self.tls_cert.is_some()
    }
}

/// Output options shared by all checks.
#[derive(clap::Args, Clone, Debug)]
pub struct OutputArgs {
    /// Output format: monitoring-plugins text, or one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit code for a warning (keepalived treats any non-zero as a fault: use 0 there).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub warning_exit_code: u8,
}

/// What the runner needs from any check's arguments.
pub struct Common<'a> {
    /// `--timeout`: the whole run's deadline.
    pub timeout: std::time::Duration,
    /// `--format`, `--warning-exit-code`.
    pub output: &'a OutputArgs,
    /// The target to name when resolving it fails (`host:port` as given).
    pub target_hint: String,
    /// A password was given on the command line (the output then says so).
    pub password_on_command_line: bool,
    /// `--drain-file`: while it exists the check is critical without asking the server.
    pub drain_file: Option<&'a std::path::Path>,
}

/// Connection options shared by all checks: which server, which credentials, how long.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Server port, as in the original `check_redis_master.sh 6029` (same as --port).
    #[arg(value_name = "PORT", value_parser = parse_port)]
    pub port_arg: Option<u16>,
    /// Password, as in the original scripts; other local users can read it: prefer --password-file.
    #[arg(value_name = "PASSWORD", hide_default_value = true)]
    pub password_arg: Option<String>,
    /// Server host name or address [default: 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Server port [default: 6379 for Redis, 3306 for MySQL].
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Connect through this Unix socket instead of TCP.
    #[arg(long, value_name = "PATH", conflicts_with = "host")]
    pub socket: Option<PathBuf>,
    /// User name to log in as.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// File whose first line is the password (must not be readable by every user).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Deadline for the whole check: connect, login, queries, probes (3s, 500ms, 1m, 2.5).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// While this file exists the check is critical, "drained by the operator": takes the node out
    /// of this service on purpose (before a restart or a backup), without touching Consul.
    #[arg(long, value_name = "PATH")]
    pub drain_file: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
}

impl ServerArgs {
    /// The port from the positional argument or --port (they must agree), if any.
    pub fn given_port(&self) -> Result<Option<u16>> {
        match (self.port_arg, self.port) {
            (Some(a), Some(b)) if a != b => bail!("the positional PORT {a} and --port {b} disagree"),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// What the runner needs from these options.
    pub fn common(&self, default_port: u16) -> Common<'_> {
        Common {
            timeout: self.timeout,
            output: &self.output,
            target_hint: self.address(default_port).map(|a| a.to_string()).unwrap_or_else(|_| "?".into()),
            password_on_command_line: self.password_arg.as_deref().is_some_and(|p| !p.is_empty()),
            drain_file: self.drain_file.as_deref(),
        }
    }

    /// The server address, with `default_port` when none is given.
    pub fn address(&self, default_port: u16) -> Result<Address> {
        self.address_with(&ClientDefaults::default(), default_port)
    }

    /// The server address: the command line first, then `defaults` (a my.cnf `[client]` group),
    /// then 127.0.0.1 and `default_port`. As the mysql client: host `localhost` with a socket in
    /// the defaults, or only a socket, means that socket.
    pub fn address_with(&self, defaults: &ClientDefaults, default_port: u16) -> Result<Address> {
        let port = self.given_port()?;
        if let Some(path) = &self.socket {
            if port.is_some() {
                bail!("give either --socket or a port, not both");
            }
            return Ok(Address::Socket(path.clone()));
        }
        // `[::1]` and `::1` are the same host; the address prints the brackets itself.
        let host = self.host.clone().or_else(|| defaults.host.clone()).map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
        let port = port.or(defaults.port);
        Ok(match (&host, port, &defaults.socket) {
            (Some(h), None, Some(sock)) if h == "localhost" => Address::Socket(sock.clone()),
            (None, None, Some(sock)) => Address::Socket(sock.clone()),
            _ => Address::Tcp { host: host.unwrap_or_else(|| "127.0.0.1".into()), port: port.unwrap_or(default_port) },
        })
    }

    /// The password given on the command line (--password-file or the positional PASSWORD, not both).
    pub fn command_line_password(&self) -> Result<Option<(Secret, PasswordSource)>> {
        match (&self.password_file, &self.password_arg) {
            (Some(_), Some(_)) => bail!("give the password once: --password-file or the PASSWORD argument"),
            (Some(path), None) => Ok(Some((read_password_file(path)?, PasswordSource::File))),
            // The original scripts passed '""' for "no password".
            (None, Some(p)) if p.is_empty() => Ok(None),
            (None, Some(p)) => Ok(Some((Secret::new(p.clone()), PasswordSource::CommandLine))),
            (None, None) => Ok(None),
        }
    }

    /// The password: the command line first, then `from_file` (a my.cnf password), then `env_var`.
    pub fn password(&self, from_file: Option<Secret>, env_var: &'static str) -> Result<(Option<Secret>, PasswordSource)> {
        Ok(match (self.command_line_password()?, from_file) {
            (Some((secret, source)), _) => (Some(secret), source),
            (None, Some(secret)) => (Some(secret), PasswordSource::DefaultsFile),
            (None, None) => env_password(env_var),
        })
    }
}

/// Where to connect when the command line does not say: a my.cnf `[client]` group's values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientDefaults {
    /// Server host when the command line gives none (`host`).
    pub host: Option<String>,
    /// Server port when the command line gives none (`port`).
    pub port: Option<u16>,
    /// Unix socket used when no host and port are given, or with host `localhost` (`socket`).
    pub socket: Option<PathBuf>,
}

/// A password from an environment variable (empty counts as none).
pub fn env_password(var: &'static str) -> (Option<Secret>, PasswordSource) {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => (Some(Secret::new(p)), PasswordSource::Environment(var)),
        _ => (None, PasswordSource::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> Result<ServerArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.server)
    }

    #[test]
    fn positional_port_and_password_like_the_original() {
        let s = parse(&["6029", "pw"]).unwrap();
        assert_eq!(s.address(6379).unwrap().to_string(), "127.0.0.1:6029");
        let (pw, src) = s.password(None, "CDC_TEST_UNSET_VAR").unwrap();
        assert_eq!(pw.unwrap().expose(), "pw");
        assert_eq!(src, PasswordSource::CommandLine);
        // The original scripts passed '""' for "no password".
        let (pw, _) = parse(&["6029", ""]).unwrap().password(None, "CDC_TEST_UNSET_VAR").unwrap();
        assert!(pw.is_none());
    }

    #[test]
    fn defaults_and_conflicts() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.address(6379).unwrap().to_string(), "127.0.0.1:6379");
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert!(parse(&["6029", "--port", "6030"]).unwrap().address(6379).is_err());
        assert!(parse(&["6029", "--port", "6029"]).unwrap().address(6379).is_ok());
        assert!(parse(&["70000"]).is_err());
        assert!(parse(&["0"]).is_err());
        assert!(parse(&["--timeout", "0s"]).is_err());
        assert!(parse(&["--timeout", "abc"]).is_err());
        assert!(parse(&["--warning-exit-code", "3"]).is_err());
        assert!(parse(&["--socket", "/s", "--host", "h"]).is_err());
        let sock = parse(&["--socket", "/run/redis.sock"]).unwrap();
        assert_eq!(sock.address(6379).unwrap(), Address::Socket("/run/redis.sock".into()));
        assert!(parse(&["--socket", "/s", "6029"]).unwrap().address(6379).is_err());
        assert!(parse(&["--tls-cert", "c"]).is_err(), "cert needs key");
    }

    #[test]
    fn bracketed_ipv6_hosts_print_once() {
        for host in ["[::1]", "::1"] {
            let s = parse(&["--host", host, "--port", "6029"]).unwrap();
            assert_eq!(s.address(6379).unwrap().to_string(), "[::1]:6029", "{host}");
        }
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(parse_host_port("10.0.0.2:26379").unwrap().to_string(), "10.0.0.2:26379");
        assert_eq!(parse_host_port("[::1]:26379").unwrap().to_string(), "[::1]:26379");
        for bad in ["10.0.0.2", ":1", "h:0", "h:x", "h:65536"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_in_bytes() {
        for (text, bytes) in [("1048576", 1048576), ("512k", 512 << 10), ("16MB", 16 << 20), ("1GiB", 1 << 30), ("0", 0), (" 2m ", 2 << 20)]
        {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MB", "1.5MB", "-1", "1TB", "18446744073709551615G", "ten"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
