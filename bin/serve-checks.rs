//! `serve-checks`: one node's checks over HTTP (HAProxy httpchk, Consul HTTP checks).
fn main() -> std::process::ExitCode {
    consul_db_checks::serve::main()
}
