//! The log filter of the uploader binary (and of anything embedding the uploader): `RUST_LOG`
//! directives, with the libraries whose verbose output carries credentials capped whatever
//! those directives say.

use tracing_subscriber::EnvFilter;

/// Targets capped at `info`: at `debug`/`trace` they print signing material (the AWS SDK's
/// signer prints the canonical request and the S3 access key id; its endpoint resolution the
/// credentials), whole HTTP requests, or (s3s, the embedded storage) each request with its
/// `Authorization` header.
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_s3",
    "aws_config",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "s3s",
    "s3s_fs",
];

/// `directives` (e.g. the value of `RUST_LOG`; `info` if empty or malformed) with
/// [`CAPPED_TARGETS`] held at `info`.
pub fn env_filter(directives: &str) -> EnvFilter {
    env_filter_with(directives, &[])
}

/// [`env_filter`] with an embedder's own loud targets capped too (the edge: `tungstenite`, which
/// traces every WebSocket message), so one filter holds every cap.
pub fn env_filter_with(directives: &str, more_capped: &[&str]) -> EnvFilter {
    let capped = || CAPPED_TARGETS.iter().chain(more_capped);
    let base = if directives.trim().is_empty() {
        "info"
    } else {
        directives
    };
    // Drop the user's own directives for capped targets, so ours cannot be overridden.
    let kept: Vec<&str> = base
        .split(',')
        .filter(|d| {
            let target = d.split(['=', '[']).next().unwrap_or("").trim();
            !capped().any(|t| target == *t || target.starts_with(&format!("{t}::")))
        })
        .collect();
    let mut filter = EnvFilter::try_new(kept.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
    for t in capped() {
        filter = filter.add_directive(format!("{t}=info").parse().expect("static directive"));
    }
    filter
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
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn capped_targets_stay_quiet_even_when_asked_for_trace() {
        for directives in [
            "trace",
            "trace,aws_sigv4=trace,tungstenite=trace",
            "aws_sigv4::sign=trace,debug",
        ] {
            let buf = Buf::default();
            let b2 = buf.clone();
            let sub = tracing_subscriber::fmt()
                .with_env_filter(env_filter_with(directives, &["tungstenite"]))
                .with_writer(move || b2.clone())
                .finish();
            tracing::subscriber::with_default(sub, || {
                tracing::trace!(target: "aws_sigv4::http_request::sign", "AKIDPLANTED");
                tracing::debug!(target: "aws_smithy_runtime::client", "AKIDPLANTED2");
                tracing::debug!(target: "s3s::service", "AKIDPLANTED3");
                tracing::trace!(target: "tungstenite::protocol", "AKIDPLANTED4");
                tracing::debug!(target: "edgemeet_uploader::worker", "own line");
                tracing::info!(target: "aws_sigv4", "info passes");
            });
            let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
            assert!(!out.contains("AKIDPLANTED"), "{directives}: {out}");
            assert!(
                out.contains("own line") && out.contains("info passes"),
                "{directives}: {out}"
            );
        }
    }
}
