//! The options that say what kind of replication a MySQL node runs and how its cluster writes:
//! `--replication` (what the node is expected to run: a node that runs something else is critical),
//! `--galera-writers` and `--group-writers`. Both MySQL checks take them.

use super::ServerFacts;

/// What replication a node runs: asynchronous (or none: a standalone server), Galera, or Group
/// Replication. The checks recognise it from the server; `--replication` says what it must be.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// Asynchronous (or semi-synchronous) replication, or none.
    Async,
    /// A Galera cluster (MariaDB Galera Cluster, Percona XtraDB Cluster): `wsrep_on=ON`.
    Galera,
    /// MySQL Group Replication (InnoDB Cluster): a member of a group.
    GroupReplication,
}

impl Replication {
    /// What `facts` show the node runs.
    pub fn of(facts: &ServerFacts) -> Replication {
        match (&facts.galera, &facts.group) {
            (Some(_), _) => Replication::Galera,
            (None, Some(_)) => Replication::GroupReplication,
            (None, None) => Replication::Async,
        }
    }

    /// As `--replication` spells it.
    pub fn as_arg(self) -> &'static str {
        match self {
            Replication::Async => "async",
            Replication::Galera => "galera",
            Replication::GroupReplication => "group-replication",
        }
    }

    /// What a node that runs this is, in a sentence's words.
    fn is(self) -> &'static str {
        match self {
            Replication::Async => "a standalone server (no Galera, no Group Replication, no replication channel)",
            Replication::Galera => "a Galera node (wsrep_on=ON)",
            Replication::GroupReplication => "a Group Replication member",
        }
    }

    /// What `--replication` with this expects, in a sentence's words.
    fn expects(self) -> &'static str {
        match self {
            Replication::Async => "no Galera and no Group Replication (asynchronous replication or none)",
            Replication::Galera => "a Galera node (wsrep_on=ON): a Galera node started without its provider takes writes alone",
            Replication::GroupReplication => "a Group Replication member: a member started without the plugin takes writes alone",
        }
    }
}

/// How many members may write: `one` (the default for Galera) or `all` (the default for a
/// multi-primary Group Replication group, the group's own rule).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Writers {
    /// One writer at a time, chosen by every node alike (Galera: the earliest-joined healthy
    /// member; Group Replication: the ONLINE member with the lowest MEMBER_ID).
    #[default]
    One,
    /// Every healthy member takes writes (certification conflicts are the application's).
    All,
}

impl std::fmt::Display for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Writers::One => "one",
            Writers::All => "all",
        })
    }
}

/// Whether this node is the one writer of its cluster (Galera, Group Replication), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Writer {
    /// It is: the rule in words.
    This(String),
    /// Another member is, or may be: who and why.
    Another(String),
}

/// The cluster options both MySQL checks take.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// What replication the node must run: async, galera or group-replication. A node that runs
    /// another is critical: a Galera node restarted without its provider, or a member whose Group
    /// Replication is not running, is a standalone server that would take writes alone. Default:
    /// judged by what the server runs.
    #[arg(long, value_enum, value_name = "KIND")]
    pub replication: Option<Replication>,
    /// Galera: how many members pass the write check: one (the healthy member that joined the
    /// component first, which a restarted node never takes back) or all.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Writers::One)]
    pub galera_writers: Writers,
    /// Group Replication in multi-primary mode: all (every ONLINE member, the group's own rule) or
    /// one (the ONLINE member with the lowest MEMBER_ID, confirmed by the others).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Writers::All)]
    pub group_writers: Writers,
}

impl ClusterArgs {
    /// `--group-writers one`: in multi-primary mode, only the ONLINE member with the lowest
    /// `MEMBER_ID` writes.
    pub fn one_group_writer(&self) -> bool {
        self.group_writers == Writers::One
    }

    /// Why the node at `target` is in no pool because it runs another replication than
    /// `--replication` says, if it does. An asynchronous replica (a replication channel) of a
    /// Galera cluster or a group is its read replica: it keeps the asynchronous rules.
    pub fn mismatch(&self, target: &str, facts: &ServerFacts) -> Option<String> {
        let expected = self.replication?;
        let runs = Replication::of(facts);
        let read_replica = runs == Replication::Async && !facts.channels.is_empty();
        (runs != expected && !read_replica)
            .then(|| format!("{target} is {}, but --replication {} expects {}", runs.is(), expected.as_arg(), expected.expects()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_runs_another_replication_than_expected_is_named() {
        let standalone = ServerFacts {
            version: "11.8.3-MariaDB".into(),
            read_only: false,
            super_read_only: None,
            innodb_read_only: false,
            offline_mode: None,
            port: Some(3306),
            status_statement: "SHOW ALL REPLICAS STATUS".into(),
            channels: vec![],
            dump_threads: vec![],
            galera: None,
            group: None,
        };
        let args = |r| ClusterArgs { replication: r, ..ClusterArgs::default() };
        assert_eq!(args(None).mismatch("db:3306", &standalone), None, "no expectation: judged by what it runs");
        assert_eq!(args(Some(Replication::Async)).mismatch("db:3306", &standalone), None);
        assert_eq!(
            args(Some(Replication::Galera)).mismatch("db:3306", &standalone).as_deref(),
            Some(
                "db:3306 is a standalone server (no Galera, no Group Replication, no replication channel), but --replication galera \
                 expects a Galera node (wsrep_on=ON): a Galera node started without its provider takes writes alone"
            )
        );
        let why = args(Some(Replication::GroupReplication)).mismatch("db:3306", &standalone).unwrap();
        assert!(why.ends_with("--replication group-replication expects a Group Replication member: a member started without the plugin takes writes alone"), "{why}");
        // A read replica of the cluster (an asynchronous channel) keeps the asynchronous rules.
        let replica = ServerFacts {
            channels: super::super::replication::channels(&super::super::replication::samples::healthy()).unwrap(),
            ..standalone
        };
        for expected in [Replication::Async, Replication::Galera, Replication::GroupReplication] {
            assert_eq!(args(Some(expected)).mismatch("db:3306", &replica), None, "{expected:?}");
        }
    }
}
