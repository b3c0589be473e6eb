//! `serve-checks`: one node's checks over HTTP, for HAProxy's `option httpchk`, Consul HTTP checks
//! and other probes. `GET /<service-id>` runs that service's check with exactly the argv of its
//! generated Consul file and answers 200 (passing), 429 (warning) or 503 (critical).

pub mod exec;
pub mod http;
pub mod server;

use crate::duration::{format_duration, parse_duration};
use crate::generator::plan::Service;
use crate::kinds::Role;
use anyhow::{bail, Context, Result};
use clap::Parser;
use http::{Answer, Request};
use std::path::PathBuf;
use std::time::Duration;

/// Command line of `serve-checks`.
#[derive(Parser, Debug)]
#[command(
    name = "serve-checks",
    version,
    about = "Serves one node's checks over HTTP: GET /<service-id> runs that service's check (the generated Consul file's argv) \
             and answers 200 passing, 429 warning, 503 critical; GET / lists the services.",
    after_help = "Exit codes: 0 after --inetd answered, 2 bad usage or the inventory refused (nothing served)."
)]
pub struct Args {
    /// The inventory `gen-consul-services` reads.
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// This node's address, as the inventory lists it: its services are served.
    #[arg(long, value_name = "ADDRESS")]
    pub node: String,
    /// Address to listen on [default: the node's address and the inventory's serve_port, 9200].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Where the check executables are installed [default: the inventory's bin_dir].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<String>,
    /// Connections served at once (reading a request or running its check); more are answered 503 at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_connections: u32,
    /// Time a client has to send its whole request head (a slow client is answered 408).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Requests for one service within this long share one check run (0: every request runs it).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub coalesce: Duration,
    /// Answer one request on standard input and output, then exit (xinetd, systemd Accept=yes).
    #[arg(long)]
    pub inetd: bool,
}

/// One service this node serves: its id, its role and its check's argv.
#[derive(Clone, Debug)]
pub struct Served {
    /// `w-6029-redis-test`.
    pub id: String,
    /// Write or read.
    pub role: Role,
    /// The check that answers it.
    pub check: &'static crate::checks::Executable,
    /// The check's argv, as the generated Consul file holds it.
    pub args: Vec<String>,
    /// Consul's timeout for the check: the process is killed past it.
    pub timeout: Duration,
}

impl Served {
    /// The check's argv with its lag limit tightened to `lag` (`5s`, `500ms`, `30`: `--max-lag`;
    /// bytes with a `B`, `16MB`: `--max-lag-bytes`), never loosened: the limit is the lesser of
    /// `lag` and what the generated argv (or the check's default) says. Read services only.
    pub fn tightened(&self, lag: &str) -> Result<Vec<String>, String> {
        if self.role != Role::Read {
            return Err(format!("?lag= is for read services; {} is a write service", self.id));
        }
        let command = (self.check.command)();
        let matches = command.clone().try_get_matches_from(&self.args).map_err(|e| format!("the generated argv does not parse: {e}"))?;
        let (id, value) = if lag.ends_with(['b', 'B']) {
            let asked = crate::cli::parse_bytes(lag).map_err(|e| format!("lag={lag}: {e}"))?;
            let now = matches.try_get_one::<u64>("max_lag_bytes").ok().flatten().copied();
            ("max_lag_bytes", now.map_or(asked, |n| n.min(asked)).to_string())
        } else {
            let asked = crate::duration::parse_duration(lag).map_err(|e| format!("lag={lag}: {e}"))?;
            let now = matches.try_get_one::<Duration>("max_lag").ok().flatten().copied();
            ("max_lag", format_duration(now.map_or(asked, |n| n.min(asked))))
        };
        let Some(long) = command.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_long()) else {
            return Err(format!("{} has no {} limit (lag={lag})", self.check.name, if id == "max_lag" { "time" } else { "byte" }));
        };
        let flag = format!("--{long}");
        let mut argv = Vec::with_capacity(self.args.len() + 2);
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            if *a == flag {
                args.next();
            } else {
                argv.push(a.clone());
            }
        }
        argv.extend([flag, value]);
        Ok(argv)
    }
}

impl From<&Service> for Served {
    fn from(s: &Service) -> Served {
        Served { id: s.id.clone(), role: s.role, check: s.check, args: s.args.clone(), timeout: s.timeout }
    }
}

/// Everything a request is answered from.
pub struct Node {
    /// The node's address.
    pub node: String,
    /// Its services, in inventory order.
    pub services: Vec<Served>,
}

impl Node {
    /// The answer to one parsed request: the list, a check's result, or 404.
    pub fn answer(&self, req: &Request, coalescer: &server::Coalescer) -> Answer {
        if req.path == "/" {
            return self.listing(req.json);
        }
        let Some(service) = self.services.iter().find(|s| req.path.strip_prefix('/') == Some(s.id.as_str())) else {
            return Answer::text(404, format!("no service {} on node {} (GET / lists them)\n", printable(&req.path), self.node));
        };
        match &req.lag {
            None => coalescer.run(service, req.json),
            // A tighter limit is its own run: never shared with the generated argv's.
            Some(lag) => match service.tightened(lag) {
                Ok(argv) => {
                    answer_of(&exec::run_check(&argv, if req.json { &["--format", "json"] } else { &[] }, service.timeout), req.json)
                }
                Err(why) => Answer::text(400, format!("bad request: {why}\n")),
            },
        }
    }

    /// `GET /`: the node's services, one line each (or a JSON list).
    fn listing(&self, json: bool) -> Answer {
        if json {
            let list: Vec<serde_json::Value> =
                self.services.iter().map(|s| serde_json::json!({"id": s.id, "service": s.role.word(), "check": s.check.name})).collect();
            let body = serde_json::json!({"node": self.node, "services": list}).to_string() + "\n";
            return Answer { status: 200, body, json: true, allow: false };
        }
        let mut body = format!("serve-checks on {}: GET /<service> runs its check (200 passing, 429 warning, 503 critical)\n", self.node);
        for s in &self.services {
            body.push_str(&format!("/{}\t{}\t{}\n", s.id, s.role.word(), s.check.name));
        }
        Answer::text(200, body)
    }
}

/// A path as it may be echoed: at most 100 printable characters.
fn printable(path: &str) -> String {
    path.chars().take(100).filter(|c| c.is_ascii_graphic()).collect()
}

/// The answer of one check run: its output as the body, its exit code as the status.
pub fn answer_of(run: &exec::CheckRun, json: bool) -> Answer {
    let status = http::status_of_exit(run.code);
    // A check that did not finish printed nothing to serve as JSON: say why in text.
    let json = json && run.code.is_some();
    Answer { status, body: run.output.clone(), json, allow: false }
}

/// Reads the inventory and lays out this node's services; errors name the file or the node.
pub fn load(args: &Args) -> Result<(Node, String)> {
    let (services, opts) = crate::generator::node_services(&args.inventory, &args.node, args.bin_dir.clone())?;
    let listen =
        args.listen.clone().unwrap_or_else(|| crate::cli::Address::Tcp { host: args.node.clone(), port: opts.serve_port }.to_string());
    for s in &services {
        if !s.args[0].starts_with('/') {
            bail!("{}: the check {} is not an absolute path", s.id, s.args[0]);
        }
        // Refuse to start rather than answer every request 503 "cannot start ...".
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(&s.args[0]) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            Ok(_) => bail!("{}: the check {} is not an executable file (give --bin-dir, or the inventory's bin_dir)", s.id, s.args[0]),
            Err(e) => bail!("{}: the check {}: {e} (give --bin-dir, or the inventory's bin_dir)", s.id, s.args[0]),
        }
    }
    Ok((Node { node: args.node.clone(), services: services.iter().map(Served::from).collect() }, listen))
}

/// Runs `serve-checks` with the process arguments; returns when it stops serving (`--inetd`:
/// after its one request), or on a startup error (exit 2).
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = (|| -> Result<()> {
        let (node, listen) = load(&args)?;
        if args.inetd {
            server::answer_stdio(&node, &args);
            return Ok(());
        }
        if running_as_root() {
            eprintln!("serve-checks: warning: running as root; run it as an unprivileged user (the systemd unit does)");
        }
        let listener = std::net::TcpListener::bind(&listen).with_context(|| format!("listen on {listen}"))?;
        eprintln!(
            "serve-checks: {} service(s) of {} on http://{listen}/ (at most {} connections, head within {}, coalesce {})",
            node.services.len(),
            node.node,
            args.max_connections,
            format_duration(args.header_timeout),
            format_duration(args.coalesce)
        );
        server::serve(listener, node, &args)
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve-checks: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Whether this process runs with root's effective user id.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::inventory::parse_inventory;
    use crate::generator::plan::{plan, PlanOptions};

    fn served(json: &str, id: &str) -> Served {
        let (groups, _) = parse_inventory(json).unwrap();
        let services = plan(&groups, &PlanOptions::default()).unwrap();
        Served::from(services.iter().find(|s| s.id == id).unwrap())
    }
    fn limit(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
    }

    /// `?lag=` tightens the generated limit and never loosens it; bytes for Redis only; reads only.
    #[test]
    fn lag_in_the_query_only_tightens() {
        let redis = served(r#"[{"kind":"redis","name":"t","port":6029,"nodes":["10.0.0.1"],"max_lag":"30s"}]"#, "r-6029-redis-t");
        assert_eq!(limit(&redis.tightened("5s").unwrap(), "--max-lag"), ["5s"]);
        assert_eq!(limit(&redis.tightened("1m").unwrap(), "--max-lag"), ["30s"], "never loosened");
        let bytes = redis.tightened("16MB").unwrap();
        assert_eq!((limit(&bytes, "--max-lag-bytes"), limit(&bytes, "--max-lag")), (vec!["16777216".to_string()], vec!["30s".to_string()]));
        let mysql = served(r#"[{"kind":"mysql","name":"m","port":3306,"nodes":["10.0.0.1"]}]"#, "r-3306-mysql-m");
        assert_eq!(limit(&mysql.tightened("10").unwrap(), "--max-lag"), ["10s"], "under the check's own default of 120 s");
        assert_eq!(limit(&mysql.tightened("10m").unwrap(), "--max-lag"), ["2m"], "the default is the ceiling");
        assert!(mysql.tightened("16MB").unwrap_err().contains("check-mysql-slave has no byte limit"));
        assert!(mysql.tightened("soon").unwrap_err().starts_with("lag=soon"));
        let write = served(r#"[{"kind":"mysql","name":"m","port":3306,"nodes":["10.0.0.1"]}]"#, "w-3306-mysql-m");
        assert!(write.tightened("5s").unwrap_err().contains("is a write service"));
    }
}
