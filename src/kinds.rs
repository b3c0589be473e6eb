//! The ground floor: what an instance group runs ([`Kind`]) and what a service of it answers
//! ([`Role`]). The checks, the generator, check-topology and serve-checks all import these; this
//! module imports nothing of the project.

use serde::Deserialize;

/// What an instance group runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Redis (Sentinel optional).
    Redis,
    /// MySQL or MariaDB with asynchronous replication (or none).
    Mysql,
    /// A Galera cluster (MariaDB Galera Cluster, Percona XtraDB Cluster).
    Galera,
    /// A MySQL Group Replication group (InnoDB Cluster).
    GroupReplication,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Redis, Kind::Mysql, Kind::Galera, Kind::GroupReplication];

    /// As written in the inventory, on the command line and in service names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Mysql => "mysql",
            Kind::Galera => "galera",
            Kind::GroupReplication => "group-replication",
        }
    }

    /// The server it runs, whose checks serve it: Redis, or MySQL (for every MySQL kind).
    pub fn server(self) -> Kind {
        match self {
            Kind::Redis => Kind::Redis,
            Kind::Mysql | Kind::Galera | Kind::GroupReplication => Kind::Mysql,
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
