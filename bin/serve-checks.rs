//! `serve-checks`: one node's checks over HTTP (HAProxy httpchk, Consul HTTP checks).
fn main() {
    consul_db_checks::serve::main()
}
