//! `check-mysql-slave`: passing iff this MySQL/MariaDB should serve reads.
fn main() {
    consul_db_checks::runner::run::<consul_db_checks::mysql_checks::replica::MysqlReplica>()
}
