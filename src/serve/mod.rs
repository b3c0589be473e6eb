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
        coalescer.run(service, req.json)
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
