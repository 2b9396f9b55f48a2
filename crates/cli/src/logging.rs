//! Structured logs on stderr, as logfmt or JSON lines. Every line logged while a request is handled carries the
//! fields of its span, among them `request_id`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the process-wide subscriber and the panic hook. Called once, by the binary.
pub fn init(format: LogFormat, filter: &str) {
    std::panic::set_hook(panic_hook(|report| {
        tracing::error!(thread = report.thread, location = report.location, "{PANICKED}")
    }));
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => {
            builder.json().with_current_span(true).with_span_list(false).flatten_event(true).try_init()
        }
        LogFormat::Logfmt => builder.fmt_fields(LogfmtFields).event_format(Logfmt).try_init(),
    };
}

const PANICKED: &str = "a thread panicked; its message is not logged, as it may hold request data";

/// Where a panic happened, without its message.
#[derive(Debug)]
struct PanicReport<'a> {
    thread: &'a str,
    location: &'a str,
}

/// Reports a panic by its thread and source location only. Rust's default hook prints the panic's message, and
/// a message can hold whatever the panicking code had in hand: a prompt, a key, a record. Panics in request
/// handling and policy evaluation are caught and answered (a 500, or the policy's fail-closed decision), so
/// the message would be the only trace they leave on stderr. A backtrace is added when `RUST_BACKTRACE` asks
/// for one (it holds code locations, not data).
fn panic_hook(
    report: impl Fn(PanicReport<'_>) + Send + Sync + 'static,
) -> Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync + 'static> {
    Box::new(move |info| {
        let thread = std::thread::current();
        let location = info.location().map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let backtrace = std::backtrace::Backtrace::capture();
        let location = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("{location}\n{backtrace}"),
            _ => location,
        };
        report(PanicReport { thread: thread.name().unwrap_or("unnamed"), location: &location });
    })
}

/// `ts=… level=… target=… msg="…" key=value … request_id=…`
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        let ts = now.format(&time::format_description::well_known::Rfc3339).map_err(|_| fmt::Error)?;
        let meta = event.metadata();
        write!(
            writer,
            "ts={ts} level={} target={}",
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        )?;
        let mut fields = String::new();
        ctx.format_fields(Writer::new(&mut fields), event)?;
        if !fields.is_empty() {
            write!(writer, " {fields}")?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, " {fields}")?;
                }
            }
        }
        writeln!(writer)
    }
}

/// Formats fields as logfmt pairs, quoting values that need it.
struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = LogfmtVisitor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LogfmtVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl LogfmtVisitor<'_> {
    fn pair(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = if field.name() == "message" { "msg" } else { field.name() };
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result =
            if value.is_empty() || value.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=' || b == b'\\') {
                write!(self.writer, "{separator}{name}={value:?}")
            } else {
                write!(self.writer, "{separator}{name}={value}")
            };
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_panic_is_reported_by_thread_and_place_without_its_message() {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        std::panic::set_hook(panic_hook(move |report| {
            sink.lock().unwrap().push(format!("{} {}", report.thread, report.location));
        }));
        let joined = std::thread::Builder::new()
            .name("request-worker".to_owned())
            .spawn(|| panic!("patient SSN 123-45-6789"))
            .unwrap()
            .join();
        let _ = std::panic::take_hook();
        assert!(joined.is_err(), "the thread panicked");
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].starts_with("request-worker crates/cli/src/logging.rs:"), "{reports:?}");
        assert!(!reports[0].contains("123-45-6789") && !reports[0].contains("SSN"), "{reports:?}");
    }
}
