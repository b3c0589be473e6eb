//! `check-topology`: what Consul DNS answers for every group of an inventory, and whether anything is split.
consul_db_checks::check_main!(consul_db_checks::topology::Topology);
