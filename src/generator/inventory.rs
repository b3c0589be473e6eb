//! The inventory's schema: instance groups read strictly from JSON (or built from flags). What they
//! mean, and their validation, is in [`super::plan`].

use super::options::CheckOptions;
use crate::duration::parse_duration;
use crate::kinds::Kind;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration written as a string (`"30s"`) or a number of seconds (`30`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationSpec {
    /// A plain number of seconds (`30`, `2.5`).
    Seconds(f64),
    /// Consul syntax.
    Text(String),
}

impl DurationSpec {
    /// The duration, or why it is not one.
    pub fn get(&self) -> Result<Duration, String> {
        match self {
            DurationSpec::Seconds(s) => parse_duration(&s.to_string()),
            DurationSpec::Text(t) => parse_duration(t),
        }
    }
}

/// Tags of the two services (default: the original `master-<name>-<port>` / `slave-<name>-<port>`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// Tags of the write service.
    #[serde(default)]
    pub write: Vec<String>,
    /// Tags of the read service.
    #[serde(default)]
    pub read: Vec<String>,
}

/// One instance group as the inventory describes it: same kind, name and port on every node. Its
/// other fields are its checks' options, typed by its kind ([`CheckOptions`]).
#[derive(Clone, Debug, Deserialize)]
pub struct GroupSpec {
    /// `redis`, `mysql`, `galera` or `group-replication`.
    pub kind: Kind,
    /// Group name (a DNS label), e.g. `test`.
    pub name: String,
    /// Port of the instance on every node.
    pub port: u64,
    /// Addresses of the nodes (each node's agent registers its own services).
    pub nodes: Vec<String>,
    /// Consul check interval (default 10s).
    pub interval: Option<DurationSpec>,
    /// Consul check timeout (default: half the interval, at most 5s).
    pub timeout: Option<DurationSpec>,
    /// The check's own `--timeout` (default: 3/5 of the Consul timeout).
    pub check_timeout: Option<DurationSpec>,
    /// Service tags.
    pub tags: Option<Tags>,
    /// Consul service `meta`.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// keepalived: a VIP that follows the write check (`--format keepalived`).
    pub vrrp: Option<VrrpSpec>,
    /// Consul flap control per service (default: see [`FlapControl::default_for`]).
    pub flap: Option<FlapSpec>,
    /// HAProxy (`--format haproxy`): where the group's frontends listen.
    pub haproxy: Option<HaproxySpec>,
    /// Every other field, read into `options` by the group's kind.
    #[serde(flatten)]
    check_fields: serde_json::Map<String, Value>,
    /// The options of the group's checks.
    #[serde(skip)]
    pub options: CheckOptions,
}

/// Where a group's HAProxy frontends listen.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxySpec {
    /// The write frontend's `bind` (default `:<port>`).
    pub write_bind: Option<String>,
    /// The read frontend's `bind` (default `:<port + 10000>`).
    pub read_bind: Option<String>,
}

/// Consul's flap control of the two services' checks.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapSpec {
    /// The write service's check.
    pub write: Option<FlapControl>,
    /// The read service's check.
    pub read: Option<FlapControl>,
}

/// `success_before_passing` and `failures_before_critical` of one Consul check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapControl {
    /// Consecutive passes before the check turns passing.
    pub success_before_passing: u32,
    /// Consecutive failures before it turns critical.
    pub failures_before_critical: u32,
}

impl FlapControl {
    /// The defaults. Write: out at the first failure (a node that stops being the master must stop
    /// taking writes now), back in only after two passes (a restarted old master does not flap into
    /// the write pool on one lucky answer). Read: rides out one slow answer, back at once.
    pub fn default_for(write: bool) -> FlapControl {
        if write {
            FlapControl { success_before_passing: 2, failures_before_critical: 1 }
        } else {
            FlapControl { success_before_passing: 1, failures_before_critical: 2 }
        }
    }
}

/// A group's VIP, floated by keepalived to the node whose write check passes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSpec {
    /// The virtual address with its prefix length, e.g. `198.18.0.100/24`.
    pub vip: String,
    /// VRRP router id (1-255), unique among the groups on one network segment.
    pub virtual_router_id: u64,
    /// The interface that carries the VIP on every node, e.g. `eth0`.
    pub interface: String,
    /// Every node's VRRP priority (default 100).
    pub priority: Option<u64>,
    /// Priorities of single nodes, overriding `priority`.
    #[serde(default)]
    pub node_priorities: BTreeMap<String, u64>,
    /// Advertisement interval (default 100ms; VRRP version 3 allows centiseconds).
    pub advert_interval: Option<DurationSpec>,
    /// The unprivileged user keepalived runs the checks as (default `keepalived_script`).
    pub script_user: Option<String>,
    /// `nopreempt` (refused together with `--weight`).
    #[serde(default)]
    pub nopreempt: bool,
}

/// Refuses a `password`-like key anywhere in the raw JSON, before it can be echoed in an error.
fn refuse_literal_secrets(v: &Value) -> Result<()> {
    if let Value::Object(map) = v {
        for (k, inner) in map {
            let key = k.to_ascii_lowercase();
            if (key.contains("password") || key.contains("secret") || key == "auth") && !key.ends_with("_file") {
                bail!("'{k}': literal passwords are not allowed in the inventory; put the secret in a file and give password_file/defaults_file");
            }
            refuse_literal_secrets(inner)?;
        }
    }
    Ok(())
}

/// What an inventory object sets beside its groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InventoryDefaults {
    /// `bin_dir`: where the checks are installed.
    pub bin_dir: Option<String>,
    /// `keepalived_version` (`"2.3.3"`): the keepalived the nodes run (2.3.2+ reads sub-second
    /// script timing).
    pub keepalived_version: Option<String>,
    /// `drain_dir`: where the operators' drain files are (default `/var/lib/consul-db-checks/drain`).
    pub drain_dir: Option<String>,
    /// `serve_port`: the port `serve-checks` listens on at every node (default 9200).
    pub serve_port: Option<u64>,
}

/// Reads an inventory: a list of groups, or `{"bin_dir": ..., "keepalived_version": ..., "groups":
/// [...]}`. Returns the groups and the inventory's other settings. Errors name the entry.
pub fn parse_inventory(text: &str) -> Result<(Vec<GroupSpec>, InventoryDefaults)> {
    serde_json::from_str::<NoDuplicateKeys>(text).context("the inventory is not valid JSON")?;
    let v: Value = serde_json::from_str(text).context("the inventory is not valid JSON")?;
    let (groups, defaults) = match v {
        Value::Array(items) => (items, InventoryDefaults::default()),
        Value::Object(mut map) => {
            let groups = match map.remove("groups") {
                Some(Value::Array(items)) => items,
                _ => bail!("the inventory needs a \"groups\" list"),
            };
            let mut text_field = |name: &str| match map.remove(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(anyhow!("{name} must be a string")),
            };
            let bin_dir = text_field("bin_dir")?;
            let keepalived_version = text_field("keepalived_version")?;
            let drain_dir = text_field("drain_dir")?;
            let serve_port = match map.remove("serve_port") {
                None => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| anyhow!("serve_port must be a port number"))?),
            };
            let defaults = InventoryDefaults { bin_dir, keepalived_version, drain_dir, serve_port };
            if let Some(k) = map.keys().next() {
                bail!("unknown inventory field '{k}' (expected groups, bin_dir, keepalived_version, drain_dir, serve_port)");
            }
            (groups, defaults)
        }
        _ => bail!("the inventory must be a list of groups or an object with \"groups\""),
    };
    let specs = groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let label = describe_raw(&g, i);
            refuse_literal_secrets(&g).map_err(|e| anyhow!("{label}: {e}"))?;
            let mut group = serde_json::from_value::<GroupSpec>(g).map_err(|e| anyhow!("{label}: {e}"))?;
            group.options =
                CheckOptions::parse(group.kind, std::mem::take(&mut group.check_fields)).map_err(|e| anyhow!("{label}: {e}"))?;
            Ok(group)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((specs, defaults))
}

/// Reads and parses the inventory file at `path` (bounded in size; errors name the file).
pub fn read_inventory(path: &std::path::Path) -> Result<(Vec<GroupSpec>, InventoryDefaults)> {
    let bytes = crate::credentials::read_bounded(path, crate::credentials::limits::INVENTORY, "inventory")?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow!("inventory {} is not UTF-8 text", path.display()))?;
    parse_inventory(&text).with_context(|| format!("inventory {}", path.display()))
}

/// Walks a JSON document and fails on an object with a key twice (`"groups"` twice, a field twice
/// in one group): plain JSON parsing keeps the last one silently.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<NoDuplicateKeys, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<NoDuplicateKeys, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("the key \"{key}\" appears twice in one object")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// `groups[i] (kind name:port)`, from whatever the raw entry has.
fn describe_raw(g: &Value, i: usize) -> String {
    let field = |k: &str| g.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "?".into());
    format!("groups[{i}] ({} {}:{})", field("kind"), field("name"), field("port"))
}
