//! Logging set-up: a tracing subscriber in text or JSON, filtered by `WAFER_LOG`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Libraries whose debug/trace output quotes what wafer sends them (query
/// parameters, command arguments: session keys, skey hashes, user data).
/// They never log below `info`, whatever `WAFER_LOG` says.
const CAPPED: [&str; 3] = ["tokio_postgres=info", "fred=info", "redis_protocol=info"];

/// The filter for `WAFER_LOG`, with [`CAPPED`] applied; the second value is
/// why a bad filter was replaced by the default, `info`.
pub fn filter(spec: &str) -> (EnvFilter, Option<String>) {
    let (mut filter, bad) = match EnvFilter::try_new(spec) {
        Ok(f) => (f, None),
        Err(e) => (
            EnvFilter::new(crate::config::defaults::LOG),
            Some(e.to_string()),
        ),
    };
    for cap in CAPPED {
        if let Ok(d) = cap.parse() {
            filter = filter.add_directive(d);
        }
    }
    (filter, bad)
}

/// Whether text logs are coloured: only on a terminal (escapes in a file,
/// journald or `docker logs` break `grep`), and never with `NO_COLOR` set
/// to anything but the empty string (<https://no-color.org>).
pub fn colour(on_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    on_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber writing to stderr. A bad filter falls back
/// to `info` with a warning rather than refusing to start.
pub fn init(spec: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    install(spec, format, std::io::stderr, ansi);
}

/// Installs the global subscriber writing to `writer`, without colour
/// (tests capture logs).
pub fn init_with_writer<W>(spec: &str, format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(spec, format, writer, false);
}

fn install<W>(spec: &str, format: LogFormat, writer: W, ansi: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, bad) = filter(spec);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Some(e) = bad {
        tracing::warn!(error = %e, "WAFER_LOG is not a valid filter; logging at info");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chatty_libraries_stay_capped_even_when_asked_for_trace() {
        let buf = Buf::default();
        let writer = buf.clone();
        let (filter, bad) = filter("trace,tokio_postgres=trace,fred=trace");
        assert!(bad.is_none());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "tokio_postgres::query", "parameters: LEAK-1");
            tracing::trace!(target: "fred::protocol", "args: LEAK-2");
            tracing::info!(target: "tokio_postgres::connection", "notice: kept");
            tracing::trace!(target: "wafer::x", "wafer trace: kept");
        });
        let out = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(!out.contains("LEAK"), "{out}");
        assert!(
            out.contains("notice: kept") && out.contains("wafer trace: kept"),
            "{out}"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(colour(true, Some("".into())));
    }

    #[test]
    fn a_bad_filter_falls_back_to_info() {
        let (_, bad) = filter("wafer=[[[");
        assert!(bad.is_some());
    }
}
