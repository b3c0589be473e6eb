//! Which statements a MySQL/MariaDB server understands, guessed from the version in its greeting,
//! so that a check can send all of them in one round trip.
//!
//! The guess is only a shortcut: a statement the server does not know, or a `@@version` that
//! contradicts the guess, sends the check down the statement-by-statement path that works on every
//! server (see `ServerFacts::read`).

use super::session::Statement;

/// Replication status statements, newest spelling first; a syntax error moves on to the next.
/// `ALL` forms list every channel (MariaDB named connections); MySQL lists every channel anyway.
pub const STATUS_STATEMENTS: &[&str] = &["SHOW ALL REPLICAS STATUS", "SHOW REPLICA STATUS", "SHOW ALL SLAVES STATUS", "SHOW SLAVE STATUS"];

/// Statements listing registered replicas, newest spelling first.
pub const REPLICA_HOSTS_STATEMENTS: &[&str] = &["SHOW REPLICAS", "SHOW REPLICA HOSTS", "SHOW SLAVE HOSTS"];

/// The variables statement every server knows: it reports whichever of them exist.
pub const SHOW_VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
     ('version', 'read_only', 'super_read_only', 'innodb_read_only', 'offline_mode', 'port')";

/// The connections, of which the replication dump threads (`Binlog Dump`, `Binlog Dump GTID`) are
/// kept: the same privilege (PROCESS) and rows as `information_schema.PROCESSLIST`, answered without
/// materialising a table.
pub const DUMP_THREADS: Statement<'static> = Statement::keeping("SHOW PROCESSLIST", "Command", "Binlog Dump");

/// Variables every supported server has.
const COMMON_VARIABLES: &[&str] = &["version", "read_only", "innodb_read_only", "port"];

/// Variables MySQL 5.7 and later add (MariaDB has neither).
const MYSQL57_VARIABLES: &[&str] = &["super_read_only", "offline_mode"];

/// The kind of server the greeting announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// MariaDB 10 (greeting `5.5.5-10.x.y-MariaDB`) or 11+ (`11.x.y-MariaDB`).
    MariaDb,
    /// MySQL (or Percona Server) at this version.
    MySql((u16, u16, u16)),
}

/// What to send a server of one flavour: the variables it has and its status statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The flavour guessed from the greeting.
    pub flavour: Flavour,
}

impl Dialect {
    /// The dialect for the version the driver parsed from the greeting; `None` when there is none
    /// (then only the statement-by-statement path is safe).
    ///
    /// MariaDB 10 prefixes its version with `5.5.5-`, which the driver reads as 5.5.5; MariaDB
    /// 11.0.1 and later drop the prefix, and no MySQL release is numbered 10 or above.
    pub fn from_greeting(version: Option<(u16, u16, u16)>) -> Option<Dialect> {
        let flavour = match version? {
            (5, 5, 5) => Flavour::MariaDb,
            (major, _, _) if major >= 10 => Flavour::MariaDb,
            v => Flavour::MySql(v),
        };
        Some(Dialect { flavour })
    }

    /// The variables this flavour has, of those a check reads.
    pub fn variables(&self) -> Vec<&'static str> {
        let mut names = COMMON_VARIABLES.to_vec();
        if matches!(self.flavour, Flavour::MySql(v) if v >= (5, 7, 0)) {
            names.extend_from_slice(MYSQL57_VARIABLES);
        }
        names
    }

    /// `SELECT @@global.version AS `version`, ...`: one row, one column per variable, named after it.
    pub fn variables_select(&self) -> String {
        let columns: Vec<String> = self.variables().iter().map(|v| format!("@@global.{v} AS `{v}`")).collect();
        format!("SELECT {}", columns.join(", "))
    }

    /// The status statement this flavour and version knows, listing every channel.
    pub fn status_statement(&self) -> &'static str {
        match self.flavour {
            // MariaDB 10.5.1+; older MariaDB refuses it and takes the statement-by-statement path.
            Flavour::MariaDb => "SHOW ALL REPLICAS STATUS",
            Flavour::MySql(v) if v >= (8, 0, 22) => "SHOW REPLICA STATUS",
            Flavour::MySql(_) => "SHOW SLAVE STATUS",
        }
    }

    /// Whether `@@version` confirms the guess; when it does not, the answers are not used.
    pub fn confirmed_by(&self, version: &str) -> bool {
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        mariadb == (self.flavour == Flavour::MariaDb)
    }
}

/// The status statements to try on a server, the one its dialect knows first.
pub fn status_statements(dialect: Option<Dialect>) -> Vec<&'static str> {
    let mut order = STATUS_STATEMENTS.to_vec();
    if let Some(first) = dialect.map(|d| d.status_statement()) {
        order.retain(|s| *s != first);
        order.insert(0, first);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect(v: (u16, u16, u16)) -> Dialect {
        Dialect::from_greeting(Some(v)).unwrap()
    }

    #[test]
    fn flavour_and_statements_by_greeting_version() {
        // (greeting version as the driver parses it, flavour, status statement, has super_read_only)
        let table = [
            ((5, 5, 5), Flavour::MariaDb, "SHOW ALL REPLICAS STATUS", false),
            ((11, 4, 2), Flavour::MariaDb, "SHOW ALL REPLICAS STATUS", false),
            ((8, 4, 3), Flavour::MySql((8, 4, 3)), "SHOW REPLICA STATUS", true),
            ((9, 1, 0), Flavour::MySql((9, 1, 0)), "SHOW REPLICA STATUS", true),
            ((8, 0, 22), Flavour::MySql((8, 0, 22)), "SHOW REPLICA STATUS", true),
            ((8, 0, 21), Flavour::MySql((8, 0, 21)), "SHOW SLAVE STATUS", true),
            ((5, 7, 44), Flavour::MySql((5, 7, 44)), "SHOW SLAVE STATUS", true),
            ((5, 6, 51), Flavour::MySql((5, 6, 51)), "SHOW SLAVE STATUS", false),
        ];
        for (version, flavour, status, super_read_only) in table {
            let d = dialect(version);
            assert_eq!(d.flavour, flavour, "{version:?}");
            assert_eq!(d.status_statement(), status, "{version:?}");
            assert_eq!(d.variables_select().contains("@@global.super_read_only AS `super_read_only`"), super_read_only, "{version:?}");
            assert!(d.variables_select().starts_with("SELECT @@global.version AS `version`, @@global.read_only AS `read_only`"));
            assert_eq!(status_statements(Some(d))[0], status);
            assert_eq!(status_statements(Some(d)).len(), STATUS_STATEMENTS.len());
        }
        assert_eq!(Dialect::from_greeting(None), None);
        assert_eq!(status_statements(None), STATUS_STATEMENTS);
    }

    /// A guess that `@@version` contradicts is not used: a future MySQL 10 read as MariaDB would
    /// otherwise lack `super_read_only`.
    #[test]
    fn version_confirms_or_refutes_the_guess() {
        assert!(dialect((5, 5, 5)).confirmed_by("10.11.14-MariaDB-0+deb12u2-log"));
        assert!(dialect((11, 4, 2)).confirmed_by("11.4.2-MariaDB"));
        assert!(!dialect((10, 0, 1)).confirmed_by("10.0.1"));
        assert!(dialect((8, 4, 3)).confirmed_by("8.4.3"));
        assert!(!dialect((8, 4, 3)).confirmed_by("8.4.3-MariaDB"));
    }
}
