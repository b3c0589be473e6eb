//! The Redis role checks: `check-redis-master` and `check-redis-slave`.

pub mod client;
pub mod info;
pub mod master;
pub mod sentinel;
pub mod slave;

use crate::cli::{Address, ServerArgs};
use crate::runner::Run;
use anyhow::{Context, Result};
use client::{Login, Session};
use info::ReplicationInfo;

/// Redis' default port, used when none is given.
pub const DEFAULT_PORT: u16 = 6379;

/// Environment variable redis-cli reads the password from; we read it too.
pub const PASSWORD_ENV: &str = "REDISCLI_AUTH";

/// Connects to the server once and reads its replication facts; the facts say who logged in.
pub fn observe(server: &ServerArgs, run: &Run) -> Result<(Address, ReplicationInfo)> {
    let address = server.address(DEFAULT_PORT)?;
    let (password, source) = server.password(PASSWORD_ENV)?;
    let login = Login { user: server.user.clone(), password };
    let mut session = Session::open(&address, &server.tls, &login, &run.deadline)?;
    let text = session.replication_info()?;
    let mut info = ReplicationInfo::parse(&text).with_context(|| format!("cannot read INFO replication from {address}"))?;
    info.login = crate::credentials::login_fact(login.user.as_deref(), source);
    Ok((address, info))
}

/// Reads the facts and, for a node that says master, asks the Sentinels (when `--sentinel` is given).
/// Also returns the facts to show, the Sentinels' answers included.
pub fn observe_guarded(
    server: &ServerArgs,
    sentinels: &sentinel::SentinelArgs,
    run: &Run,
) -> Result<(Address, ReplicationInfo, Option<sentinel::Guard>, crate::report::Facts)> {
    let (address, info) = observe(server, run)?;
    let guard = match info.role {
        info::Role::Master => sentinel::Guard::consult(sentinels, &address, &server.tls, &run.deadline)?,
        info::Role::Replica => None,
    };
    let mut facts = info.facts();
    if let Some(g) = &guard {
        g.add_facts(&mut facts);
    }
    Ok((address, info, guard, facts))
}

/// Whether a lag in whole seconds is within an optional limit (`None`: no limit).
pub fn lag_within(lag_seconds: Option<i64>, max_lag: Option<std::time::Duration>) -> bool {
    match (max_lag, lag_seconds) {
        (None, _) => true,
        (Some(max), Some(lag)) => lag as f64 <= max.as_secs_f64(),
        (Some(_), None) => false,
    }
}
