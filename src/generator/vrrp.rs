//! keepalived: the timing of each role's `vrrp_script`, and the `vrrp_instance` that floats a
//! group's VIP to the node whose write check passes. Validated here, rendered in [`super::render`].

use super::inventory::VrrpSpec;
use crate::duration::format_duration;
use crate::kinds::Role;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// How keepalived runs one check: every `interval`, killed at `timeout`, `fall` failures to
/// fault and `rise` successes to recover; the check's own `--timeout` is `check_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptTiming {
    /// `interval`.
    pub interval: Duration,
    /// keepalived's `timeout` (at most the interval, so two copies never overlap).
    pub timeout: Duration,
    /// The check's `--timeout`, at least 250 ms under keepalived's.
    pub check_timeout: Duration,
    /// Failures before the instance faults.
    pub fall: u32,
    /// Successes before it recovers.
    pub rise: u32,
}

impl ScriptTiming {
    /// The timing per role for the keepalived the nodes run: with 2.3.2+ (`sub_second`), the write
    /// check runs every 500 ms with a 250 ms deadline, so a node that stops being the master gives
    /// up the VIP within 500 ms instead of 1 s; the read check keeps its whole seconds.
    pub fn for_keepalived(role: Role, sub_second: bool) -> ScriptTiming {
        match role {
            Role::Write if sub_second => ScriptTiming {
                interval: Duration::from_millis(500),
                timeout: Duration::from_millis(500),
                check_timeout: Duration::from_millis(250),
                fall: 1,
                rise: 1,
            },
            _ => ScriptTiming::default_for(role),
        }
    }

    /// The defaults per role. The write check runs every second (keepalived before 2.3.2 reads
    /// whole seconds only): a node that stops being the master gives up the VIP at its first
    /// failure, since every write it takes after the promotion of another node is lost (measured
    /// in a live `SENTINEL FAILOVER`: fall 2 let the old master take 1.2 s of writes through the
    /// VIP after the promotion); one slow answer costs a VIP move instead. The new master takes
    /// the VIP at the first pass after the Sentinels name it. The read check runs every two
    /// seconds and rides out one slow answer.
    pub fn default_for(role: Role) -> ScriptTiming {
        match role {
            Role::Write => ScriptTiming {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                check_timeout: Duration::from_millis(700),
                fall: 1,
                rise: 1,
            },
            Role::Read => ScriptTiming {
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
                check_timeout: Duration::from_millis(1500),
                fall: 2,
                rise: 2,
            },
        }
    }
}

/// Default VRRP advertisement interval: sub-second (VRRP version 3), so a backup takes over about
/// 0.85 s (three adverts and the skew) after the master goes silent or faults.
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_millis(100);

/// Default `script_user`: a dedicated unprivileged user (keepalived refuses scripts that a
/// non-root user could replace, with `enable_script_security`).
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// Default VRRP priority of every node.
pub const DEFAULT_PRIORITY: u8 = 100;

/// A validated `vrrp_instance` for one group on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpInstance {
    /// The instance name (`VI_6029_redis_test`).
    pub name: String,
    /// `198.18.0.100/24`.
    pub vip: String,
    /// `virtual_router_id`, unique per interface.
    pub virtual_router_id: u8,
    /// The interface carrying the VIP.
    pub interface: String,
    /// This node's priority.
    pub priority: u8,
    /// Advertisement interval (a multiple of 10 ms).
    pub advert_interval: Duration,
    /// The user scripts run as.
    pub script_user: String,
    /// `nopreempt` (refused together with a weight).
    pub nopreempt: bool,
}

/// Whether `s` is an interface name both Linux and keepalived's grammar read as written: 1-15
/// bytes (IFNAMSIZ), of letters, digits, `_`, `.` and `-` (no white space, quotes, braces, `#` and
/// `!` that keepalived parses, nor Linux's forbidden `/` and `:`), and not `.` or `..`.
pub fn is_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Whether `s` is a plausible Unix user name.
fn is_user_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') && !s.starts_with('-')
}

/// Checks `addr/prefix`.
fn check_vip(vip: &str) -> Result<()> {
    let (addr, prefix) = vip.split_once('/').ok_or_else(|| anyhow!("vip '{vip}' needs a prefix length (e.g. 198.18.0.100/24)"))?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| anyhow!("vip '{vip}' is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if (1..=max).contains(&p) => Ok(()),
        _ => bail!("vip '{vip}': prefix length must be 1-{max}"),
    }
}

/// Validates a group's `vrrp` block and lays out the instance for `node`. `weight` is the
/// generator's `--weight`; `group_id` names the instance.
pub fn instance(spec: &VrrpSpec, group_id: &str, node: &str, nodes: &[String], weight: Option<i32>) -> Result<VrrpInstance> {
    check_vip(&spec.vip)?;
    let virtual_router_id = u8::try_from(spec.virtual_router_id)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow!("virtual_router_id {} is out of range (1-255)", spec.virtual_router_id))?;
    if !is_interface_name(&spec.interface) {
        bail!(
            "interface {:?} is not an interface name keepalived and Linux accept (1-15 of letters, digits, '_', '.', '-')",
            spec.interface
        );
    }
    let priorities = node_priorities(spec, nodes)?;
    let advert_interval = match &spec.advert_interval {
        Some(d) => d.get().map_err(|e| anyhow!("advert_interval: {e}"))?,
        None => DEFAULT_ADVERT_INTERVAL,
    };
    if advert_interval.is_zero() || advert_interval.as_millis() % 10 != 0 || advert_interval > Duration::from_secs(40) {
        bail!("advert_interval {} must be a multiple of 10ms between 10ms and 40s (VRRP version 3)", format_duration(advert_interval));
    }
    let script_user = spec.script_user.clone().unwrap_or_else(|| DEFAULT_SCRIPT_USER.into());
    if !is_user_name(&script_user) {
        bail!("script_user '{script_user}' is not a user name");
    }
    if script_user == "root" {
        bail!("script_user must not be root: the checks need no privilege (create a user such as {DEFAULT_SCRIPT_USER})");
    }
    if let Some(w) = weight {
        if spec.nopreempt {
            bail!("--weight with nopreempt: a node that fails its check keeps the VIP (nothing preempts it); drop one of them");
        }
        let spread = priorities.values().max().copied().unwrap_or(0) - priorities.values().min().copied().unwrap_or(0);
        if w.unsigned_abs() <= u32::from(spread) {
            bail!(
                "--weight {w} does not exceed the priority spread {spread} of the nodes: a failing master would keep the VIP; \
                 use a larger weight, or no weight (a failing check then means FAULT)"
            );
        }
    }
    Ok(VrrpInstance {
        name: format!("VI_{}", group_id.replace('-', "_")),
        vip: spec.vip.clone(),
        virtual_router_id,
        interface: spec.interface.clone(),
        priority: priorities[node],
        advert_interval,
        script_user,
        nopreempt: spec.nopreempt,
    })
}

/// Every node's priority: `priority` (default 100) unless `node_priorities` says otherwise.
fn node_priorities(spec: &VrrpSpec, nodes: &[String]) -> Result<BTreeMap<String, u8>> {
    let base = spec.priority.unwrap_or(u64::from(DEFAULT_PRIORITY));
    let valid = |p: u64, what: &str| {
        u8::try_from(p).ok().filter(|p| (1..=254).contains(p)).ok_or_else(|| anyhow!("{what} {p} is out of range (1-254)"))
    };
    let base = valid(base, "priority")?;
    for n in spec.node_priorities.keys() {
        if !nodes.contains(n) {
            bail!("node_priorities names {n}, which is not a node of the group");
        }
    }
    nodes
        .iter()
        .map(|n| {
            let p = match spec.node_priorities.get(n) {
                Some(p) => valid(*p, &format!("priority of {n}"))?,
                None => base,
            };
            Ok((n.clone(), p))
        })
        .collect()
}
