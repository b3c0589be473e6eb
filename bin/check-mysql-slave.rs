//! `check-mysql-slave`: passing iff this MySQL/MariaDB should serve reads.
consul_db_checks::check_main!(consul_db_checks::mysql_checks::replica::MysqlReplica);
