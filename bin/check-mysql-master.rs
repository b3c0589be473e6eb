//! `check-mysql-master`: passing iff this MySQL/MariaDB is the writable master.
fn main() {
    consul_db_checks::runner::run::<consul_db_checks::mysql_checks::master::MysqlMaster>()
}
