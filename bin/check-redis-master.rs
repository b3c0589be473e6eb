//! `check-redis-master`: passing iff this Redis is the writable master.
consul_db_checks::check_main!(consul_db_checks::redis_checks::master::RedisMaster);
