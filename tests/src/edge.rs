//! The edge under test: `EDGEMEET_URL` names a running one (the Worker under workerd, say); without
//! it a native `edgemeet` is started with `tests/fixtures/edge.toml` on a free loopback port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Edge {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    child: Option<Child>,
    logs: Arc<Mutex<String>>,
    exit: Option<std::process::ExitStatus>,
}

/// Where `cargo build` put the binaries: `EDGEMEET_BIN_DIR`, else next to this test executable.
pub fn bin_path(name: &str) -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("EDGEMEET_BIN_DIR") {
        return std::path::Path::new(&dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join(name)
}

impl Edge {
    /// The edge named by `EDGEMEET_URL`, or a fresh native server.
    pub fn start() -> Self {
        match std::env::var("EDGEMEET_URL") {
            Ok(url) if !url.is_empty() => Self {
                base: url.trim_end_matches('/').to_string(),
                child: None,
                logs: Default::default(),
                exit: None,
            },
            _ => Self::native(&[]),
        }
    }

    /// The process id of a native server started by the test.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether this is a native server started by the test (so its logs can be read).
    pub fn is_local_native(&self) -> bool {
        self.child.is_some()
    }

    /// Start the native server with the fixture config and extra environment.
    pub fn native(env: &[(&str, &str)]) -> Self {
        let bin = bin_path("edgemeet");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --workspace --all-targets` first (tests/run does)",
            bin.display()
        );
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(crate::repo_root().join("tests/fixtures/edge.toml"))
            .env("EDGEMEET_WEB_DIR", crate::repo_root().join("edge/web"))
            .env("EDGEMEET_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start edgemeet");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .trim_end_matches('/')
                            .to_string();
                        let _ = tx.send(url);
                    }
                    let mut l = logs.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("edgemeet did not start: {}", logs.lock().unwrap())
            });
        Self {
            base,
            child: Some(child),
            logs,
            exit: None,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{}", self.base.replacen("http", "ws", 1), path)
    }

    pub fn host_port(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// Everything the native server printed so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Wait until `pred` holds on the logs (they arrive asynchronously).
    pub fn wait_logs(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if pred(&self.logs()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the server stopped by [`Edge::stop`] exited with status 0 (not killed).
    pub fn exited_cleanly(&self) -> bool {
        self.exit.is_some_and(|s| s.success())
    }

    /// Stop the server (SIGTERM via `kill`, then wait) and return its logs.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        self.logs()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
