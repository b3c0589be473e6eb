//! Talking to one Redis server or Sentinel: one connection, socket timeouts from the deadline, and
//! errors that name the step and the server.

use crate::cli::{Address, TlsArgs};
use crate::credentials::Secret;
use crate::deadline::{Deadline, Step};
use crate::edge::{add_hint, Cause, EdgeError, Protocol, Stage};
use anyhow::{anyhow, Result};
use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError};

/// How to log in: optional ACL user and password, and which options give them (for the hint when
/// the server refuses the login or wants a password).
#[derive(Clone, Debug)]
pub struct Login {
    /// ACL user (`AUTH user pass`); `None` means the default user.
    pub user: Option<String>,
    /// The password, if any.
    pub password: Option<Secret>,
    /// The options that give them: what a refusal points at.
    pub source: Credentials,
}

/// Which options give a login, for the hints of a refused or missing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The server's: `--user`, `--password-file`, `REDISCLI_AUTH`.
    Server,
    /// The Sentinels': `--sentinel-password-file`.
    Sentinel,
}

impl Credentials {
    /// What to check when the server refused the login.
    fn refused(self) -> &'static str {
        match self {
            Credentials::Server => "check --user and the password file or REDISCLI_AUTH",
            Credentials::Sentinel => "check --sentinel-password-file (the Sentinels' requirepass)",
        }
    }

    /// What to check when TLS failed: the TLS options that apply to this server.
    fn tls_failed(self) -> &'static str {
        match self {
            Credentials::Server => "check --tls-ca, --tls-cert and --tls-key, and that this port speaks TLS",
            Credentials::Sentinel => {
                "check --sentinel-tls-ca, --sentinel-tls-cert and --sentinel-tls-key, and that the Sentinel's port speaks TLS"
            }
        }
    }

    /// What a TLS connection that got no answer at all may mean.
    fn tls_unanswered(self) -> &'static str {
        match self {
            Credentials::Server => {
                "nothing came back over TLS: a plain-text port never answers a TLS handshake; if this port is not a TLS port, drop --tls and --tls-ca"
            }
            Credentials::Sentinel => {
                "nothing came back over TLS: a plain-text port never answers a TLS handshake; if this Sentinel does not speak TLS, drop --sentinel-tls and --sentinel-tls-ca"
            }
        }
    }

    /// What a plain-text connection closed before any answer may mean.
    fn plain_closed(self) -> &'static str {
        match self {
            Credentials::Server => "a TLS port closes plain-text connections: if this is one, give --tls-ca (or --tls)",
            Credentials::Sentinel => {
                "a TLS port closes plain-text connections: if this Sentinel speaks TLS, give --sentinel-tls-ca (or --sentinel-tls)"
            }
        }
    }

    /// What to give when the server wants a password it did not get.
    fn needed(self) -> &'static str {
        match self {
            Credentials::Server => NEEDS_PASSWORD,
            Credentials::Sentinel => "the Sentinel needs a password: give --sentinel-password-file",
        }
    }
}

/// Whether `e` is the server refusing a login or asking for one (never a timeout, a TLS failure
/// or a closed connection: those have hints of their own).
fn refused_login(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<EdgeError>().and_then(EdgeError::server_code),
        Some("WRONGPASS") | Some("NOAUTH") | Some("NOPERM") | Some("ERR")
    )
}

/// An open connection to one server, with the address and deadline every step is reported against.
pub struct Session<'a> {
    conn: redis::Connection,
    address: &'a Address,
    deadline: &'a Deadline,
    /// Whose credentials logged in: what a `NOAUTH` points at.
    source: Credentials,
    /// Whether the connection uses TLS (then the first exchange is also the TLS handshake).
    tls: bool,
    /// Whether the server has answered anything yet.
    answered: bool,
}

/// The system CA bundle, used with `--tls` when no `--tls-ca` is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn certificates(tls: &TlsArgs) -> Result<redis::TlsCertificates> {
    use crate::credentials::{limits, read_bounded};
    let read = |p: &std::path::Path, what: &str| {
        read_bounded(p, if what == "CA certificate" { limits::CA_BUNDLE } else { limits::CERTIFICATE }, what)
    };
    let root_cert = match &tls.tls_ca {
        Some(ca) => Some(read(ca, "CA certificate")?),
        None => read_bounded(std::path::Path::new(SYSTEM_CA_BUNDLE), limits::CA_BUNDLE, "CA bundle").ok(),
    };
    let client_tls = match (&tls.tls_cert, &tls.tls_key) {
        (Some(cert), Some(key)) => {
            crate::credentials::check_private(key, "TLS key")?;
            Some(redis::ClientTlsConfig { client_cert: read(cert, "client certificate")?, client_key: read(key, "TLS key")? })
        }
        _ => None,
    };
    Ok(redis::TlsCertificates { client_tls, root_cert })
}

/// The TLS library's error inside `err`, in its words, when TLS is what failed (redis-rs keeps the
/// I/O error that carries it behind an `Arc`).
fn tls_error(err: &RedisError) -> Option<String> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let source = std::error::Error::source(err)?;
    let inner: &(dyn std::error::Error + 'static) = match source.downcast_ref::<Shared>() {
        Some(shared) => shared.as_ref(),
        None => source,
    };
    let io = inner.downcast_ref::<std::io::Error>()?;
    let t = io.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match t {
        rustls::Error::InvalidMessage(_) => format!("the answer to the TLS handshake is not TLS ({t}): this port may not speak TLS"),
        _ => format!("TLS: {t}"),
    })
}

/// Why a redis-rs call failed, as the edge's [`Cause`].
pub fn cause_of(err: &RedisError) -> Cause {
    let server = |code: &str, detail: Option<&str>| Cause::Server {
        code: code.to_string(),
        text: format!("{code} {}", detail.unwrap_or_default()).trim_end().to_string(),
    };
    if let Some(words) = tls_error(err) {
        Cause::Tls(words)
    } else if err.is_timeout() {
        Cause::TimedOut
    } else if err.is_connection_refusal() {
        Cause::Refused
    } else if err.kind() == redis::ErrorKind::Parse {
        Cause::NotTheProtocol(err.to_string())
    } else if err.is_connection_dropped() {
        Cause::Closed
    } else if let Some(first) = err.clone().into_server_errors().and_then(|errs| errs.first().cloned()) {
        // A pipeline's errors: the first one says it (the others repeat it).
        server(first.1.code(), first.1.details())
    } else if let Some(code) = err.code() {
        server(code, err.detail())
    } else {
        Cause::Other(err.to_string())
    }
}

/// The edge error of `err` at `stage` against `address`.
fn edge_error(err: &RedisError, stage: Stage, address: &Address, deadline: &Deadline) -> anyhow::Error {
    anyhow::Error::new(EdgeError::new(Protocol::Redis, stage, address, cause_of(err), deadline.limit()))
}

/// What to do when a server wants a password it did not get.
const NEEDS_PASSWORD: &str = "the server needs a password: give --password-file or REDISCLI_AUTH";

impl<'a> Session<'a> {
    /// Connects (TCP, TLS or Unix socket) within the deadline and logs in when a password is given.
    pub fn open(address: &'a Address, tls: &TlsArgs, login: &Login, deadline: &'a Deadline) -> Result<Self> {
        let step = format!("connect to {address}");
        let _step = Step::begin(&step);
        let left = deadline.remaining(&step)?;
        let use_tls = tls.enabled() && matches!(address, Address::Tcp { .. });
        let addr = match address {
            Address::Tcp { host, port } if use_tls => {
                ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
            }
            Address::Tcp { host, port } => ConnectionAddr::Tcp(host.clone(), *port),
            Address::Socket(path) => ConnectionAddr::Unix(path.clone()),
        };
        let info = addr
            .into_connection_info()
            .map_err(|e| anyhow!("cannot set up a connection to {address}: {e}"))?
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let client = if use_tls { Client::build_with_tls(info, certificates(tls)?) } else { Client::open(info) }
            .map_err(|e| anyhow!("cannot set up a connection to {address}: {e}"))?;
        let conn = client.get_connection_with_timeout(left).map_err(|e| edge_error(&e, Stage::Connect, address, deadline))?;
        drop(_step);
        let mut session = Session { conn, address, deadline, source: login.source, tls: use_tls, answered: false };
        if let Some(password) = &login.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &login.user {
                auth.arg(user);
            }
            auth.arg(password.expose());
            let who = login.user.as_deref().map(|u| format!(" as {u}")).unwrap_or_default();
            let source = login.source;
            session.request::<redis::Value>(&auth, &format!("log in to {address}{who}")).map_err(|e| {
                if refused_login(&e) {
                    add_hint(e, source.refused())
                } else {
                    e
                }
            })?;
        }
        Ok(session)
    }

    /// Sends one command and reads its reply, within the deadline; `step` names it in errors.
    pub fn request<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd, step: &str) -> Result<T> {
        self.exchange(step, |conn| cmd.query(conn))
    }

    fn exchange<T>(&mut self, step: &str, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        let _step = Step::begin(step);
        let left = self.deadline.remaining(step)?;
        let (source, tls, first) = (self.source, self.tls, !self.answered);
        let failed = |e: RedisError| {
            let e = edge_error(&e, Stage::Request(step.to_string()), self.address, self.deadline);
            let cause = e.downcast_ref::<EdgeError>().map(|edge| edge.cause.clone());
            match cause {
                // A server that wants a password it did not get: say which option gives it.
                Some(Cause::Server { code, .. }) if code == "NOAUTH" => add_hint(e, source.needed()),
                Some(Cause::Tls(_)) => add_hint(e, source.tls_failed()),
                Some(Cause::TimedOut) if tls && first => add_hint(e, source.tls_unanswered()),
                Some(Cause::Closed) if !tls && first => add_hint(e, source.plain_closed()),
                _ => e,
            }
        };
        self.conn.set_read_timeout(Some(left)).and_then(|_| self.conn.set_write_timeout(Some(left))).map_err(failed)?;
        let reply = f(&mut self.conn).map_err(failed);
        self.answered |= reply.is_ok();
        reply
    }

    /// `INFO server`, `INFO replication` and `INFO persistence` in one round trip, as one text.
    ///
    /// One `INFO` with its default sections (server, replication and persistence among them), not a
    /// pipeline of three: a server that answers with an error and closes (`ERR max number of clients
    /// reached`, a protected-mode refusal) is then reported in its own words, where the second reply
    /// of a pipeline would only say that the connection was closed. Every Redis and Valkey version
    /// knows it.
    pub fn replication_info(&mut self) -> Result<String> {
        let step = format!("INFO replication on {}", self.address);
        self.request::<String>(&redis::cmd("INFO"), &step)
    }
}
