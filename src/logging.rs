//! Where log lines go and how they look.
//!
//! Under systemd, stderr is a stream to journald, and `JOURNAL_STREAM` names its
//! device and inode. There, text logs go through journald's native protocol
//! (`tracing-journald`: each event with its priority and fields), and JSON lines
//! (`--log-format json`) start with a `<N>` syslog priority, which journald reads;
//! either way `journalctl -p warning` finds lbdns's warnings. Should the journald
//! socket not open, text lines go to stderr with the same `<N>` prefixes.
//! Elsewhere lines go to stderr as they are, coloured only when stderr is a
//! terminal (a pipe or a file gets no escape codes).

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Installs the global subscriber: the filter from `LBDNS_LOG` or `RUST_LOG`
/// (default `info`), and the destination described in the module docs.
pub fn init(format: Format) {
    let filter = std::env::var("LBDNS_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let stderr = fmt::layer().with_writer(std::io::stderr);
    match (format, stderr_is_journal()) {
        (Format::Json, true) => registry.with(stderr.json().event_format(Prefixed(fmt::format().json()))).init(),
        (Format::Json, false) => registry.with(stderr.json()).init(),
        (Format::Text, true) => match tracing_journald::layer() {
            Ok(journald) => registry.with(journald).init(),
            Err(e) => {
                let text = stderr.with_ansi(false).event_format(Prefixed(fmt::format().with_ansi(false)));
                registry.with(text).init();
                tracing::warn!(error = %e, "cannot open the journald socket: logging to stderr with priority prefixes");
            }
        },
        (Format::Text, false) => registry.with(stderr.with_ansi(std::io::stderr().is_terminal())).init(),
    }
}

/// True when `JOURNAL_STREAM` ("DEVICE:INODE", set by systemd) names stderr
/// itself, not a stream a parent process had and passed on in the environment.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// The syslog priority journald gives an event of `level`, as tracing-journald
/// maps them: ERROR err (3), WARN warning (4), INFO notice (5), DEBUG info (6),
/// TRACE debug (7).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 5,
        Level::DEBUG => 6,
        Level::TRACE => 7,
    }
}

/// An event format that writes `<N>` (the event's syslog priority) before what
/// the inner format writes: journald's stream protocol (`SyslogLevelPrefix=`).
struct Prefixed<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}
