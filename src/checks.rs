//! The checks that answer a node's service: for each kind of group, its write check and its read
//! check. The generator emits them, check-topology and serve-checks run them; the list of every
//! executable (these, check-topology, serve-checks, the generator) is [`crate::executables`].
//! Adding a check kind is one entry here.

use crate::deadline::Deadline;
use crate::kinds::{Kind, Role};
use crate::runner::{evaluate_argv, ArgvRun, Check};
use clap::CommandFactory;

/// One executable: what every list of executables needs to know about it.
pub struct Executable {
    /// Its file name (`check-redis-master`): the `[[bin]]`, the man page, the generated argv[0].
    pub name: &'static str,
    /// Its command line, as `--help` shows it.
    pub command: fn() -> clap::Command,
    /// Runs it in this process from an argv (program path first), within a deadline: `None` for
    /// an executable that is not a check (the generator).
    pub run: Option<fn(&[String], &Deadline) -> ArgvRun>,
    /// What it looks at.
    pub subject: Subject,
    /// The service it answers for each node of a group (`None`: it is no group's write or read
    /// check, and the generator does not emit it).
    pub serves: Option<Role>,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Executable {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// What an executable looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// One server of this kind, named by `--host`/`--port` or `--socket` (the hostile-server
    /// tests run every such check against fake servers).
    Server(Kind),
    /// Every node of an inventory.
    Inventory,
    /// One node's checks, served over HTTP (it runs them as processes).
    Http,
    /// No server: it writes files.
    Files,
}

/// The entry of check `C`, looking at `subject` and serving `serves` in a group.
pub(crate) const fn check<C: Check>(name: &'static str, subject: Subject, serves: Option<Role>) -> Executable {
    Executable { name, command: <C::Args as CommandFactory>::command, run: Some(evaluate_argv::<C>), subject, serves }
}

/// The checks that answer a node's write or read service, in the order the README lists them.
pub const NODE_CHECKS: &[Executable] = &[
    check::<crate::redis_checks::master::RedisMaster>("check-redis-master", Subject::Server(Kind::Redis), Some(Role::Write)),
    check::<crate::redis_checks::replica::RedisReplica>("check-redis-slave", Subject::Server(Kind::Redis), Some(Role::Read)),
    check::<crate::mysql_checks::master::MysqlMaster>("check-mysql-master", Subject::Server(Kind::Mysql), Some(Role::Write)),
    check::<crate::mysql_checks::replica::MysqlReplica>("check-mysql-slave", Subject::Server(Kind::Mysql), Some(Role::Read)),
];

/// The check that answers `role` for a node of a `kind` group.
pub fn serving(kind: Kind, role: Role) -> &'static Executable {
    NODE_CHECKS
        .iter()
        .find(|e| e.subject == Subject::Server(kind.server()) && e.serves == Some(role))
        .unwrap_or_else(|| unreachable!("every kind has a write and a read check (a unit test holds it)"))
}

/// The checks that answer a service for one node (write or read): the ones the generator emits.
pub fn node_checks() -> impl Iterator<Item = &'static Executable> {
    NODE_CHECKS.iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind has exactly one write and one read check, each a server check of that kind.
    #[test]
    fn every_kind_has_a_write_and_a_read_check() {
        for kind in Kind::ALL {
            for role in Role::ALL {
                let n = NODE_CHECKS.iter().filter(|e| e.subject == Subject::Server(kind.server()) && e.serves == Some(role)).count();
                assert_eq!(n, 1, "{kind:?} {role:?}");
                assert_eq!((serving(kind, role).subject, serving(kind, role).serves), (Subject::Server(kind.server()), Some(role)));
            }
        }
        assert!(NODE_CHECKS.iter().all(|e| e.run.is_some() && e.serves.is_some()), "a node check runs in process and answers a service");
    }
}
