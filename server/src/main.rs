//! The `deskcast` binary: parse arguments, set up logging, run until Ctrl-C or SIGTERM.

use clap::Parser as _;

use deskcast_server::{Args, Config};
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
    let args = Args::parse();
    if args.check {
        let (report, ok) = deskcast_server::doctor::report(&args);
        print!("{report}");
        std::process::exit(if ok { 0 } else { 1 });
    }
    if args.list_monitors {
        print!(
            "{}",
            deskcast_server::capture::monitors::print_list().map_err(anyhow::Error::msg)?
        );
        return Ok(());
    }
    if args.list_cameras {
        print!("{}", deskcast_server::capture::camera::v4l::list());
        return Ok(());
    }
    let config = Config::try_from(args)?;
    deskcast_server::run(config, shutdown_signal()).await
}
