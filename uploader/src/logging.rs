//! The log filter of the uploader binary (and of anything embedding the uploader): `RUST_LOG`
//! directives, with the libraries whose verbose output carries credentials capped whatever
//! those directives say.

use tracing_subscriber::EnvFilter;

/// Targets capped at `info`: at `debug`/`trace` they print signing material (the AWS SDK's
/// signer prints the canonical request and the S3 access key id) or whole HTTP requests.
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_s3",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

/// `directives` (e.g. the value of `RUST_LOG`; `info` if empty or malformed) with
/// [`CAPPED_TARGETS`] held at `info`.
pub fn env_filter(directives: &str) -> EnvFilter {
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
            !CAPPED_TARGETS
                .iter()
                .any(|t| target == *t || target.starts_with(&format!("{t}::")))
        })
        .collect();
    let mut filter = EnvFilter::try_new(kept.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
    for t in CAPPED_TARGETS {
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
            "trace,aws_sigv4=trace",
            "aws_sigv4::sign=trace,debug",
        ] {
            let buf = Buf::default();
            let b2 = buf.clone();
            let sub = tracing_subscriber::fmt()
                .with_env_filter(env_filter(directives))
                .with_writer(move || b2.clone())
                .finish();
            tracing::subscriber::with_default(sub, || {
                tracing::trace!(target: "aws_sigv4::http_request::sign", "AKIDPLANTED");
                tracing::debug!(target: "aws_smithy_runtime::client", "AKIDPLANTED2");
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
