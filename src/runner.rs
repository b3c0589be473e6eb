//! Runs one check as a process: parses arguments, arms the watchdog, evaluates, prints once, exits
//! 0/1/2. Panics, bad usage and timeouts all end here as exit 2 with a message.

use crate::cli::ServerArgs;
use crate::deadline::{steps_under_way, Deadline};
use crate::duration::format_duration;
use crate::report::{Format, Outcome, Report, Verdict};
use anyhow::Result;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One of the executables' checks: its arguments and how it evaluates them.
pub trait Check {
    /// Name used in output (`redis-master`); the status line shows it upper-cased.
    const NAME: &'static str;
    /// Port used when none is given.
    const DEFAULT_PORT: u16;
    /// The check's command line.
    type Args: clap::Parser;
    /// The connection options inside the check's arguments.
    fn server(args: &Self::Args) -> &ServerArgs;
    /// Connects, gathers facts and decides. Errors become a critical verdict naming the step.
    fn evaluate(args: &Self::Args, run: &Run) -> Result<Outcome>;
}

/// What a check needs from the run: the deadline, and a way to name its target.
pub struct Run {
    /// The deadline bounding the whole run.
    pub deadline: Deadline,
}

impl Run {
    /// Sets the `host:port` or socket shown as the check's target.
    pub fn set_target(&self, target: impl Into<String>) {
        state().target = target.into();
    }
}

struct RunState {
    check: &'static str,
    target: String,
    notes: Vec<String>,
    format: Format,
    warning_exit_code: u8,
}

static STATE: Mutex<RunState> =
    Mutex::new(RunState { check: "check", target: String::new(), notes: Vec::new(), format: Format::Text, warning_exit_code: 1 });

fn state() -> std::sync::MutexGuard<'static, RunState> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs check `C` with the process arguments and exits; never returns, never exits other than 0/1/2.
pub fn run<C: Check>() -> ! {
    // The deadline counts from here, not from after argument parsing.
    let started = std::time::Instant::now();
    state().check = C::NAME;
    std::panic::set_hook(Box::new(|info| {
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
        emit(Outcome::bare(Verdict::critical(format!("internal error{place}: {msg} (please report this bug)"))));
    }));
    // rustls needs a process-wide crypto provider before the first TLS connect.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let args = match <C::Args as clap::Parser>::try_parse() {
        Ok(args) => args,
        Err(err) => usage_exit(err),
    };
    let server = C::server(&args);
    {
        let mut st = state();
        st.format = server.output.format;
        st.warning_exit_code = server.output.warning_exit_code;
        st.target = match server.address(C::DEFAULT_PORT) {
            Ok(a) => a.to_string(),
            Err(_) => "?".into(),
        };
    }
    if server.password_arg.as_deref().is_some_and(|p| !p.is_empty()) {
        state().notes.push(crate::credentials::COMMAND_LINE_PASSWORD_NOTE.into());
    }
    let run = Run { deadline: Deadline::starting_at(started, server.timeout) };
    arm_watchdog(run.deadline);
    let outcome = match C::evaluate(&args, &run) {
        Ok(outcome) => outcome,
        Err(err) => Outcome::bare(Verdict::critical(format!("{err:#}"))),
    };
    emit(outcome)
}

/// Starts the thread that ends the run, critical, naming the steps under way, when the deadline
/// passes. Socket timeouts end just before it, so a step's own error usually reports first.
fn arm_watchdog(deadline: Deadline) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline.left());
        let limit = deadline.limit();
        let steps = steps_under_way();
        let what = if steps.is_empty() { "the check".to_string() } else { steps.join(", ") };
        emit(Outcome::bare(
            Verdict::critical(format!("{what} did not finish within {}", format_duration(limit)))
                .because("the --timeout deadline passed"),
        ));
    });
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
    let (report, format) = {
        let st = state();
        let report = Report {
            check: st.check,
            target: st.target.clone(),
            outcome,
            notes: st.notes.clone(),
            warning_exit_code: st.warning_exit_code,
        };
        (report, st.format)
    };
    let text = report.render(format);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    std::process::exit(report.exit_code())
}

/// Bad usage: exit 2 with clap's explanation (values are not echoed: one may be a password).
/// `--help` and `--version` exit 0.
fn usage_exit(err: clap::Error) -> ! {
    use clap::error::{ContextKind, ErrorKind};
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            std::process::exit(0)
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = err.get(ContextKind::InvalidArg).map(|a| a.to_string()).unwrap_or_else(|| "an argument".into());
            let why = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
            emit(Outcome::bare(Verdict::critical(format!("bad usage: invalid value for {arg}{why} (see --help)"))))
        }
        _ => {
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            emit(Outcome::bare(Verdict::critical(format!("bad usage: {first} (see --help)"))))
        }
    }
}
