//! The one list of the project's executables. Each entry says its name, its command line, how to
//! run it in this process, and which service it answers in a group. Man pages and completions,
//! check-topology, the generator's argv and the tests' lists all iterate it, and a unit test holds
//! `Cargo.toml`'s `[[bin]]` entries to it: adding a check is one entry here.

use crate::deadline::Deadline;
use crate::generator::inventory::Kind;
use crate::generator::plan::Role;
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
const fn check<C: Check>(name: &'static str, subject: Subject, serves: Option<Role>) -> Executable {
    Executable { name, command: <C::Args as CommandFactory>::command, run: Some(evaluate_argv::<C>), subject, serves }
}

/// Every executable of the project, in the order the README lists them.
pub const EXECUTABLES: &[Executable] = &[
    check::<crate::redis_checks::master::RedisMaster>("check-redis-master", Subject::Server(Kind::Redis), Some(Role::Write)),
    check::<crate::redis_checks::replica::RedisReplica>("check-redis-slave", Subject::Server(Kind::Redis), Some(Role::Read)),
    check::<crate::mysql_checks::master::MysqlMaster>("check-mysql-master", Subject::Server(Kind::Mysql), Some(Role::Write)),
    check::<crate::mysql_checks::replica::MysqlReplica>("check-mysql-slave", Subject::Server(Kind::Mysql), Some(Role::Read)),
    check::<crate::topology::Topology>("check-topology", Subject::Inventory, None),
    Executable {
        name: "serve-checks",
        command: <crate::serve::Args as CommandFactory>::command,
        run: None,
        subject: Subject::Http,
        serves: None,
    },
    Executable {
        name: "gen-consul-services",
        command: <crate::generator::Args as CommandFactory>::command,
        run: None,
        subject: Subject::Files,
        serves: None,
    },
];

/// The executable called `name` (the last component of a path), if it is one of ours.
pub fn named(name: &str) -> Option<&'static Executable> {
    let file = name.rsplit('/').next().unwrap_or(name);
    EXECUTABLES.iter().find(|e| e.name == file)
}

/// The check that answers `role` for a node of a `kind` group.
pub fn serving(kind: Kind, role: Role) -> &'static Executable {
    EXECUTABLES
        .iter()
        .find(|e| e.subject == Subject::Server(kind) && e.serves == Some(role))
        .unwrap_or_else(|| unreachable!("every kind has a write and a read check (a unit test holds it)"))
}

/// The checks that answer a service for one node (write or read): the ones the generator emits.
pub fn node_checks() -> impl Iterator<Item = &'static Executable> {
    EXECUTABLES.iter().filter(|e| e.serves.is_some())
}

/// The checks that look at one server (of any kind when `kind` is `None`).
pub fn server_checks(kind: Option<Kind>) -> impl Iterator<Item = &'static Executable> {
    EXECUTABLES.iter().filter(move |e| matches!(e.subject, Subject::Server(k) if kind.map_or(true, |want| want == k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[[bin]]` entries of `Cargo.toml`, in order: (name, path).
    fn cargo_bins() -> Vec<(String, String)> {
        let value = |line: &str, key: &str| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        };
        let mut bins: Vec<(String, String)> = Vec::new();
        let mut in_bin = false;
        for line in include_str!("../Cargo.toml").lines() {
            if line.starts_with('[') {
                in_bin = line.trim() == "[[bin]]";
                if in_bin {
                    bins.push(Default::default());
                }
            } else if let (true, Some(last)) = (in_bin, bins.last_mut()) {
                if let Some(name) = value(line, "name") {
                    last.0 = name;
                } else if let Some(path) = value(line, "path") {
                    last.1 = path;
                }
            }
        }
        bins
    }

    /// Cargo.toml's `[[bin]]` entries are exactly this list, in order, each at `bin/<name>.rs`.
    #[test]
    fn cargo_bins_are_the_list() {
        let bins = cargo_bins();
        let names: Vec<&str> = bins.iter().map(|(n, _)| n.as_str()).collect();
        let listed: Vec<&str> = EXECUTABLES.iter().map(|e| e.name).collect();
        assert_eq!(names, listed, "Cargo.toml's [[bin]] entries and checks::EXECUTABLES differ");
        for (name, path) in &bins {
            assert_eq!(path, &format!("bin/{name}.rs"), "{name}");
        }
    }

    /// Each entry's command line carries its own name; every kind has one write and one read
    /// check; every check can run in process.
    #[test]
    fn entries_are_consistent() {
        for e in EXECUTABLES {
            assert_eq!((e.command)().get_name(), e.name);
            assert_eq!(named(&format!("/usr/local/bin/{}", e.name)).map(|f| f.name), Some(e.name));
            let is_check = matches!(e.subject, Subject::Server(_) | Subject::Inventory);
            assert_eq!(e.run.is_some(), is_check, "{}: checks run in process, the others do not", e.name);
            if e.serves.is_some() {
                assert!(matches!(e.subject, Subject::Server(_)), "{}: only a server check answers a node's service", e.name);
            }
        }
        for kind in [Kind::Redis, Kind::Mysql] {
            for role in [Role::Write, Role::Read] {
                let n = EXECUTABLES.iter().filter(|e| e.subject == Subject::Server(kind) && e.serves == Some(role)).count();
                assert_eq!(n, 1, "{kind:?} {role:?}");
                assert_eq!((serving(kind, role).subject, serving(kind, role).serves), (Subject::Server(kind), Some(role)));
            }
        }
        assert_eq!(server_checks(Some(Kind::Mysql)).count(), 2);
        assert!(named("check-no-such-thing").is_none());
    }
}
