//! Consul's agents on the lab's hosts: each host's service files, generated from the inventory,
//! run as its local agent would, and what Consul DNS answers from them.

use crate::netlab::{Host, NetLab};
use crate::pools::{run_agents, AgentCheck, Answers};
use crate::vip_lab::generate_for;

/// Each host's Consul service files, generated from the inventory, run as its local agent would:
/// inside the host's namespace, against its own address, with no shell and Consul's timeout.
#[derive(Default)]
pub struct ConsulOnHosts {
    checks: Vec<AgentCheck>,
}

impl ConsulOnHosts {
    /// Generates every host's service files with the real `gen-consul-services`.
    pub fn generate(net: &NetLab, hosts: &[Host], inventory: &str) -> ConsulOnHosts {
        let checks =
            hosts.iter().flat_map(|h| AgentCheck::from_files(&generate_for(net, h, inventory, "consul"), &h.name, Some(&h.ns))).collect();
        ConsulOnHosts { checks }
    }

    /// Runs every check once, all at once, each killed at its Consul timeout: what each host's
    /// agent records, and what Consul DNS answers (by host name).
    pub fn answers(&self) -> Answers {
        run_agents(&self.checks)
    }
}
