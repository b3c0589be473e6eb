//! `gen-consul-services`: Consul service definitions (or keepalived `vrrp_script` blocks) for an
//! inventory of instance groups, or for one group described with flags.

pub mod argv;
pub mod haproxy;
pub mod inventory;
pub mod options;
pub mod output;
pub mod plan;
pub mod render;
pub mod vrrp;

use crate::kinds::Kind;
use anyhow::{anyhow, bail, Result};
use clap::Parser;
use inventory::{parse_inventory, read_inventory, GroupSpec, InventoryDefaults};
use output::{FileState, OutputFile};
use plan::{plan, PlanOptions, Service, DEFAULT_NAME_TEMPLATE};
use render::KeepalivedOptions;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One Consul service definition file per service.
    Consul,
    /// One keepalived file of `vrrp_script` blocks per node.
    Keepalived,
    /// One HAProxy configuration for the load balancers: write and read frontends per group.
    Haproxy,
}

/// How Consul runs the checks of the service files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckType {
    /// Script checks: the agent runs the check executable (`enable_local_script_checks`).
    Args,
    /// HTTP checks against serve-checks on the node: no script checks enabled on the agent.
    Http,
}

/// Command line of `gen-consul-services`.
#[derive(Parser, Debug)]
#[command(
    name = "gen-consul-services",
    version,
    about = "Writes the Consul service files (or keepalived vrrp_script blocks) that run consul-db-checks.",
    after_help = "Exit codes: 0 done (or --check: up to date), 1 --check found files that would change, 2 error (nothing written)."
)]
pub struct Args {
    /// Inventory JSON: a list of instance groups (docs/generator.md, in /usr/share/doc/consul-db-checks/ with the package).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// With --inventory: only this node's files, straight into --out (what each host runs).
    #[arg(long, value_name = "ADDRESS", requires = "inventory")]
    pub node: Option<String>,
    /// One group by flags: its kind.
    #[arg(long, value_enum, conflicts_with = "inventory")]
    pub kind: Option<Kind>,
    /// One group by flags: its name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// One group by flags: its port.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u64>,
    /// One group by flags: this node's address.
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Check interval (default 10s).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Consul's timeout for the check (default: half the interval, at most 5s).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The check's own --timeout (default: 3/5 of Consul's).
    #[arg(long, value_name = "DURATION")]
    pub check_timeout: Option<String>,
    /// --user for the checks.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// --password-file for the checks (an absolute path).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<String>,
    /// --defaults-file for MySQL checks (an absolute path).
    #[arg(long, value_name = "PATH")]
    pub defaults_file: Option<String>,
    /// --max-lag for the read check.
    #[arg(long, value_name = "SECONDS")]
    pub max_lag: Option<String>,
    /// --min-replicas for the write check.
    #[arg(long, value_name = "N")]
    pub min_replicas: Option<u32>,
    /// Redis: a Sentinel HOST:PORT (repeat).
    #[arg(long = "sentinel", value_name = "HOST:PORT")]
    pub sentinels: Vec<String>,
    /// Redis: the Sentinels' master name (default: the group name).
    #[arg(long, value_name = "NAME")]
    pub master_name: Option<String>,
    /// MySQL: --repl-user (repeat).
    #[arg(long = "repl-user", value_name = "NAME")]
    pub repl_users: Vec<String>,
    /// MySQL: --replica-port.
    #[arg(long, value_name = "PORT")]
    pub replica_port: Option<u64>,
    /// Service meta KEY=VALUE (repeat).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Directory to write into (default: print to stdout).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write nothing; list the files under --out that would change, exit 1 if any.
    #[arg(long, requires = "out")]
    pub check: bool,
    /// Also remove the files this generator wrote earlier under --out (its manifest lists them)
    /// that the inventory no longer produces; with --check, list them.
    #[arg(long, requires = "out")]
    pub prune: bool,
    /// consul (service files) or keepalived (one keepalived.conf per node: vrrp_script blocks, and a
    /// vrrp_instance per group with a vrrp block).
    #[arg(long, value_enum, default_value_t = OutputFormat::Consul)]
    pub format: OutputFormat,
    /// consul: script checks (args) or HTTP checks against serve-checks (http).
    #[arg(long, value_enum, default_value_t = CheckType::Args)]
    pub check_type: CheckType,
    /// Where the check executables are installed [default: the inventory's bin_dir, else the
    /// directory this executable is installed in, when the checks are beside it, else /usr/local/bin].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<String>,
    /// Service name template: {role} (w/r), {port}, {kind}, {name}.
    #[arg(long, value_name = "TEMPLATE", default_value = DEFAULT_NAME_TEMPLATE)]
    pub name_template: String,
    /// keepalived: failures before fault [default: 1 for the write check, 2 for the read check].
    #[arg(long, value_name = "N")]
    pub fall: Option<u32>,
    /// keepalived: successes before recovery [default: 1 for the write check, 2 for the read check].
    #[arg(long, value_name = "N")]
    pub rise: Option<u32>,
    /// keepalived version the nodes run [default: the inventory's keepalived_version, else 2.2];
    /// 2.3.2 and later get the sub-second write-check timing (every 500 ms, fault at the first failure).
    #[arg(long, value_name = "VERSION")]
    pub keepalived_version: Option<String>,
    /// keepalived: priority change on failure (omit: failure means FAULT).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub weight: Option<i32>,
}

/// The group the flags describe, as an inventory entry (so it gets the same validation).
fn group_from_flags(a: &Args) -> Result<Option<GroupSpec>> {
    let mut g = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            g.insert(k.to_string(), v);
        }
    };
    put("kind", a.kind.map(|k| json!(k.as_str())));
    put("name", a.name.as_ref().map(|v| json!(v)));
    put("port", a.port.map(|v| json!(v)));
    put("nodes", a.address.as_ref().map(|v| json!([v])));
    put("interval", a.interval.as_ref().map(|v| json!(v)));
    put("timeout", a.timeout.as_ref().map(|v| json!(v)));
    put("check_timeout", a.check_timeout.as_ref().map(|v| json!(v)));
    put("user", a.user.as_ref().map(|v| json!(v)));
    put("password_file", a.password_file.as_ref().map(|v| json!(v)));
    put("defaults_file", a.defaults_file.as_ref().map(|v| json!(v)));
    put("max_lag", a.max_lag.as_ref().map(|v| json!(v)));
    put("min_replicas", a.min_replicas.map(|v| json!(v)));
    put("sentinels", (!a.sentinels.is_empty()).then(|| json!(a.sentinels)));
    put("master_name", a.master_name.as_ref().map(|v| json!(v)));
    put("repl_users", (!a.repl_users.is_empty()).then(|| json!(a.repl_users)));
    put("replica_port", a.replica_port.map(|v| json!(v)));
    if !a.meta.is_empty() {
        let mut meta = Map::new();
        for kv in &a.meta {
            let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--meta {kv}: expected KEY=VALUE"))?;
            meta.insert(k.to_string(), json!(v));
        }
        g.insert("meta".into(), Value::Object(meta));
    }
    if g.is_empty() {
        return Ok(None);
    }
    if a.inventory.is_some() {
        bail!("group options ({}) go in the inventory, not on the command line", g.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    for required in ["kind", "name", "port", "nodes"] {
        if !g.contains_key(required) {
            let flag = if required == "nodes" { "address" } else { required };
            bail!("one group by flags needs --kind, --name, --port and --address (missing --{flag})");
        }
    }
    let text = Value::Array(vec![Value::Object(g)]).to_string();
    Ok(parse_inventory(&text)?.0.into_iter().next())
}

/// Lays out the files: one per service (consul) or per node (keepalived), under a node
/// sub-directory when several nodes are written at once.
fn files(services: &[Service], per_node_dirs: bool, a: &Args) -> Result<Vec<OutputFile>> {
    let dir = |node: &str| if per_node_dirs { PathBuf::from(node) } else { PathBuf::new() };
    match a.format {
        OutputFormat::Consul => Ok(services
            .iter()
            .map(|s| OutputFile { path: dir(&s.node).join(format!("{}.json", s.id)), content: render::consul_file(s, a.check_type) })
            .collect()),
        OutputFormat::Haproxy => Ok(vec![OutputFile { path: PathBuf::from("haproxy.cfg"), content: haproxy::haproxy_file(services) }]),
        OutputFormat::Keepalived => {
            let mut nodes: Vec<&str> = Vec::new();
            for s in services {
                if !nodes.contains(&s.node.as_str()) {
                    nodes.push(&s.node);
                }
            }
            let opts = KeepalivedOptions { fall: a.fall, rise: a.rise, weight: a.weight };
            nodes
                .into_iter()
                .map(|node| {
                    let mine: Vec<&Service> = services.iter().filter(|s| s.node == node).collect();
                    Ok(OutputFile { path: dir(node).join("keepalived.conf"), content: render::keepalived_file(&mine, opts)? })
                })
                .collect()
        }
    }
}

/// Everything but printing: parse, validate, lay out. Errors mean nothing may be written.
pub fn generate(a: &Args) -> Result<Vec<OutputFile>> {
    let flags_group = group_from_flags(a)?;
    if a.format == OutputFormat::Haproxy && a.node.is_some() {
        bail!("--format haproxy writes the load balancers' configuration for every node: drop --node");
    }
    if a.check_type == CheckType::Http && a.format != OutputFormat::Consul {
        bail!("--check-type http is for --format consul");
    }
    let (groups, inventory, per_node_dirs) = match (&a.inventory, flags_group) {
        (Some(path), None) => {
            let (groups, defaults) = read_inventory(path)?;
            (groups, defaults, a.node.is_none())
        }
        (None, Some(group)) => (vec![group], Default::default(), false),
        (None, None) => bail!("give --inventory FILE, or --kind, --name, --port and --address for one group (see --help)"),
        (Some(_), Some(_)) => unreachable!("group_from_flags refuses flags with an inventory"),
    };
    let inventory = InventoryDefaults {
        bin_dir: a.bin_dir.clone().or(inventory.bin_dir).or_else(own_bin_dir),
        keepalived_version: a.keepalived_version.clone().or(inventory.keepalived_version),
        ..inventory
    };
    let opts = PlanOptions { name_template: a.name_template.clone(), vrrp_weight: a.weight, ..PlanOptions::from_inventory(&inventory)? };
    let mut services = plan(&groups, &opts)?;
    if let Some(node) = &a.node {
        services = of_node(services, node)?;
    }
    files(&services, per_node_dirs, a)
}

/// The directory this executable is installed in, when the node checks are beside it: the
/// generator and serve-checks then point at the checks of the same installation (`/usr/bin` from the
/// Debian package, `/usr/local/bin` from `make install`) without being told.
pub fn own_bin_dir() -> Option<String> {
    let dir = own_path()?.parent()?.to_path_buf();
    let beside = crate::checks::node_checks().all(|c| dir.join(c.name).is_file());
    (beside && dir.is_absolute()).then(|| dir.to_string_lossy().into_owned())
}

/// This executable's path: from /proc, or where /proc is not mounted (a chroot, a minimal
/// container) from how it was started: `argv[0]` with a slash, or the first match on `PATH`.
fn own_path() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::current_exe() {
        return Some(path);
    }
    let arg0 = std::path::PathBuf::from(std::env::args_os().next()?);
    if arg0.components().count() > 1 {
        return std::fs::canonicalize(arg0).ok();
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(&arg0)).find(|p| p.is_file() && p.is_absolute())
}

/// Only `node`'s services; an error when it has none.
fn of_node(mut services: Vec<Service>, node: &str) -> Result<Vec<Service>> {
    services.retain(|s| s.node == node);
    if services.is_empty() {
        bail!("node {node} is in no group of the inventory");
    }
    Ok(services)
}

/// The services of `node` in the inventory at `path`, exactly as the generator lays them out (the
/// same check argv as its Consul files), with the inventory's plan options (`bin_dir` overridden
/// when given).
pub fn node_services(path: &std::path::Path, node: &str, bin_dir: Option<String>) -> Result<(Vec<Service>, PlanOptions)> {
    let (groups, defaults) = read_inventory(path)?;
    let defaults = InventoryDefaults { bin_dir: bin_dir.or(defaults.bin_dir).or_else(own_bin_dir), ..defaults };
    let opts = PlanOptions::from_inventory(&defaults)?;
    Ok((of_node(plan(&groups, &opts)?, node)?, opts))
}

/// Writes, checks or prints the files; returns the exit code (0, or 1 for --check differences).
fn emit(a: &Args, files: &[OutputFile]) -> Result<i32> {
    let Some(dir) = &a.out else {
        for f in files {
            print!("==> {} <==\n{}", f.path.display(), f.content);
        }
        return Ok(0);
    };
    let current: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let earlier = output::manifest(dir)?;
    let mut obsolete: Vec<&PathBuf> = Vec::new();
    for p in earlier.iter().filter(|p| !current.contains(p)) {
        if output::exists(dir, p)? {
            obsolete.push(p);
        }
    }
    if a.check {
        let mut stale = 0;
        if a.prune {
            for p in &obsolete {
                stale += 1;
                println!("would remove: {}", dir.join(p).display());
            }
        }
        for f in files {
            match output::state(dir, f)? {
                FileState::Unchanged => {}
                FileState::Changed => {
                    stale += 1;
                    println!("would change: {}", dir.join(&f.path).display());
                }
                FileState::Missing => {
                    stale += 1;
                    println!("missing: {}", dir.join(&f.path).display());
                }
            }
        }
        if stale == 0 {
            println!("{} files up to date in {}", files.len(), dir.display());
        }
        return Ok(if stale == 0 { 0 } else { 1 });
    }
    let mut changed = 0;
    for f in files {
        if output::write_atomically(dir, f)? != FileState::Unchanged {
            changed += 1;
            println!("wrote {}", dir.join(&f.path).display());
        }
    }
    let mut listed = current.clone();
    if a.prune {
        for p in &obsolete {
            if output::remove(dir, p)? {
                println!("removed {}", dir.join(p).display());
            }
        }
    } else {
        // Remember what was written before too, so that a later --prune still finds it.
        listed.extend(obsolete.iter().map(|p| (*p).clone()));
    }
    output::write_manifest(dir, &listed)?;
    println!("{changed} of {} files written in {} ({} unchanged)", files.len(), dir.display(), files.len() - changed);
    Ok(0)
}

/// Runs `gen-consul-services` with the process arguments: its exit code, 0, 1 or 2.
pub fn main() -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("gen-consul-services: internal error: {info} (please report this bug)");
        std::process::exit(2);
    }));
    let args = Args::parse();
    let code = match generate(&args) {
        Err(e) => {
            eprintln!("gen-consul-services: {e:#}\nnothing was written");
            2
        }
        Ok(files) => emit(&args, &files).unwrap_or_else(|e| {
            eprintln!("gen-consul-services: {e:#}");
            2
        }),
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(2))
}
