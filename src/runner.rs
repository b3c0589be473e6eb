//! Runs one check as a process: parses arguments, arms the watchdog, evaluates, prints once, exits
//! 0/1/2. Panics, bad usage and timeouts all end here as exit 2 with a message.

use crate::cli::Common;
use crate::deadline::{steps_under_way, Deadline};
use crate::duration::format_duration;
use crate::report::{Format, Outcome, Report, Subcheck, Verdict};
use anyhow::Result;
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// One of the executables' checks: its arguments, where they point, and how it evaluates them.
pub trait Check {
    /// Name used in output (`redis-master`); the status line shows it upper-cased.
    const NAME: &'static str;
    /// The check's command line.
    type Args: clap::Parser;
    /// The server and login, resolved from the arguments, files and environment before any I/O.
    type Target;
    /// What the runner needs from the arguments: deadline, output options, a target to name.
    fn common(args: &Self::Args) -> Common<'_>;
    /// Resolves the target (reads password and defaults files); errors name the file or option.
    fn resolve(args: &Self::Args) -> Result<Self::Target>;
    /// How the target is shown in output: `host:port` or the socket path.
    fn describe(target: &Self::Target) -> String;
    /// Connects, gathers facts and decides, within `deadline`. Errors become a critical verdict.
    fn evaluate(args: &Self::Args, target: &Self::Target, deadline: &Deadline) -> Result<Outcome>;
    /// CPU work `evaluate` will need that does not depend on the arguments, done on the watchdog
    /// thread while the main thread parses them and waits for the network. Nothing by default.
    fn warm_up() {}
}

/// The verdict of a drained check: critical while the operator's drain file exists (any kind of
/// entry, a dangling link too), and critical when it cannot be told whether it exists. `None`:
/// not drained, go on with the check.
pub fn drained(drain_file: Option<&std::path::Path>) -> Option<Outcome> {
    let path = drain_file?;
    match std::fs::symlink_metadata(path) {
        Ok(_) => Some(Outcome::bare(Verdict::new(
            format!("drained by the operator ({})", path.display()),
            [Subcheck::critical("the --drain-file exists: remove it to put the node back")],
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            Some(Outcome::bare(Verdict::failed(format!("cannot tell whether the node is drained: --drain-file {}: {e}", path.display()))))
        }
    }
}

/// What every report of this run shares, set once before the check starts (before that, the
/// defaults: text output, warning exits 1).
struct RunContext {
    target: String,
    notes: Vec<String>,
    format: Format,
    warning_exit_code: u8,
}

static CHECK_NAME: OnceLock<&'static str> = OnceLock::new();
static CONTEXT: OnceLock<RunContext> = OnceLock::new();

/// Runs check `C` with the process arguments and exits; never returns, never exits other than 0/1/2.
pub fn run<C: Check>() -> ! {
    // The deadline counts from here, not from after argument parsing.
    let started = std::time::Instant::now();
    // anyhow captures a backtrace with every error when RUST_BACKTRACE is set; a check never shows
    // one, and capturing costs about a millisecond. Set while this is the only thread.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    crate::memory::tune_for_short_run();
    let watchdog = Watchdog::start(C::warm_up);
    let _ = CHECK_NAME.set(C::NAME);
    std::panic::set_hook(Box::new(|info| {
        if CONTAINING.with(Cell::get) {
            return; // `contained` turns it into an error.
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if EMITTED.load(Ordering::SeqCst) {
            // The panic happened while printing: no second attempt, just the exit code.
            std::process::exit(2);
        }
        emit(Outcome::bare(Verdict::failed(format!("internal error{place}: {msg} (please report this bug)"))));
    }));
    // rustls needs a process-wide crypto provider before the first TLS connect.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let args = match <C::Args as clap::Parser>::try_parse() {
        Ok(args) => args,
        Err(err) => usage_exit(err),
    };
    let common = C::common(&args);
    let resolved = C::resolve(&args);
    let target = match &resolved {
        Ok(t) => C::describe(t),
        Err(_) => common.target_hint.clone(),
    };
    let mut notes = Vec::new();
    if common.password_on_command_line {
        notes.push(crate::credentials::COMMAND_LINE_PASSWORD_NOTE.to_string());
    }
    crate::memory::set_report(crate::memory::OverLimitReport {
        check: C::NAME,
        target: target.clone(),
        json: common.output.format == Format::Json,
    });
    let _ = CONTEXT.set(RunContext { target, notes, format: common.output.format, warning_exit_code: common.output.warning_exit_code });
    let deadline = Deadline::starting_at(started, common.timeout);
    watchdog.arm(deadline);
    if let Some(outcome) = drained(common.drain_file) {
        emit(outcome)
    }
    let outcome = resolved.and_then(|t| C::evaluate(&args, &t, &deadline));
    emit(outcome.unwrap_or_else(|err| Outcome::bare(Verdict::failed(format!("{err:#}")))))
}

/// A check run in this process from an argv: what it would print, and whether its server answered.
#[derive(Clone, Debug)]
pub struct ArgvRun {
    /// The report the executable would print (no notes; warning exits 1).
    pub report: Report,
    /// False when the check got no answer from its server (bad arguments, connect, login,
    /// deadline): its verdict is then about reaching the server, not about the server's state.
    pub reachable: bool,
    /// The operator's `--drain-file` exists: critical on purpose, the server was not asked.
    pub drained: bool,
}

/// Parses `argv` (program path first) with check `C`'s command line, resolves and evaluates it
/// within its own `--timeout` and what is left of `deadline`. Never exits the process.
pub fn evaluate_argv<C: Check>(argv: &[String], deadline: &Deadline) -> ArgvRun {
    let unreachable =
        |target: String, outcome: Outcome| ArgvRun { report: Report::new(C::NAME, target, outcome), reachable: false, drained: false };
    let args = match <C::Args as clap::Parser>::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or("").to_string();
            return unreachable(String::new(), Outcome::bare(Verdict::failed(format!("bad arguments: {first}"))));
        }
    };
    let common = C::common(&args);
    let own = common.timeout;
    let deadline = if own < deadline.left() { Deadline::new(own) } else { *deadline };
    match C::resolve(&args) {
        Err(e) => unreachable(String::new(), Outcome::bare(Verdict::failed(format!("{e:#}")))),
        Ok(target) => {
            let name = C::describe(&target);
            if let Some(outcome) = drained(common.drain_file) {
                return ArgvRun { report: Report::new(C::NAME, name, outcome), reachable: true, drained: true };
            }
            match C::evaluate(&args, &target, &deadline) {
                Ok(outcome) => ArgvRun { report: Report::new(C::NAME, name, outcome), reachable: true, drained: false },
                Err(e) => unreachable(name, Outcome::bare(Verdict::failed(format!("{e:#}")))),
            }
        }
    }
}

/// The thread that ends the run, critical, naming the steps under way, when the deadline passes.
/// Socket timeouts end just before it, so a step's own error usually reports first. Started first
/// thing, it does the check's warm-up while the deadline is not known yet.
struct Watchdog {
    thread: std::thread::Thread,
}

/// The deadline the watchdog enforces, once the arguments have set it.
static WATCHDOG_DEADLINE: OnceLock<Deadline> = OnceLock::new();

impl Watchdog {
    /// Starts the thread: `warm_up` (a panic in it is ignored), then wait for [`Watchdog::arm`].
    fn start(warm_up: fn()) -> Watchdog {
        let handle = std::thread::spawn(move || {
            let _ = contained(warm_up);
            let deadline = loop {
                match WATCHDOG_DEADLINE.get() {
                    Some(deadline) => break deadline,
                    None => std::thread::park(),
                }
            };
            std::thread::sleep(deadline.left());
            let steps = steps_under_way();
            let what = if steps.is_empty() { "the check".to_string() } else { steps.join(", ") };
            emit(Outcome::bare(Verdict::new(
                format!("{what} did not finish within {}", format_duration(deadline.limit())),
                [Subcheck::critical("the --timeout deadline passed")],
            )));
        });
        Watchdog { thread: handle.thread().clone() }
    }

    /// Sets the deadline the thread enforces from now on.
    fn arm(&self, deadline: Deadline) {
        let _ = WATCHDOG_DEADLINE.set(deadline);
        self.thread.unpark();
    }
}

thread_local! {
    /// Set while [`contained`] runs a closure on this thread.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, returning `None` if it panics instead of ending the run: for a dependency that panics
/// on input a server controls (the MySQL driver on a greeting it cannot parse).
pub fn contained<T>(f: impl FnOnce() -> T) -> Option<T> {
    let outer = CONTAINING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    result.ok()
}

/// Set by the first caller of [`emit`].
static EMITTED: AtomicBool = AtomicBool::new(false);

/// Prints the report once (the first caller wins: main thread, watchdog or panic hook) and exits.
pub fn emit(outcome: Outcome) -> ! {
    if EMITTED.swap(true, Ordering::SeqCst) {
        // Another thread is printing and exiting.
        loop {
            std::thread::park();
        }
    }
    let context = CONTEXT.get();
    let report = Report::new(CHECK_NAME.get().copied().unwrap_or("check"), context.map(|c| c.target.clone()).unwrap_or_default(), outcome)
        .with_notes(context.map(|c| c.notes.clone()).unwrap_or_default())
        .with_warning_exit_code(context.map_or(1, |c| c.warning_exit_code));
    // A person at a terminal reads the whole text; Consul (no terminal) keeps 4 KiB of it.
    use std::io::IsTerminal;
    let report = if std::io::stdout().is_terminal() { report.uncapped() } else { report };
    let text = report.render(context.map_or(Format::Text, |c| c.format));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    std::process::exit(report.exit_code())
}

/// Bad usage: exit 2 with clap's explanation, in the format asked for (`--format json` is read
/// from the raw arguments, which did not parse). A value is echoed only where it is one of a fixed
/// set (`--format xml`): any other may be a password. `--help` and `--version` exit 0.
fn usage_exit(err: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let listed = |kind| match err.get(kind) {
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(ContextValue::String(v)) => v.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let why = match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            std::process::exit(0)
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = err.get(ContextKind::InvalidArg).map(|a| a.to_string()).unwrap_or_else(|| "an argument".into());
            match (listed(ContextKind::ValidValue), std::error::Error::source(&err)) {
                // A fixed set of values: naming the value and the choices gives nothing away.
                (choices, _) if !choices.is_empty() => {
                    format!("invalid value '{}' for {arg}: one of {choices}", listed(ContextKind::InvalidValue))
                }
                (_, Some(source)) => format!("invalid value for {arg}: {source}"),
                (_, None) => format!("invalid value for {arg}"),
            }
        }
        ErrorKind::MissingRequiredArgument => format!("missing {}", listed(ContextKind::InvalidArg)),
        _ => {
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string();
            match listed(ContextKind::SuggestedArg) {
                tip if tip.is_empty() => first,
                tip => format!("{first}; did you mean {tip}?"),
            }
        }
    };
    let json = std::env::args().collect::<Vec<_>>().windows(2).any(|w| w[0] == "--format" && w[1] == "json")
        || std::env::args().any(|a| a == "--format=json");
    if json {
        let _ = CONTEXT.set(RunContext { target: String::new(), notes: Vec::new(), format: Format::Json, warning_exit_code: 1 });
    }
    emit(Outcome::bare(Verdict::failed(format!("bad usage: {why} (see --help)"))))
}
