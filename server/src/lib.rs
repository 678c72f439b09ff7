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
//! - [`auth`]: tokens, sessions, what a wrong token costs; [`limits`]: viewer seats,
//!   input rate; [`tls`]: optional rustls; [`http::conn`]: the accept loop and its bounds.
//!
//! [`run`] is the whole server; `main.rs` only parses arguments and calls it.

mod announce;
pub mod auth;
pub mod capture;
pub mod clipboard;
pub mod config;
pub mod control;
pub mod cursor;
pub mod doctor;
pub mod encode;
pub mod error;
pub mod http;
pub mod input;
pub mod limits;
pub mod metrics;
pub mod nats;
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

use tokio_util::task::TaskTracker;

use crate::http::conn::Conn;
use crate::input::Input;
use crate::pipeline::{Pipeline, Stats};

/// A server ready to serve: its source is open and its pipeline thread started (idle).
pub struct App {
    pipeline: Arc<Pipeline>,
    input: Option<Input>,
    clipboard: Option<Arc<clipboard::Clipboard>>,
    monitors: Option<Arc<capture::monitors::Switcher>>,
    cursor: Option<Arc<cursor::Watcher>>,
    config: Config,
    nats: Option<NatsSide>,
}

/// This server's part in a NATS stream.
enum NatsSide {
    /// It publishes its frames.
    Origin(async_nats::Client, nats::Subjects),
    /// It serves frames from NATS.
    Relay(nats::relay::Link),
}

impl App {
    /// Opens the source and starts the pipeline; fails early with advice.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        let source = capture::open(&config.source)?;
        let cursor = if source.is_desktop() {
            cursor::Watcher::start().map(Arc::new)
        } else {
            None
        };
        let drawn = cursor.clone().filter(|_| config.draw_cursor);
        // A desktop can be lost (its X server dies), a camera unplugged, and each come
        // back: re-open it then. The pattern is never lost.
        // Whatever the switcher names (the controller may pick another monitor).
        let switcher = capture::monitors::Switcher::new(config.source.clone());
        let target = switcher.target();
        let reopen = (!matches!(config.source, config::SourceSpec::Pattern { .. })).then(|| {
            Box::new(move || {
                let spec = target.lock().unwrap_or_else(|e| e.into_inner()).clone();
                capture::open(&spec)
            }) as pipeline::Reopen
        });
        let monitors = switcher.current().map(|_| Arc::new(switcher));
        let pipeline =
            Pipeline::start_reopening(source, reopen, config.fps, config.quality, drawn)?;
        let desktop = pipeline.is_desktop();
        let input = if desktop || config.test_accept_input {
            let (geometry, applied) = (pipeline.geometry_watch(), pipeline.stats());
            Some(Input::start(
                geometry,
                config.double_click,
                desktop,
                applied,
                pipeline.kicker(),
                pipeline.source_state(),
            )?)
        } else {
            None
        };
        let clipboard = if desktop {
            clipboard::Clipboard::start(config.clipboard_primary).map(Arc::new)
        } else {
            None
        };
        Ok(App {
            pipeline: Arc::new(pipeline),
            input,
            clipboard,
            monitors,
            cursor,
            config: config.clone(),
            nats: None,
        })
    }

    /// Connects to NATS as `--nats` says: an origin publishes its frames there. Connects
    /// in the background: a NATS server that comes later is used then.
    pub async fn publish_to_nats(mut self) -> Result<Self, StartError> {
        let Some(config) = self.config.nats.clone() else {
            return Ok(self);
        };
        let (events, _) = tokio::sync::mpsc::channel(16);
        let client = nats::connect(&config, "deskcast origin", events).await?;
        self.nats = Some(NatsSide::Origin(
            client,
            nats::Subjects::new(&config.stream),
        ));
        Ok(self)
    }

    /// A relay: serves the stream an origin publishes to NATS (`--nats`, `--stream`).
    pub async fn relay(config: &Config) -> Result<Self, StartError> {
        let nats_config = config.nats.clone().ok_or_else(|| {
            StartError::Config("a relay needs --nats URL and --stream NAME".into())
        })?;
        let (events_tx, events) = tokio::sync::mpsc::channel(16);
        let client = nats::connect(&nats_config, "deskcast relay", events_tx).await?;
        let subjects = nats::Subjects::new(&nats_config.stream);
        let (pipeline, inlet, wants) = Pipeline::relayed(capture::Geometry {
            x: 0,
            y: 0,
            width: 1280,
            height: 720,
        })?;
        let (origin, origin_rx) = watch::channel(nats::relay::OriginState::default());
        let id = format!("{:016x}", nats::random_id());
        let (watcher, cursor) = cursor::Watcher::fed();
        let remote = nats::relay::RemoteInput::start(
            client.clone(),
            subjects.input.clone(),
            id.clone(),
            origin_rx,
        );
        Ok(App {
            pipeline: Arc::new(pipeline),
            input: Some(Input::remote(remote)),
            clipboard: None,
            monitors: None,
            cursor: Some(Arc::new(watcher)),
            config: config.clone(),
            nats: Some(NatsSide::Relay(nats::relay::Link {
                client,
                subjects,
                relay: id,
                inlet,
                wants,
                origin,
                events,
                cursor,
            })),
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

    /// Serves on `listener` (HTTPS with `tls`) until `shutdown` resolves; then closes
    /// every stream, waits for the sessions to end, and releases whatever input holds
    /// before it returns.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        tls: Option<tls::Tls>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let limits = http::conn::Limits::new(http::conn::raise_fd_limit(), &self.config);
        let accepting =
            http::conn::Accepting::start(listener, tls.as_ref().map(tls::Tls::acceptor), limits)?;
        let input = self.input.clone();
        let sessions = TaskTracker::new();
        let (stop_tx, stopping) = watch::channel(false);
        let seat = self.seat();
        self.start_nats(&seat, &stopping);
        if self.config.relay {
            // Whether a control token gives control here is the origin's to say: hear it
            // (a heartbeat comes every second) before the first viewer is let in.
            let heard = self.input.clone();
            let t0 = tokio::time::Instant::now();
            while heard.as_ref().is_some_and(|i| !i.heard()) && t0.elapsed() < HEAR_ORIGIN_WITHIN {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let router = self.router(local, tls.is_some(), sessions.clone(), seat, stopping);
        let served = axum::serve(
            accepting,
            router.into_make_service_with_connect_info::<Conn>(),
        )
        .with_graceful_shutdown(stop_on(shutdown, stop_tx))
        .await;
        // WebSocket sessions run outside axum's connections once upgraded: wait for
        // them (each sends its Close and lets go of the control seat).
        sessions.close();
        if tokio::time::timeout(SESSIONS_END_WITHIN, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions did not end in time");
        }
        if let Some(input) = input {
            // Releases what a controller still holds, and waits until the desktop saw it.
            let _ = tokio::task::spawn_blocking(move || input.stop()).await;
        }
        served
    }

    /// The one control seat: whatever the controller held is let go of on every
    /// handover.
    fn seat(&self) -> Arc<control::Seat> {
        let handover_input = self.input.clone();
        Arc::new(control::Seat::new(
            self.config.handoff_idle,
            Box::new(move || {
                if let Some(input) = &handover_input {
                    input.release_all();
                }
            }),
        ))
    }

    /// Starts publishing to NATS (an origin) or taking from it (a relay).
    fn start_nats(&mut self, seat: &Arc<control::Seat>, stopping: &watch::Receiver<bool>) {
        match self.nats.take() {
            None => {}
            Some(NatsSide::Origin(client, subjects)) => {
                let relay_control = self.config.nats.as_ref().is_some_and(|n| n.relay_control);
                let control = self.input.clone().filter(|_| relay_control).map(|input| {
                    nats::origin::Control {
                        input,
                        seat: seat.clone(),
                    }
                });
                let (pipeline, stopping) = (self.pipeline.clone(), stopping.clone());
                tokio::spawn(nats::origin::run(
                    client,
                    subjects,
                    pipeline,
                    control,
                    self.cursor.clone(),
                    stopping,
                ));
            }
            Some(NatsSide::Relay(link)) => {
                tokio::spawn(nats::relay::run(link, stopping.clone()));
            }
        }
    }

    fn router(
        self,
        local: SocketAddr,
        tls: bool,
        sessions: TaskTracker,
        seat: Arc<control::Seat>,
        stopping: watch::Receiver<bool>,
    ) -> axum::Router {
        let metrics = Arc::new(metrics::Metrics::new(
            self.pipeline.stats(),
            self.pipeline.source_state(),
        ));
        let state = http::AppState {
            pipeline: self.pipeline,
            input: self.input,
            cursor: self.cursor,
            seat,
            stopping,
            sessions,
            viewers: limits::Viewers::new(self.config.max_clients),
            max_input_rate: self.config.max_input_rate,
            quality: self.config.quality,
            clipboard: self.clipboard,
            view_clipboard: self.config.view_clipboard,
            monitors: self.monitors,
            metrics: metrics.clone(),
        };
        let guard = http::Guard::new(&self.config, local, tls, http::CSP_SCRIPT_HASHES)
            .with_metrics(metrics);
        http::router(state, Arc::new(guard))
    }
}

/// How long a relay waits for the origin's first heartbeat before it serves.
const HEAR_ORIGIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// How long sessions get to end at shutdown.
const SESSIONS_END_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for `shutdown`, then tells the long-lived streams to end.
async fn stop_on(shutdown: impl Future<Output = ()>, stop_tx: watch::Sender<bool>) {
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
}

/// The whole server: loads TLS, opens the source, listens on `--bind`/`--port`,
/// prints the URLs, and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let tls = config
        .tls
        .as_ref()
        .map(|source| tls::load(source, config.bind, &config.allow_hosts))
        .transpose()?;
    let app = if config.relay {
        App::relay(&config).await?
    } else {
        App::new(&config)?.publish_to_nats().await?
    };
    let listener = TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    announce::announce(&config, addr, tls.as_ref());
    app.serve(listener, tls, shutdown)
        .await
        .context("server failed")?;
    Ok(())
}
