//! `check-redis-slave`: passing iff this Redis should serve reads.
consul_db_checks::check_main!(consul_db_checks::redis_checks::replica::RedisReplica);
