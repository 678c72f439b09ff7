//! The `deskcast` binary: parse arguments, set up logging, bind, run.

use anyhow::Context as _;
use clap::Parser as _;
use std::net::SocketAddr;

use deskcast_server::{tls, App, Args, Config};
use tracing_subscriber::EnvFilter;

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("deskcast=info,deskcast_server=info")),
        )
        .init();
    let config = Config::try_from(Args::parse())?;
    let tls = config
        .tls
        .as_ref()
        .map(|source| tls::load(source, config.bind, &config.allow_hosts))
        .transpose()?;
    let app = App::new(&config)?;
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    announce(&config, addr, tls.as_ref());
    match tls {
        Some(tls) => app.serve_tls(listener, tls, shutdown_signal()).await,
        None => app.serve(listener, shutdown_signal()).await,
    }
    .context("server failed")?;
    Ok(())
}

/// Prints the ready URLs once, and warns about risky settings.
fn announce(config: &Config, addr: SocketAddr, tls: Option<&tls::Tls>) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Bound to all addresses: show loopback; from elsewhere use this machine's address.
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let base = format!("{scheme}://{shown}");
    if !addr.ip().is_loopback() {
        println!(
            "deskcast listens on {addr}: reachable from other machines (use this machine's address there)"
        );
        if tls.is_none() {
            tracing::warn!(
                "TLS is off on a non-loopback address: tokens and the screen cross the network \
                 in clear text; add --tls-self-signed or --tls-cert/--tls-key"
            );
        }
    }
    if let Some(tls) = tls {
        println!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint);
    }
    match &config.auth {
        Some(tokens) => {
            println!(
                "deskcast is streaming. Control: {base}/?token={}",
                tokens.control
            );
            println!("View only:   {base}/?token={}", tokens.view);
            println!("No script:   {base}/mjpeg?token={}", tokens.view);
        }
        None => {
            eprintln!(
                "!!! AUTHENTICATION IS OFF (--no-auth): every program and every user on this"
            );
            eprintln!("!!! machine can see the screen and control mouse and keyboard at {base}/");
            println!("deskcast is streaming; open {base}/ (view only, no script: {base}/mjpeg)");
        }
    }
}
