//! `gen-consul-services`: writes Consul service files and keepalived scripts for an inventory.
fn main() -> std::process::ExitCode {
    consul_db_checks::generator::main()
}
