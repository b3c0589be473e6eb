//! `check-redis-slave`: passing iff this Redis should serve reads.
fn main() {
    consul_db_checks::runner::run::<consul_db_checks::redis_checks::replica::RedisReplica>()
}
