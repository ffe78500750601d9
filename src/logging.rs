//! Diagnostics on stderr through `tracing`: warnings by default, -v info, -vv debug.
//! Silent on success by default, because cron mails whatever a job prints.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "robot-token: {level}: ")?;
        // Inside a profile's span (`get --all` runs several at once), say which one.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if span.name() != "profile" {
                    continue;
                }
                if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                    let name = f.fields.trim_start_matches("name=");
                    write!(w, "profile {name}: ")?;
                }
            }
        }
        // The message is scrubbed (`secret::scrub`) like an error message: no secret
        // this run sent, no control or bidi character, at any verbosity.
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writeln!(w, "{}", crate::secret::scrub(&message))
    }
}

/// One error line on stderr. Never fails and never panics: with stderr closed
/// (`robot-token get 2>&1 | true`) a message is lost, the run is not.
pub fn error_line(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "robot-token: error: {msg}");
}

/// Text on stdout, ignoring a closed pipe (`robot-token status | head -1`).
pub fn stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        _ => Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Its fallback for a failed write is eprintln!, which panics on a closed
        // stderr: a lost log line must never abort a renewal.
        .log_internal_errors(false)
        .with_max_level(level)
        .event_format(Plain)
        .try_init();
}
