//! The driver edge: what went wrong talking to a server, as a type the checks branch on (never
//! on the text). Each driver's session classifies its own errors into a [`Cause`]; an
//! [`EdgeError`] renders it in the words the checks print.

use crate::duration::format_duration;
use std::fmt;
use std::time::Duration;

/// Why an exchange with a server failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The port refused the connection.
    Refused,
    /// The Unix socket does not exist.
    NoSuchSocket,
    /// The socket or port may not be used by this user.
    PermissionDenied,
    /// No connection within the deadline.
    ConnectTimedOut,
    /// Connected, but no answer within the deadline.
    TimedOut,
    /// The server closed the connection.
    Closed,
    /// The answer is not the protocol expected (the driver's words).
    NotTheProtocol(String),
    /// The TLS handshake failed (the TLS library's words).
    Tls(String),
    /// The server answered with an error: its code (`NOAUTH`, `1045`) and its whole error line.
    Server {
        /// The error code, as the protocol spells it.
        code: String,
        /// The line as the server sent it (Redis: `NOAUTH Authentication required.`; MySQL:
        /// `ERROR 1045 (28000): Access denied ...`).
        text: String,
    },
    /// Anything else, in the driver's words.
    Other(String),
}

/// Which protocol was spoken: each says things its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Redis, Valkey or Sentinel.
    Redis,
    /// MySQL or MariaDB.
    Mysql,
}

/// Where in the exchange it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Connecting, and for MySQL the handshake and login with it.
    Connect,
    /// A request after the connection: its step as the check names it (Redis:
    /// `INFO replication on 10.0.0.2:6379`; MySQL: the statement, the server is added).
    Request(String),
}

/// A failed exchange with one server: the protocol, the stage, the server and the cause. Its
/// `Display` is the line the check prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeError {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// Where it failed.
    pub stage: Stage,
    /// The server (`host:port` or the socket path).
    pub target: String,
    /// Why.
    pub cause: Cause,
    /// The deadline of the run, named in timeouts.
    pub limit: Duration,
    /// What the operator can do, appended in parentheses.
    pub hint: Option<&'static str>,
}

impl EdgeError {
    /// A failure of `stage` on `target` for `cause`, under a deadline of `limit`.
    pub fn new(protocol: Protocol, stage: Stage, target: impl fmt::Display, cause: Cause, limit: Duration) -> EdgeError {
        EdgeError { protocol, stage, target: target.to_string(), cause, limit, hint: None }
    }

    /// The server's error code, when the server answered with an error.
    pub fn server_code(&self) -> Option<&str> {
        match &self.cause {
            Cause::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Adds what the operator can do.
    pub fn with_hint(mut self, hint: &'static str) -> EdgeError {
        self.hint = Some(hint);
        self
    }

    /// The Redis words: `cannot connect to T: W` or `STEP: W`.
    fn redis_line(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let words = match &self.cause {
            Cause::TimedOut | Cause::ConnectTimedOut => format!("no answer within the {} deadline", format_duration(self.limit)),
            Cause::Refused => "connection refused".into(),
            Cause::NotTheProtocol(_) => "the reply is not the Redis protocol (is another kind of server on this port?)".into(),
            Cause::Closed => "the server closed the connection".into(),
            Cause::NoSuchSocket => "no such socket".into(),
            Cause::PermissionDenied => "permission denied".into(),
            Cause::Server { text, .. } => text.clone(),
            Cause::Tls(words) | Cause::Other(words) => words.clone(),
        };
        match &self.stage {
            Stage::Connect => write!(f, "cannot connect to {}: {words}", self.target),
            Stage::Request(step) => write!(f, "{step}: {words}"),
        }
    }

    /// The MySQL words, which name the handshake when it is the one that failed.
    fn mysql_line(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (target, limit) = (&self.target, format_duration(self.limit));
        let connect = self.stage == Stage::Connect;
        let step = match &self.stage {
            Stage::Connect => "connect",
            Stage::Request(step) => step,
        };
        match &self.cause {
            Cause::Refused => write!(f, "cannot connect to {target}: connection refused"),
            Cause::NoSuchSocket => write!(f, "cannot connect to {target}: no such socket"),
            Cause::PermissionDenied => write!(f, "cannot connect to {target}: permission denied"),
            Cause::ConnectTimedOut => write!(f, "cannot connect to {target}: no answer within {limit}"),
            Cause::TimedOut if connect => write!(f, "{target} did not answer the MySQL handshake within {limit}"),
            Cause::TimedOut => write!(f, "{step} on {target}: no answer within {limit}"),
            Cause::Closed if connect => write!(f, "{target} closed the connection during the MySQL handshake (is this a MySQL server?)"),
            Cause::Closed => write!(f, "{step} on {target}: the server closed the connection"),
            Cause::NotTheProtocol(words) => write!(f, "{target} does not speak the MySQL protocol ({words})"),
            // At the connect stage, the server's error is the answer to the login.
            Cause::Server { text, .. } if connect => write!(f, "log in to {target}: {text}"),
            Cause::Tls(words) => write!(f, "TLS with {target}: {words}"),
            Cause::Other(words) if connect => write!(f, "cannot connect to {target}: {words}"),
            Cause::Server { text: words, .. } | Cause::Other(words) => write!(f, "{step} on {target}: {words}"),
        }
    }
}

impl fmt::Display for EdgeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.protocol {
            Protocol::Redis => self.redis_line(f)?,
            Protocol::Mysql => self.mysql_line(f)?,
        }
        match self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for EdgeError {}

/// Adds `hint` to `err`: to the edge error it carries, or else to its text.
pub fn add_hint(err: anyhow::Error, hint: &'static str) -> anyhow::Error {
    match err.downcast::<EdgeError>() {
        Ok(edge) => anyhow::Error::new(edge.with_hint(hint)),
        Err(other) => anyhow::anyhow!("{other:#} ({hint})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(protocol: Protocol, stage: Stage, cause: Cause) -> String {
        EdgeError::new(protocol, stage, "10.0.0.2:3306", cause, Duration::from_secs(3)).to_string()
    }

    /// Every cause, in both protocols and both stages: the server is named, no driver type name
    /// appears, and a hint is appended in parentheses.
    #[test]
    fn every_cause_names_the_server() {
        let causes = [
            Cause::Refused,
            Cause::NoSuchSocket,
            Cause::PermissionDenied,
            Cause::ConnectTimedOut,
            Cause::TimedOut,
            Cause::Closed,
            Cause::NotTheProtocol("bad packet".into()),
            Cause::Tls("invalid peer certificate".into()),
            Cause::Server { code: "1045".into(), text: "ERROR 1045 (28000): Access denied".into() },
            Cause::Other("boom".into()),
        ];
        for cause in causes {
            for stage in [Stage::Connect, Stage::Request("INFO on 10.0.0.2:3306".into())] {
                for protocol in [Protocol::Redis, Protocol::Mysql] {
                    let m = line(protocol, stage.clone(), cause.clone());
                    assert!(m.contains("10.0.0.2:3306"), "{m}");
                    assert!(!m.contains("Error") && !m.contains("Cause"), "{m}");
                }
            }
        }
        let e = EdgeError::new(Protocol::Redis, Stage::Request("INFO on h:1".into()), "h:1", Cause::Refused, Duration::from_secs(1));
        assert_eq!(e.with_hint("give --password-file").to_string(), "INFO on h:1: connection refused (give --password-file)");
    }

    /// The exact words of the main cases (the messages users read today).
    #[test]
    fn the_words() {
        let redis = |c| line(Protocol::Redis, Stage::Connect, c);
        assert_eq!(redis(Cause::TimedOut), "cannot connect to 10.0.0.2:3306: no answer within the 3s deadline");
        let mysql = |s, c| line(Protocol::Mysql, s, c);
        let server = Cause::Server { code: "1045".into(), text: "ERROR 1045 (28000): Access denied".into() };
        assert_eq!(mysql(Stage::Connect, server.clone()), "log in to 10.0.0.2:3306: ERROR 1045 (28000): Access denied");
        assert_eq!(mysql(Stage::Request("SELECT 1".into()), server), "SELECT 1 on 10.0.0.2:3306: ERROR 1045 (28000): Access denied");
        assert_eq!(mysql(Stage::Connect, Cause::TimedOut), "10.0.0.2:3306 did not answer the MySQL handshake within 3s");
        let hinted = add_hint(anyhow::anyhow!("deadline passed"), "hint");
        assert_eq!(format!("{hinted:#}"), "deadline passed (hint)");
    }
}
