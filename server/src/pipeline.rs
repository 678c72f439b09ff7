//! ONE capture+encode thread shared by every viewer; the latest frame is published
//! through a `watch` channel, so a slow viewer skips frames instead of queueing them.
//!
//! The thread sleeps while nobody watches, skips frames identical to the last one,
//! and treats a capture error as a skipped frame (logged at most once a second).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deskcast_shared::{FrameHeader, FRAME_HEADER_LEN};
use tokio::sync::watch;

use crate::capture::{FrameSource, Geometry, RawFrame};
use crate::encode::Encoder;
use crate::error::StartError;

/// One encoded frame, ready to send to any number of viewers.
#[derive(Debug)]
pub struct Frame {
    /// The header sent in front of the JPEG on `/ws`.
    pub header: FrameHeader,
    /// The complete JPEG (a view into `ws_message`, no copy).
    pub jpeg: Bytes,
    /// Header + JPEG: the `/ws` binary message, built once for all viewers.
    pub ws_message: Bytes,
}

/// Counters the pipeline keeps; read by tests, benchmarks and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Captures attempted.
    pub captures: AtomicU64,
    /// Frames encoded and published.
    pub published: AtomicU64,
    /// Captures identical to the previous one, not encoded.
    pub unchanged: AtomicU64,
    /// Captures that failed.
    pub errors: AtomicU64,
    /// Whether the capture loop is running (someone watches).
    pub running: AtomicBool,
    /// Last input `seq` applied to the desktop; stamped into each frame header.
    pub input_seq: AtomicU64,
}

struct State {
    viewers: usize,
    shutdown: bool,
    /// Input was just applied: capture soon instead of waiting out the tick.
    kicked: bool,
}

/// Shortest gap between two captures when input asks for an early one (the app needs a
/// moment to repaint).
const MIN_KICK_GAP: Duration = Duration::from_millis(8);

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
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock leaves plain counters behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The shared pipeline. Dropping it stops the thread.
pub struct Pipeline {
    shared: Arc<Shared>,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    geometry: Geometry,
    desktop: bool,
    thread: Option<JoinHandle<()>>,
}

/// A viewer's subscription. While it lives, the pipeline runs.
pub struct Viewer {
    shared: Arc<Shared>,
    frames: watch::Receiver<Option<Arc<Frame>>>,
}

impl Pipeline {
    /// Starts the (idle) pipeline thread around `source`.
    pub fn start(source: Box<dyn FrameSource>, fps: u32, quality: u8) -> Result<Self, StartError> {
        let encoder = Encoder::new(quality)?;
        let geometry = source.geometry();
        let desktop = source.is_desktop();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                viewers: 0,
                shutdown: false,
                kicked: false,
            }),
            wake: Condvar::new(),
            stats: Arc::new(Stats::default()),
        });
        let (tx, frames) = watch::channel(None);
        let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("deskcast-capture".into())
            .spawn(move || capture_loop(&thread_shared, source, encoder, period, &tx))?;
        Ok(Pipeline {
            shared,
            frames,
            geometry,
            desktop,
            thread: Some(thread),
        })
    }

    /// Subscribes a viewer; the pipeline runs while at least one exists.
    pub fn subscribe(&self) -> Viewer {
        let mut frames = self.frames.clone();
        frames.mark_changed();
        self.shared.lock().viewers += 1;
        self.shared.wake.notify_all();
        Viewer {
            shared: self.shared.clone(),
            frames,
        }
    }

    /// A handle the input thread uses to ask for an early capture.
    pub fn kicker(&self) -> Kicker {
        Kicker(self.shared.clone())
    }

    /// The counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Where the streamed image sits on the desktop.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Whether the source is a desktop that takes input.
    pub fn is_desktop(&self) -> bool {
        self.desktop
    }

    /// Number of live viewers.
    pub fn viewers(&self) -> usize {
        self.shared.lock().viewers
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

impl Viewer {
    /// Waits for a frame newer than the last one this viewer took; the current one first.
    ///
    /// Returns `None` once the pipeline has shut down.
    pub async fn next(&mut self) -> Option<Arc<Frame>> {
        loop {
            self.frames.changed().await.ok()?;
            if let Some(frame) = self.frames.borrow_and_update().clone() {
                return Some(frame);
            }
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.viewers = st.viewers.saturating_sub(1);
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Logs repeated failures at most once a second, with a count of the ones it held back.
struct RateLimitedLog {
    last: Option<Instant>,
    held: u64,
}

impl RateLimitedLog {
    fn error(&mut self, what: &str, cause: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.held += 1;
            return;
        }
        tracing::warn!(cause = %cause, suppressed = self.held, "{what}; frame skipped");
        self.last = Some(now);
        self.held = 0;
    }
}

fn capture_loop(
    shared: &Shared,
    mut source: Box<dyn FrameSource>,
    mut encoder: Encoder,
    period: Duration,
    tx: &watch::Sender<Option<Arc<Frame>>>,
) {
    let stats = &shared.stats;
    let mut last: Option<RawFrame> = None;
    let mut seq = 0u64;
    let mut log = RateLimitedLog {
        last: None,
        held: 0,
    };
    let mut credit = Credit::new(1.0 / period.as_secs_f64());
    loop {
        {
            let mut st = shared.lock();
            if st.viewers == 0 && !st.shutdown {
                stats.running.store(false, Ordering::SeqCst);
                // Nobody watches: forget the last frame so a later viewer never sees a stale one.
                tx.send_replace(None);
                last = None;
                tracing::debug!("pipeline idle");
                while st.viewers == 0 && !st.shutdown {
                    st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                tracing::debug!("pipeline running");
            }
            if st.shutdown {
                stats.running.store(false, Ordering::SeqCst);
                return;
            }
            stats.running.store(true, Ordering::SeqCst);
        }
        let started = Instant::now();
        let input_seq = stats.input_seq.load(Ordering::SeqCst);
        let capture_us = now_us();
        stats.captures.fetch_add(1, Ordering::Relaxed);
        match source.capture() {
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                log.error("capture failed", &e);
            }
            Ok(raw) if last.as_ref() == Some(&raw) => {
                stats.unchanged.fetch_add(1, Ordering::Relaxed);
            }
            Ok(raw) => match encoder.encode(&raw) {
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    log.error("encode failed", &e);
                }
                Ok(jpeg) => {
                    seq += 1;
                    let header = FrameHeader {
                        seq,
                        capture_us,
                        input_seq,
                        x: 0,
                        y: 0,
                        width: raw.width,
                        height: raw.height,
                    };
                    // One buffer per frame: the JPEG is a view into the /ws message.
                    let ws_message = Bytes::from(header.encode_with(&jpeg));
                    let jpeg = ws_message.slice(FRAME_HEADER_LEN..);
                    tx.send_replace(Some(Arc::new(Frame {
                        header,
                        jpeg,
                        ws_message,
                    })));
                    stats.published.fetch_add(1, Ordering::Relaxed);
                    last = Some(raw);
                }
            },
        }
        // Sleep out the rest of the tick, waking early on shutdown, or on input (a click
        // shows up without waiting for the next tick). Early captures spend credit that
        // refills at the frame rate, so input never pushes the rate above --fps for
        // longer than one frame.
        credit.spend(started);
        let mut st = shared.lock();
        while !st.shutdown {
            let now = Instant::now();
            let allowed = credit.ready_at(now);
            let regular = (started + period).max(allowed);
            let early = (started + MIN_KICK_GAP.min(period)).max(allowed);
            if now >= regular || (st.kicked && now >= early) {
                st.kicked = false;
                break;
            }
            let until = if st.kicked { early } else { regular };
            st = shared
                .wake
                .wait_timeout(st, until.saturating_duration_since(now))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
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
mod tests {
    use super::*;
    use crate::capture::PatternSource;
    use crate::error::CaptureError;

    /// Fails every other capture, like xcap while the screen changes mode.
    struct Flaky(PatternSource, u32);

    impl FrameSource for Flaky {
        fn geometry(&self) -> Geometry {
            self.0.geometry()
        }
        fn is_desktop(&self) -> bool {
            false
        }
        fn capture(&mut self) -> Result<RawFrame, CaptureError> {
            self.1 += 1;
            if self.1.is_multiple_of(2) {
                Err(CaptureError("screen changed mid-capture".into()))
            } else {
                self.0.capture()
            }
        }
    }

    /// Always returns the same image: nothing to send after the first frame.
    struct Still(RawFrame);

    impl FrameSource for Still {
        fn geometry(&self) -> Geometry {
            Geometry {
                x: 0,
                y: 0,
                width: self.0.width,
                height: self.0.height,
            }
        }
        fn is_desktop(&self) -> bool {
            false
        }
        fn capture(&mut self) -> Result<RawFrame, CaptureError> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn credit_allows_one_early_capture_then_holds_the_rate() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut c = Credit {
            fps: 10.0,
            level: 1.0,
            at: t0,
        };
        c.spend(ms(0));
        assert_eq!(
            c.ready_at(ms(10)),
            ms(10),
            "a spare capture is there after idling"
        );
        c.spend(ms(10));
        // Now one capture behind: the next may start only when a whole period has refilled.
        let ready = c.ready_at(ms(10));
        assert!(ready >= ms(100) && ready <= ms(101), "{:?}", ready - t0);
        // Idle again: back to one spare capture, never more.
        assert_eq!(c.ready_at(ms(5000)), ms(5000));
        assert!((c.level_at(ms(5000)) - 1.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn capture_errors_skip_frames_and_the_stream_goes_on() {
        let source = Flaky(PatternSource::new(64, 48), 0);
        let pipeline = Pipeline::start(Box::new(source), 100, 80).expect("start");
        let mut viewer = pipeline.subscribe();
        let mut last = 0;
        for _ in 0..6 {
            let frame = tokio::time::timeout(Duration::from_secs(5), viewer.next())
                .await
                .expect("frames keep coming")
                .expect("pipeline alive");
            assert!(frame.header.seq > last);
            last = frame.header.seq;
        }
        assert!(
            pipeline.stats().errors.load(Ordering::SeqCst) >= 5,
            "errors were counted"
        );
    }

    #[tokio::test]
    async fn an_unchanged_screen_is_not_encoded_or_sent_again() {
        let pattern = PatternSource::new(64, 48).capture().expect("capture");
        let pipeline = Pipeline::start(Box::new(Still(pattern)), 100, 80).expect("start");
        let stats = pipeline.stats();
        let mut viewer = pipeline.subscribe();
        let first = viewer.next().await.expect("first frame");
        assert_eq!(first.header.seq, 1);
        let again = tokio::time::timeout(Duration::from_millis(300), viewer.next()).await;
        assert!(again.is_err(), "no second frame for a still screen");
        assert!(
            stats.captures.load(Ordering::SeqCst) >= 10,
            "it kept looking"
        );
        assert_eq!(
            stats.published.load(Ordering::SeqCst),
            1,
            "but encoded once"
        );
        // A viewer who joins now still gets the current frame at once.
        let mut late = pipeline.subscribe();
        let frame = tokio::time::timeout(Duration::from_secs(1), late.next()).await;
        assert_eq!(frame.expect("immediate").expect("frame").header.seq, 1);
    }
}
