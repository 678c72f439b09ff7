//! HTTP routes: the client page, `/ws`, the MJPEG stream and page, snapshots, health.

mod assets;
mod mjpeg;
mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::control::Seat;
use crate::input::Input;
use crate::pipeline::Pipeline;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The one capture pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The input thread; `None` when the source takes no input.
    pub input: Option<Input>,
    /// Who controls.
    pub seat: Arc<Seat>,
    /// Flips to true when the server shuts down; long-lived streams end on it.
    pub stopping: watch::Receiver<bool>,
}

impl AppState {
    /// Resolves when the server starts shutting down.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route(deskcast_shared::WS_PATH, get(ws::upgrade))
        .route("/video_feed", get(mjpeg::video_feed))
        .route("/mjpeg", get(mjpeg::page))
        .route("/snapshot.jpg", get(mjpeg::snapshot))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(assets::file)
        .with_state(state)
}
