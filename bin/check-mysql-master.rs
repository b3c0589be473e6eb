//! `check-mysql-master`: passing iff this MySQL/MariaDB is the writable master.
consul_db_checks::check_main!(consul_db_checks::mysql_checks::master::MysqlMaster);
