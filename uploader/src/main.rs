//! `edgemeet-uploader`: the standalone uploader service.
//!
//! ```text
//! edgemeet-uploader [--config FILE]               run (config also from EDGEMEET_UPLOADER_* env)
//! edgemeet-uploader check-config [--config FILE]  validate and exit
//! edgemeet-uploader gen-key                       print a fresh base64 encryption_key
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use edgemeet_uploader::{Config, TokenKey};

fn usage() -> &'static str {
    "usage: edgemeet-uploader [run|check-config|gen-key] [--config FILE]\n\
     config file: TOML (see docs/uploader.md); EDGEMEET_UPLOADER_* variables override it;\n\
     EDGEMEET_UPLOADER_CONFIG names the file when --config is not given."
}

fn main() {
    // Errors print as one clear line (with causes), never a backtrace.
    if let Err(err) = cli() {
        eprintln!("edgemeet-uploader: error: {err:#}");
        std::process::exit(1);
    }
}

fn cli() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut command = "run".to_owned();
    let mut config_path: Option<PathBuf> =
        std::env::var_os("EDGEMEET_UPLOADER_CONFIG").map(PathBuf::from);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config_path = Some(args.next().context("--config needs a file")?.into())
            }
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            "run" | "check-config" | "gen-key" => command = a,
            other => bail!("unknown argument {other:?}\n{}", usage()),
        }
    }
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    tracing_subscriber::fmt()
        .with_env_filter(edgemeet_uploader::logging::env_filter(&directives))
        .with_writer(std::io::stdout)
        .init();

    match command.as_str() {
        "gen-key" => {
            let (_, b64) = TokenKey::generate()?;
            println!("{b64}");
            Ok(())
        }
        "check-config" => {
            Config::load(config_path.as_deref())?;
            println!("config ok");
            Ok(())
        }
        _ => {
            let config = Config::load(config_path.as_deref()).context("bad configuration")?;
            run(config)
        }
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        bucket = %config.s3.bucket,
        endpoint = %config.s3.endpoint,
        destination = ?config.destination,
        "edgemeet-uploader starting"
    );
    let handle = edgemeet_uploader::start(config)
        .await
        .context("cannot start")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    handle.shutdown().await;
    Ok(())
}
