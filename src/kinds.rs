//! The ground floor: what an instance group runs ([`Kind`]) and what a service of it answers
//! ([`Role`]). The checks, the generator, check-topology and serve-checks all import these; this
//! module imports nothing of the project.

use serde::Deserialize;

/// What an instance group runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Redis (Sentinel optional).
    Redis,
    /// MySQL or MariaDB.
    Mysql,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 2] = [Kind::Redis, Kind::Mysql];

    /// As written in service names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Mysql => "mysql",
        }
    }
}

/// The write or the read service of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `w-...`: the one writable master.
    Write,
    /// `r-...`: the read pool.
    Read,
}

impl Role {
    /// Both roles, write first.
    pub const ALL: [Role; 2] = [Role::Write, Role::Read];

    /// `write` or `read`, as output names the service.
    pub fn word(self) -> &'static str {
        match self {
            Role::Write => "write",
            Role::Read => "read",
        }
    }

    /// `w` or `r`.
    pub fn letter(self) -> &'static str {
        match self {
            Role::Write => "w",
            Role::Read => "r",
        }
    }
}
