//! The one list of the project's executables: the node checks ([`crate::checks::NODE_CHECKS`]),
//! then check-topology, serve-checks and the generator. Man pages and completions and the tests'
//! lists iterate it, and a unit test holds `Cargo.toml`'s `[[bin]]` entries to it.

use crate::checks::{check, Executable, Subject, NODE_CHECKS};
use crate::kinds::Kind;
use clap::CommandFactory;

/// The executables that are not a node's check, in the order the README lists them.
const OTHERS: &[Executable] = &[
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

/// Every executable of the project, in the order the README lists them.
pub fn all() -> impl Iterator<Item = &'static Executable> + Clone {
    NODE_CHECKS.iter().chain(OTHERS)
}

/// The executable called `name` (the last component of a path), if it is one of ours.
pub fn named(name: &str) -> Option<&'static Executable> {
    let file = name.rsplit('/').next().unwrap_or(name);
    all().find(|e| e.name == file)
}

/// The checks that look at one server (of any kind when `kind` is `None`).
pub fn server_checks(kind: Option<Kind>) -> impl Iterator<Item = &'static Executable> {
    all().filter(move |e| matches!(e.subject, Subject::Server(k) if kind.map_or(true, |want| want == k)))
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
        let listed: Vec<&str> = all().map(|e| e.name).collect();
        assert_eq!(names, listed, "Cargo.toml's [[bin]] entries and executables::all() differ");
        for (name, path) in &bins {
            assert_eq!(path, &format!("bin/{name}.rs"), "{name}");
        }
    }

    /// Each entry's command line carries its own name; every check can run in process; only a
    /// server check answers a node's service.
    #[test]
    fn entries_are_consistent() {
        for e in all() {
            assert_eq!((e.command)().get_name(), e.name);
            assert_eq!(named(&format!("/usr/local/bin/{}", e.name)).map(|f| f.name), Some(e.name));
            let is_check = matches!(e.subject, Subject::Server(_) | Subject::Inventory);
            assert_eq!(e.run.is_some(), is_check, "{}: checks run in process, the others do not", e.name);
            if e.serves.is_some() {
                assert!(matches!(e.subject, Subject::Server(_)), "{}: only a server check answers a node's service", e.name);
            }
        }
        assert!(named("check-no-such-thing").is_none());
        assert_eq!(server_checks(Some(Kind::Mysql)).count(), 2);
    }
}
