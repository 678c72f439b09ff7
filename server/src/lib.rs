//! deskcast server: streams a screen (or test pattern) to browsers over WebSocket and
//! MJPEG, and replays the browser's input on the desktop.
//!
//! # Layout
//! - [`config`]: clap arguments → validated [`Config`].
//! - [`capture`]: the [`capture::FrameSource`] trait; screen (xcap) and test pattern.
//! - [`encode`]: JPEG with libjpeg-turbo.
//! - [`pipeline`]: ONE capture+encode thread, latest frame published to all viewers.
//! - [`input`]: ONE thread owns enigo and replays input; [`control`]: one controller at a time.
//! - [`http`]: routes (`/`, `/ws`, `/video_feed`, `/mjpeg`, `/snapshot.jpg`, `/healthz`).
//!
//! [`run`] is the whole server; `main.rs` only parses arguments and calls it.

pub mod capture;
pub mod config;
pub mod control;
pub mod encode;
pub mod error;
pub mod http;
pub mod input;
pub mod pipeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Args, Config};
pub use error::StartError;

use crate::input::Input;
use crate::pipeline::{Pipeline, Stats};

/// A server ready to serve: its source is open and its pipeline thread started (idle).
pub struct App {
    pipeline: Arc<Pipeline>,
    input: Option<Input>,
}

impl App {
    /// Opens the source and starts the pipeline; fails early with advice.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        let source = capture::open(config.source)?;
        let desktop = source.is_desktop();
        let geometry = source.geometry();
        let pipeline = Pipeline::start(source, config.fps, config.quality)?;
        let input = if desktop || config.test_accept_input {
            let applied = pipeline.stats();
            Some(Input::start(geometry, desktop, applied)?)
        } else {
            None
        };
        Ok(App {
            pipeline: Arc::new(pipeline),
            input,
        })
    }

    /// Every input event accepted for the desktop, in order (for tests). `None` when the
    /// source takes no input.
    pub fn input_tap(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<deskcast_shared::ClientMessage>> {
        self.input.as_ref().map(Input::tap)
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.pipeline.stats()
    }

    /// Serves until `shutdown` resolves, then closes every stream and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stopping) = watch::channel(false);
        let state = http::AppState {
            pipeline: self.pipeline,
            input: self.input,
            seat: Arc::new(control::Seat::default()),
            stopping,
        };
        let router = http::router(state);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        })
        .await
    }
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = App::new(&config)?;
    app.serve(listener, shutdown).await?;
    Ok(())
}
