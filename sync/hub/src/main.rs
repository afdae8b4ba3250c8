//! `busloket-hub`: parses the command line, sets up logging, opens the hub (trust material, staff
//! file, store), binds, and hands over to [`busloket_hub::server::run`] until SIGTERM or Ctrl-C.
//! SIGHUP reloads the revocation list and the staff file.
//!
//! Usage: `busloket-hub --config /etc/busloket/hub.toml`. `RUST_LOG` sets the log filter
//! (default `info`; citizen data is never logged at `info`). Once it listens it writes the line
//! `busloket-hub listening on https://<address>` to stderr (scripts and tests wait for it, or
//! poll `GET /health`). A bad certificate, key or staff file stops it with exit status 1 and a
//! message naming the file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use busloket_hub::config::Config;
use busloket_hub::server::AppState;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    let config_path = config_path()?;
    let config = Config::load(&config_path)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

fn config_path() -> Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--config"), Some(path), None) => Ok(PathBuf::from(path)),
        _ => bail!("usage: busloket-hub --config <hub.toml>"),
    }
}

async fn serve(config: Config) -> Result<()> {
    let listen = config.listen;
    let opened = AppState::open(&config).context("the hub cannot start")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "busloket-hub started");
    eprintln!("busloket-hub listening on https://{address}");
    let reloader = opened.state.clone();
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!("cannot listen for SIGHUP");
            return;
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the revocation list and the staff file");
            let state = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || state.refresh()).await;
        }
    });
    busloket_hub::server::run(listener, opened.tls, opened.state, shutdown_signal()).await;
    tracing::info!("busloket-hub stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("stopping: draining open requests");
}
