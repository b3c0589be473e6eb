//! `check-redis-master`: passing iff this Redis is the writable master.
fn main() {
    consul_db_checks::runner::run::<consul_db_checks::redis_checks::master::RedisMaster>()
}
