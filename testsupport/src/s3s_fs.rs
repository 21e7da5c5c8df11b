//! The s3s-fs server as a child process, for the uploader's tests and the media node's recording
//! tests (a real S3-compatible server in its own process, as in production).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The installed s3s-fs binary (tests/install/30-uploader.sh): `EDGEMEET_S3S_FS`, else
/// `$EDGEMEET_CACHE/tools/bin/s3s-fs` (default cache `~/.cache/edgemeet`); `None` if missing.
pub fn installed_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEMEET_S3S_FS") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let cache = std::env::var_os("EDGEMEET_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/edgemeet")))?;
    Some(cache.join("tools/bin/s3s-fs")).filter(|p| p.exists())
}

/// A running s3s-fs; killed when dropped.
pub struct S3sFsProcess {
    pub endpoint: String,
    _child: Child,
}

impl S3sFsProcess {
    /// Starts `bin` serving `dir` on a free loopback port with these credentials.
    ///
    /// A port picked free can be taken by another test's server before this one binds it; then
    /// this child exits at once and a connection would reach the other server (and fail once that
    /// test ends). So a start counts only if the child still runs after its port answered, and
    /// another port is tried otherwise.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<Self> {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut child = Command::new(bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    if child.try_wait()?.is_none() {
                        return Ok(Self {
                            endpoint: format!("http://127.0.0.1:{port}"),
                            _child: child,
                        });
                    }
                    break;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "s3s-fs did not start in 15 s",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(io::Error::other(
            "s3s-fs exited at start on 5 ports in a row",
        ))
    }
}
