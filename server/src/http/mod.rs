//! HTTP routes: the client page, `/ws`, the MJPEG stream and page, snapshots, health.
//! Every request first passes [`guard`] (Host, Origin, token, headers).

mod assets;
pub mod conn;
pub mod flow;
pub mod guard;
mod mjpeg;
mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::control::Seat;
use crate::input::Input;
use crate::limits::Viewers;
use crate::pipeline::Pipeline;

pub use assets::CSP_SCRIPT_HASHES;
pub use guard::Guard;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The one capture pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The input thread; `None` when the source takes no input.
    pub input: Option<Input>,
    /// The remote cursor's shape and position; `None` when not an X desktop.
    pub cursor: Option<Arc<crate::cursor::Watcher>>,
    /// Who controls.
    pub seat: Arc<Seat>,
    /// Flips to true when the server shuts down; long-lived streams end on it.
    pub stopping: watch::Receiver<bool>,
    /// Every WebSocket session; shutdown waits for them.
    pub sessions: tokio_util::task::TaskTracker,
    /// Seats for viewers (`--max-clients`).
    pub viewers: Viewers,
    /// Most input events per second per client (`--max-input-rate`).
    pub max_input_rate: u32,
    /// The stream's JPEG quality (`--quality`): where each viewer's quality starts.
    pub quality: u8,
    /// The desktop's clipboard; `None` when not an X desktop.
    pub clipboard: Option<Arc<crate::clipboard::Clipboard>>,
    /// Viewers get the clipboard too (`--view-clipboard`), not only the controller.
    pub view_clipboard: bool,
    /// Which monitor the stream shows; `None` when the source is not a desktop.
    pub monitors: Option<Arc<crate::capture::monitors::Switcher>>,
    /// What `/metrics` shows.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    /// Resolves when the server starts shutting down.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// 503 for one viewer too many.
fn too_many_viewers() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "too many viewers; try again when someone leaves (see --max-clients)\n",
    )
        .into_response()
}

/// `GET /healthz` (no secrets, no token needed): `200 ok` while the source delivers,
/// `503` with the reason while it is gone; then how it captures and the input state.
async fn healthz(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let state = app.pipeline.source_state().borrow().clone();
    let input = match &app.input {
        None => "none",
        Some(i) if i.available() => "ok",
        // A relay whose origin keeps control to itself (no --relay-control).
        Some(i) if !i.may_control() && i.heard() => "view-only",
        Some(_) => "unavailable",
    };
    let (status, first) = match state {
        crate::pipeline::SourceState::Up => (StatusCode::OK, "ok".to_string()),
        crate::pipeline::SourceState::Down(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("source down: {why}; retrying every second"),
        ),
    };
    let capture = app.pipeline.backend();
    (
        status,
        format!("{first}\ncapture: {capture}\ninput: {input}\n"),
    )
}

/// `GET /metrics`: Prometheus text (OpenMetrics), behind the token like every route.
async fn metrics(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// Builds the router; `guard` checks every request.
pub fn router(state: AppState, guard: Arc<Guard>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route(deskcast_shared::WS_PATH, get(ws::upgrade))
        .route("/video_feed", get(mjpeg::video_feed))
        .route("/mjpeg", get(mjpeg::page))
        .route("/mjpeg.css", get(mjpeg::style))
        .route("/snapshot.jpg", get(mjpeg::snapshot))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/favicon.ico", get(assets::favicon))
        .fallback(assets::file)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}
