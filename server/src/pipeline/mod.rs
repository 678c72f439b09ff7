//! ONE capture thread and a small encoder pool shared by every viewer.
//!
//! Each tick the capture thread asks the source what changed (XDamage), captures only
//! that, confirms it with a tile compare against the kept picture ([`crate::tiles`]),
//! and decides what to send ([`plan`]): nothing, a few rectangles, or one full frame;
//! plus a sharper refresh of tiles that went still. The pieces go to the encoder pool
//! ([`crate::encode::Pool`]) while the thread moves on to the next capture (three
//! shared-memory segments take turns), and are published as one [`Update`] to every
//! `/ws` viewer ([`viewer`]). Keyframes for viewers who join or fall behind, and
//! whole-screen JPEGs for MJPEG readers, are encoded from the kept picture only when
//! someone needs them.
//!
//! The thread sleeps while nobody watches; a capture error skips the tick (logged at
//! most once a second). A source that is gone for good ([`FrameSource::lost`]) is
//! replaced by a placeholder frame ([`crate::capture::Placeholder`]) and re-opened
//! every second, also while idle ([`SourceState`]).

mod engine;
mod plan;
mod relayed;
mod viewer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use crate::capture::{FrameSource, Geometry};
use crate::encode::Pool;
use crate::error::StartError;
use engine::Engine;

pub use plan::{FULL_FRAME_PERCENT, REFRESH_AFTER, REFRESH_QUALITY};
pub use relayed::{Incoming, Inlet, Interest, Relayed};
pub use viewer::{Keyframe, Update, Viewer, Whole, WholeViewer};

/// Whether the source delivers frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// It does.
    Up,
    /// It is gone (the X server died, the camera was unplugged): what happened. Viewers
    /// get a placeholder frame; the pipeline re-opens the source every second.
    Down(String),
}

impl SourceState {
    /// Whether the source delivers.
    pub fn is_up(&self) -> bool {
        matches!(self, SourceState::Up)
    }
}

/// Opens the source anew after it was lost.
pub type Reopen = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, StartError> + Send>;

/// Updates kept for viewers that are a little behind; one further back gets a keyframe.
const BACKLOG: usize = 64;

/// Counters the pipeline keeps; read by tests, benchmarks, logs and `/metrics`.
#[derive(Debug)]
pub struct Stats {
    /// Ticks the pipeline looked for changes.
    pub ticks: AtomicU64,
    /// Captures made (a still screen makes none).
    pub captures: AtomicU64,
    /// Updates published to `/ws` viewers.
    pub published: AtomicU64,
    /// Keyframes encoded for viewers who joined or fell behind.
    pub keyframes: AtomicU64,
    /// Whole-screen JPEGs encoded for MJPEG readers.
    pub wholes: AtomicU64,
    /// Captures in which no tile really changed.
    pub unchanged: AtomicU64,
    /// Captures or encodes that failed.
    pub errors: AtomicU64,
    /// Bytes of all published updates.
    pub bytes: AtomicU64,
    /// Whether the capture loop is running (someone watches).
    pub running: AtomicBool,
    /// Last input `seq` applied to the desktop; stamped into each frame header.
    pub input_seq: AtomicU64,
    /// How long captures take, seconds.
    pub capture_seconds: prometheus_client::metrics::histogram::Histogram,
    /// How long an update takes to encode, seconds.
    pub encode_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ticks: AtomicU64::default(),
            captures: AtomicU64::default(),
            published: AtomicU64::default(),
            keyframes: AtomicU64::default(),
            wholes: AtomicU64::default(),
            unchanged: AtomicU64::default(),
            errors: AtomicU64::default(),
            bytes: AtomicU64::default(),
            running: AtomicBool::default(),
            input_seq: AtomicU64::default(),
            capture_seconds: crate::metrics::timing_histogram(),
            encode_seconds: crate::metrics::timing_histogram(),
        }
    }
}

struct State {
    /// `/ws` viewers.
    viewers: usize,
    /// `/video_feed` and `/snapshot.jpg` readers.
    whole_viewers: usize,
    shutdown: bool,
    /// Input was just applied: capture soon instead of waiting out the tick.
    kicked: bool,
    /// A viewer waits for a keyframe.
    key_wanted: bool,
    /// A whole-screen reader joined.
    whole_wanted: bool,
    /// An update is being encoded (updates are published in order, one at a time).
    update_in_flight: bool,
    key_in_flight: bool,
    whole_in_flight: bool,
    /// An update failed to encode: the next one is a full frame for everyone.
    resync: bool,
    /// Viewers behind the stream wait for these, each encoded for that viewer alone.
    catch_ups: Vec<viewer::CatchUp>,
    /// The source is to be opened again (another monitor was picked).
    reopen_wanted: bool,
}

/// Shortest gap between two captures when input asks for an early one. Short: when
/// the app has not repainted yet, the engine keeps looking (see [`FOLLOW_FOR`]).
const MIN_KICK_GAP: Duration = Duration::from_millis(8);

/// After input, how long the engine keeps looking for the app's repaint when the early
/// capture found nothing changed yet, and how often it looks (a damage query, not a
/// capture: cheap).
const FOLLOW_FOR: Duration = Duration::from_millis(80);
const FOLLOW_EVERY: Duration = Duration::from_millis(2);

/// Lets the input thread ask for an early capture, so a click shows up sooner.
#[derive(Clone)]
pub struct Kicker(Arc<Shared>);

impl Kicker {
    /// Requests a capture as soon as the frame-rate cap allows a little slack.
    pub fn kick(&self) {
        self.0.lock().kicked = true;
        self.0.wake.notify_all();
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stats: Arc<Stats>,
    updates: broadcast::Sender<Arc<Update>>,
    keyframe: watch::Sender<Option<Arc<Keyframe>>>,
    whole: watch::Sender<Option<Arc<Whole>>>,
    /// `seq` of the newest update (published or being encoded).
    latest: AtomicU64,
    /// The input `seq` the newest published update shows: sessions send the update
    /// that answers input even when their window is full.
    answered: watch::Sender<u64>,
    /// Bumped each time the pipeline goes idle: deliveries from before are dropped.
    epoch: AtomicU64,
    /// The stream's JPEG quality (`--quality`).
    quality: u8,
    /// Whether the source delivers.
    source: watch::Sender<SourceState>,
    /// Where the source's pixels sit on the desktop, as it changes (a resize).
    geometry: watch::Sender<Geometry>,
    /// Frames arrive encoded (a relay): viewers get them as they are, at any quality.
    passthrough: bool,
}

impl Shared {
    fn new(quality: u8, geometry: Geometry, passthrough: bool) -> Self {
        Shared {
            state: Mutex::new(State {
                viewers: 0,
                whole_viewers: 0,
                shutdown: false,
                kicked: false,
                key_wanted: false,
                whole_wanted: false,
                update_in_flight: false,
                key_in_flight: false,
                whole_in_flight: false,
                resync: false,
                catch_ups: Vec::new(),
                reopen_wanted: false,
            }),
            wake: Condvar::new(),
            stats: Arc::new(Stats::default()),
            updates: broadcast::channel(BACKLOG).0,
            keyframe: watch::channel(None).0,
            whole: watch::channel(None).0,
            latest: AtomicU64::new(0),
            answered: watch::channel(0).0,
            epoch: AtomicU64::new(0),
            quality: quality.clamp(1, 100),
            source: watch::channel(SourceState::Up).0,
            geometry: watch::channel(geometry).0,
            passthrough,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock leaves plain flags behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn latest(&self) -> u64 {
        self.latest.load(Ordering::SeqCst)
    }

    fn want_keyframe(&self) {
        self.lock().key_wanted = true;
        self.wake.notify_all();
    }

    /// Clears an in-flight flag and wakes the capture thread.
    fn done(&self, flag: impl FnOnce(&mut State)) {
        flag(&mut self.lock());
        self.wake.notify_all();
    }
}

/// The shared pipeline. Dropping it stops the threads.
pub struct Pipeline {
    shared: Arc<Shared>,
    desktop: bool,
    backend: &'static str,
    /// The cursor drawn into whole frames, if any.
    cursor: Option<Arc<crate::cursor::Watcher>>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the (idle) pipeline around `source`: a capture thread and the encoder pool.
    ///
    /// With `cursor`, whole frames (`/video_feed`, `/snapshot.jpg`) have the remote
    /// cursor drawn in.
    pub fn start(
        source: Box<dyn FrameSource>,
        fps: u32,
        quality: u8,
        cursor: Option<Arc<crate::cursor::Watcher>>,
    ) -> Result<Self, StartError> {
        Self::start_reopening(source, None, fps, quality, cursor)
    }

    /// [`Pipeline::start`] for a source that can be lost: `reopen` opens it anew.
    pub fn start_reopening(
        source: Box<dyn FrameSource>,
        reopen: Option<Reopen>,
        fps: u32,
        quality: u8,
        cursor: Option<Arc<crate::cursor::Watcher>>,
    ) -> Result<Self, StartError> {
        let pool = Pool::new(quality)?;
        let geometry = source.geometry();
        let desktop = source.is_desktop();
        let backend = source.backend();
        let shared = Arc::new(Shared::new(quality, geometry, false));
        let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
        let engine_cursor = cursor.clone();
        let thread_shared = shared.clone();
        let quality = quality.clamp(1, 100);
        let thread = std::thread::Builder::new()
            .name("deskcast-capture".into())
            .spawn(move || {
                let mut engine = Engine::new(&thread_shared, source, pool, quality, engine_cursor);
                engine.reopen = reopen;
                engine.run(period);
            })?;
        tracing::info!(
            backend,
            workers = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4),
            "pipeline ready"
        );
        Ok(Pipeline {
            shared,
            desktop,
            backend,
            cursor,
            thread: Some(thread),
        })
    }

    /// A pipeline fed with frames encoded elsewhere (a relay's, by the origin over
    /// NATS), at `geometry` until a keyframe says otherwise. What arrives goes into the
    /// [`Inlet`]; what the viewers here want comes out as [`Interest`].
    pub fn relayed(
        geometry: Geometry,
    ) -> Result<(Self, Inlet, watch::Receiver<Interest>), StartError> {
        let shared = Arc::new(Shared::new(100, geometry, true));
        let (inlet, rx) = relayed::Feeder::inlet(&shared);
        let (interest, wants) = watch::channel(Interest::default());
        let mut feeder = relayed::Feeder::new(shared.clone(), rx, interest, geometry);
        let thread = std::thread::Builder::new()
            .name("deskcast-relay".into())
            .spawn(move || feeder.run())?;
        let pipeline = Pipeline {
            shared,
            desktop: true,
            backend: "relay",
            cursor: None,
            thread: Some(thread),
        };
        Ok((pipeline, inlet, wants))
    }

    /// Every update the pipeline publishes, as it is (no catch-ups), and its keyframes
    /// on request: what an origin sends on to relays. The pipeline runs while it lives.
    pub fn feed(&self) -> Feed {
        let updates = self.shared.updates.subscribe();
        let keyframes = self.shared.keyframe.subscribe();
        self.shared.lock().viewers += 1;
        self.shared.wake.notify_all();
        Feed {
            shared: self.shared.clone(),
            updates,
            keyframes,
        }
    }

    /// Subscribes a `/ws` viewer; the pipeline runs while at least one viewer exists.
    /// Its first frame is a keyframe.
    pub fn subscribe(&self) -> Viewer {
        // Subscribe first, then read the newest update: every later update is in this
        // receiver, and the first keyframe includes everything before.
        let updates = self.shared.updates.subscribe();
        let keyframes = self.shared.keyframe.subscribe();
        let min_cover = self.shared.latest();
        self.shared.lock().viewers += 1;
        self.shared.wake.notify_all();
        Viewer {
            shared: self.shared.clone(),
            updates,
            keyframes,
            at: None,
            min_cover,
            lossy: Vec::new(),
            lossy_since: None,
            pending: None,
        }
    }

    /// Subscribes a whole-screen JPEG reader (`/video_feed`, `/snapshot.jpg`).
    pub fn subscribe_whole(&self) -> WholeViewer {
        let mut whole = self.shared.whole.subscribe();
        let mut st = self.shared.lock();
        st.whole_viewers += 1;
        // The drawn cursor must be where the pointer is now, too.
        let g = self.geometry();
        let cursor = self.cursor.as_ref().and_then(|c| {
            c.current()
                .drawn_at((g.x, g.y), g.width, g.height)
                .map(|(s, at)| (s.serial, at))
        });
        let current = whole
            .borrow()
            .as_ref()
            .is_some_and(|w| w.covers == self.shared.latest() && w.cursor == cursor);
        if current {
            whole.mark_changed();
        } else {
            st.whole_wanted = true;
        }
        drop(st);
        self.shared.wake.notify_all();
        WholeViewer {
            shared: self.shared.clone(),
            whole,
        }
    }

    /// The input `seq` shown by the newest published update, as it changes.
    pub fn answered(&self) -> watch::Receiver<u64> {
        self.shared.answered.subscribe()
    }

    /// A handle the input thread uses to ask for an early capture.
    pub fn kicker(&self) -> Kicker {
        Kicker(self.shared.clone())
    }

    /// Opens the source again soon (its reopen function now opens another monitor);
    /// viewers follow the new geometry.
    pub fn reopen_soon(&self) {
        self.shared.lock().reopen_wanted = true;
        self.shared.wake.notify_all();
    }

    /// Whether the source delivers, as it changes.
    pub fn source_state(&self) -> watch::Receiver<SourceState> {
        self.shared.source.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Where the streamed image sits on the desktop now.
    pub fn geometry(&self) -> Geometry {
        *self.shared.geometry.borrow()
    }

    /// Where the streamed image sits, as it changes (the screen was resized).
    pub fn geometry_watch(&self) -> watch::Receiver<Geometry> {
        self.shared.geometry.subscribe()
    }

    /// Whether the source is a desktop that takes input.
    pub fn is_desktop(&self) -> bool {
        self.desktop
    }

    /// How the source captures (`x11-shm+damage`, `x11-getimage`, `xcap`, `pattern`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Number of live viewers of either kind.
    pub fn viewers(&self) -> usize {
        let st = self.shared.lock();
        st.viewers + st.whole_viewers
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A subscription to every published update; see [`Pipeline::feed`].
pub struct Feed {
    shared: Arc<Shared>,
    /// The updates, in order.
    pub updates: broadcast::Receiver<Arc<Update>>,
    /// The newest keyframe, as it changes.
    pub keyframes: watch::Receiver<Option<Arc<Keyframe>>>,
}

impl Feed {
    /// Asks for a keyframe of the current picture (it comes on [`Feed::keyframes`]).
    pub fn want_keyframe(&self) {
        self.shared.want_keyframe();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.viewers = st.viewers.saturating_sub(1);
    }
}

/// Capture credit: refills at the frame rate up to one spare capture; each capture
/// spends one. A capture may start once the credit is back to zero or more.
struct Credit {
    fps: f64,
    level: f64,
    at: Instant,
}

impl Credit {
    fn new(fps: f64) -> Self {
        Credit {
            fps,
            level: 1.0,
            at: Instant::now(),
        }
    }

    fn level_at(&self, now: Instant) -> f64 {
        (self.level + now.saturating_duration_since(self.at).as_secs_f64() * self.fps).min(1.0)
    }

    fn spend(&mut self, now: Instant) {
        self.level = self.level_at(now) - 1.0;
        self.at = now;
    }

    /// When the credit is back to zero.
    fn ready_at(&self, now: Instant) -> Instant {
        let level = self.level_at(now);
        if level >= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(-level / self.fps)
        }
    }
}

#[cfg(test)]
mod tests;
