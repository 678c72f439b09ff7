//! deskcast server: streams a screen (or test pattern) to browsers over WebSocket and
//! MJPEG, and replays the browser's input on the desktop.
//!
//! # Layout
//! - [`config`]: clap arguments → validated [`Config`].
//! - [`capture`]: the [`capture::FrameSource`] trait: what changed, capture just that;
//!   screen (X11 MIT-SHM + XDamage, GetImage, xcap) and test pattern.
//! - [`tiles`]: the kept picture, 64×64 tile compare, changed tiles → rectangles.
//! - [`encode`]: JPEG with libjpeg-turbo, and the encoder thread pool.
//! - [`pipeline`]: ONE capture thread → region updates, keyframes and whole frames,
//!   shared by all viewers.
//! - [`input`]: ONE thread owns enigo and replays input; [`control`]: one controller at a time.
//! - [`http`]: routes (`/`, `/ws`, `/video_feed`, `/mjpeg`, `/snapshot.jpg`, `/healthz`),
//!   all behind [`http::guard`] (Host, Origin, token, security headers).
//! - [`auth`]: tokens and the failure lockout; [`limits`]: viewer seats, input rate;
//!   [`tls`]: optional rustls.
//!
//! [`run`] is the whole server; `main.rs` only parses arguments and calls it.

pub mod auth;
pub mod capture;
pub mod config;
pub mod control;
pub mod cursor;
pub mod encode;
pub mod error;
pub mod http;
pub mod input;
pub mod limits;
pub mod pipeline;
pub mod tiles;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Args, Config};
pub use error::StartError;

use crate::http::conn::{Conn, Gated};
use crate::input::Input;
use crate::pipeline::{Pipeline, Stats};

/// A server ready to serve: its source is open and its pipeline thread started (idle).
pub struct App {
    pipeline: Arc<Pipeline>,
    input: Option<Input>,
    cursor: Option<Arc<cursor::Watcher>>,
    config: Config,
}

impl App {
    /// Opens the source and starts the pipeline; fails early with advice.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        let source = capture::open(config.source)?;
        let cursor = if source.is_desktop() {
            cursor::Watcher::start().map(Arc::new)
        } else {
            None
        };
        let drawn = cursor.clone().filter(|_| config.draw_cursor);
        let pipeline = Pipeline::start(source, config.fps, config.quality, drawn)?;
        let desktop = pipeline.is_desktop();
        let input = if desktop || config.test_accept_input {
            let (geometry, applied) = (pipeline.geometry(), pipeline.stats());
            Some(Input::start(
                geometry,
                config.double_click,
                desktop,
                applied,
                pipeline.kicker(),
            )?)
        } else {
            None
        };
        Ok(App {
            pipeline: Arc::new(pipeline),
            input,
            cursor,
            config: config.clone(),
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

    /// Serves plain HTTP until `shutdown` resolves, then closes every stream and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let listener =
            axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                http::conn::tune(tcp)
            });
        let listener = Gated::new(listener, self.config.unauthenticated_timeout);
        let (router, stop_tx) = self.router(local, false);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<Conn>(),
        )
        .with_graceful_shutdown(stop_on(shutdown, stop_tx))
        .await
    }

    /// Serves HTTPS with `tls` until `shutdown` resolves, like [`App::serve`].
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: tls::Tls,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let timeout = self.config.unauthenticated_timeout;
        let (router, stop_tx) = self.router(local, true);
        let listener = Gated::new(tls::TlsListener::new(listener, tls.config)?, timeout);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<Conn>(),
        )
        .with_graceful_shutdown(stop_on(shutdown, stop_tx))
        .await
    }

    fn router(self, local: SocketAddr, tls: bool) -> (axum::Router, watch::Sender<bool>) {
        let (stop_tx, stopping) = watch::channel(false);
        let state = http::AppState {
            pipeline: self.pipeline,
            input: self.input,
            cursor: self.cursor,
            seat: Arc::new(control::Seat::default()),
            stopping,
            viewers: limits::Viewers::new(self.config.max_clients),
            max_input_rate: self.config.max_input_rate,
            quality: self.config.quality,
        };
        let guard = http::Guard::new(&self.config, local, tls, http::CSP_SCRIPT_HASHES);
        (http::router(state, Arc::new(guard)), stop_tx)
    }
}

/// Waits for `shutdown`, then tells the long-lived streams to end.
async fn stop_on(shutdown: impl Future<Output = ()>, stop_tx: watch::Sender<bool>) {
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = App::new(&config)?;
    match &config.tls {
        Some(source) => {
            let tls = tls::load(source, config.bind, &config.allow_hosts)?;
            app.serve_tls(listener, tls, shutdown).await?;
        }
        None => app.serve(listener, shutdown).await?,
    }
    Ok(())
}
