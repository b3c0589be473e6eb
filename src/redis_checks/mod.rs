//! The Redis role checks: `check-redis-master` and `check-redis-slave`.

pub mod client;
pub mod info;
pub mod master;
pub mod replica;
pub mod sentinel;

use crate::cli::{Address, ServerArgs, TlsArgs};
use crate::credentials::PasswordSource;
use crate::deadline::Deadline;
use crate::report::Facts;
use anyhow::{Context, Result};
use client::{Login, Session};
use info::{ReplicationInfo, Role};

/// Redis' default port, used when none is given.
pub const DEFAULT_PORT: u16 = 6379;

/// Environment variable redis-cli reads the password from; we read it too.
pub const PASSWORD_ENV: &str = "REDISCLI_AUTH";

/// The Redis server to check and how to log in, resolved once from the options and environment.
#[derive(Clone, Debug)]
pub struct RedisTarget {
    /// TCP address or Unix socket.
    pub address: Address,
    /// ACL user and password.
    pub login: Login,
    /// Where the password came from (shown in facts; never the password).
    pub password_source: PasswordSource,
    /// TLS options.
    pub tls: TlsArgs,
}

impl RedisTarget {
    /// Resolves address and password from the command line, then `REDISCLI_AUTH`.
    pub fn resolve(server: &ServerArgs) -> Result<RedisTarget> {
        let address = server.address(DEFAULT_PORT)?;
        let (password, password_source) = server.password(None, PASSWORD_ENV)?;
        Ok(RedisTarget {
            address,
            login: Login { user: server.user.clone(), password, source: client::Credentials::Server },
            password_source,
            tls: server.tls.clone(),
        })
    }
}

/// What one run saw: the server's replication facts and, for a master, the Sentinels' view.
pub struct Observation {
    /// `INFO replication` and friends.
    pub info: ReplicationInfo,
    /// The split-brain guard's answers, when `--sentinel` is given and the node says master.
    pub guard: Option<sentinel::Guard>,
}

impl Observation {
    /// The facts to show: replication, the Sentinels' answers, and who logged in.
    pub fn facts(&self, target: &RedisTarget) -> Facts {
        let mut facts = self.info.facts();
        if let Some(g) = &self.guard {
            g.add_facts(&mut facts);
        }
        facts.set("login", crate::credentials::login_fact(target.login.user.as_deref(), target.password_source));
        facts
    }
}

/// Connects to the server once and reads its replication facts; for a node that says master, asks
/// the Sentinels too (when `--sentinel` is given).
pub fn observe(target: &RedisTarget, sentinels: &sentinel::SentinelArgs, deadline: &Deadline) -> Result<Observation> {
    let address = &target.address;
    let mut session = Session::open(address, &target.tls, &target.login, deadline)?;
    let text = session.replication_info()?;
    drop(session);
    let info = ReplicationInfo::parse(&text).with_context(|| format!("cannot read INFO replication from {address}"))?;
    let guard = match info.role {
        Role::Master => sentinel::Guard::consult(sentinels, address, &info, deadline)?,
        Role::Replica(_) => None,
    };
    Ok(Observation { info, guard })
}
