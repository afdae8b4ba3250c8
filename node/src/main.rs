//! `busloket-node`: parses the command line, sets up logging, opens the state, binds, and hands
//! over to [`busloket_node::run`] until SIGTERM or Ctrl-C.
//!
//! Usage: `busloket-node --config /etc/busloket/node.toml`. `RUST_LOG` sets the log filter
//! (default `info`; citizen data is never logged at `info`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use busloket_node::config::Config;
use busloket_node::state::AppState;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config_path = config_path()?;
    let config = Config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

fn config_path() -> Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => Ok(PathBuf::from(path)),
        _ => bail!("usage: busloket-node --config <node.toml>"),
    }
}

async fn serve(config: Config) -> Result<()> {
    let listen = config.listen;
    let demo = config.demo;
    let state = AppState::from_config(config)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let scheme = if state.wifi_tls().is_some() {
        "https"
    } else {
        "http"
    };
    let sync = state.enrolled.is_some();
    tracing::info!(%address, demo, sync, scheme, "busloket-node started");
    if scheme == "http" {
        tracing::info!("serving plain HTTP: only for the demo, tests or a lab bench");
    }
    // The first line on stdout is the address: scripts and tests read it (useful with port 0).
    println!("busloket-node listening on {scheme}://{address}");
    busloket_node::run(listener, state, shutdown_signal()).await?;
    tracing::info!("busloket-node stopped");
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
