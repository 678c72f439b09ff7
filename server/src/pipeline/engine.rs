//! The capture thread: each tick, what changed (damage, then the tile compare), what
//! to send (a few rectangles or a full frame, in motion or sharp), handed to the encoder
//! pool; between ticks, keyframes, whole frames and viewers' catch-ups, encoded from the
//! kept picture only when someone needs them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deskcast_shared::{
    FrameHeader, FLAG_FILL, FLAG_KEY, FLAG_LAST, FLAG_REFRESH, FRAME_HEADER_LEN,
};
use tokio::sync::{oneshot, watch};

use super::{
    plan, viewer, Credit, Keyframe, Reopen, Shared, SourceState, State, Update, Whole,
    FOLLOW_EVERY, FOLLOW_FOR, MIN_KICK_GAP, REFRESH_QUALITY,
};

/// How often a lost source is re-opened, and an idle one checked.
const RETRY_EVERY: Duration = Duration::from_secs(1);
use crate::capture::{Damage, FrameSource, Geometry, PixelData, Pixels, Placeholder, Rect};
use crate::cursor;
use crate::encode::{Piece, Pool};
use crate::error::CaptureError;
use crate::tiles::{Picture, TileSet};

/// Now, in microseconds since the Unix epoch (the frame header's clock).
pub(super) fn now_us() -> u64 {
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

/// What the capture thread woke up for.
struct Wake {
    /// A capture tick is due.
    capture: bool,
    /// Input asked for it.
    kicked: bool,
}

/// The capture thread's own state: the source, the kept picture, the refresh clock.
pub(super) struct Engine<'a> {
    shared: &'a Arc<Shared>,
    source: Box<dyn FrameSource>,
    pool: Pool,
    quality: u8,
    width: u32,
    height: u32,
    /// The last captured picture; `None` until the first capture after a start.
    picture: Option<Picture>,
    /// Lossy and moving tiles.
    tiles: plan::Tiles,
    /// Sequence number of the last update.
    seq: u64,
    /// Sequence number of the last update that changed the picture (not a refresh).
    changed_seq: u64,
    /// Sequence number of the last full-frame update (it is also a keyframe).
    key_seq: u64,
    log: RateLimitedLog,
    credit: Credit,
    /// Draws the cursor into whole frames, when set.
    cursor: Option<Arc<cursor::Watcher>>,
    /// Subscribed while whole frames are served (so the watcher idles otherwise).
    cursor_rx: Option<watch::Receiver<cursor::State>>,
    /// Where the streamed monitor starts on the root window.
    origin: (i32, i32),
    /// Until when to look for damage every [`FOLLOW_EVERY`] after input.
    follow_until: Option<Instant>,
    /// Tiles in motion held back from an update that answered input, for the next one.
    deferred: TileSet,
    /// The input `seq` the last update showed.
    shown_input: u64,
    /// Opens the source anew once it is lost; `None`: it cannot be lost.
    pub(super) reopen: Option<Reopen>,
    /// While the source is lost: when to try to re-open it next.
    down: Option<Instant>,
    /// What the source was before a placeholder replaced it.
    desktop: bool,
    /// The newest update of a source whose JPEGs are passed through.
    passed: Option<Arc<Update>>,
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        shared: &'a Arc<Shared>,
        source: Box<dyn FrameSource>,
        pool: Pool,
        quality: u8,
        cursor: Option<Arc<cursor::Watcher>>,
    ) -> Self {
        let g = source.geometry();
        let desktop = source.is_desktop();
        Engine {
            shared,
            source,
            pool,
            quality,
            width: g.width,
            height: g.height,
            picture: None,
            tiles: plan::Tiles::new(g.width, g.height),
            seq: 0,
            changed_seq: 0,
            key_seq: 0,
            log: RateLimitedLog {
                last: None,
                held: 0,
            },
            credit: Credit::new(1.0),
            cursor,
            cursor_rx: None,
            origin: (g.x, g.y),
            follow_until: None,
            deferred: TileSet::new(g.width, g.height),
            shown_input: 0,
            reopen: None,
            down: None,
            desktop,
            passed: None,
        }
    }

    /// After a failure, or once a second while idle: whether the source is gone; if
    /// so, a placeholder takes its place.
    fn check_lost(&mut self) {
        if self.down.is_some() || self.reopen.is_none() {
            return;
        }
        let Some(why) = self.source.lost() else {
            return;
        };
        tracing::error!("{why}; showing a placeholder and retrying every second");
        let g = Geometry {
            x: self.origin.0,
            y: self.origin.1,
            width: self.width,
            height: self.height,
        };
        let detail = format!("{why} - retrying every second");
        self.source = Box::new(Placeholder::new(g, self.desktop, "NO SIGNAL", &detail));
        self.picture = None;
        self.passed = None;
        // The last picture is stale now: a snapshot or a joining viewer waits for the
        // placeholder instead of getting it.
        self.shared.whole.send_replace(None);
        self.shared.keyframe.send_replace(None);
        self.down = Some(Instant::now() + RETRY_EVERY);
        self.shared.source.send_replace(SourceState::Down(why));
        self.shared.lock().kicked = true;
    }

    /// Takes `source` (opened anew) in place of the current one, following its
    /// geometry if that changed; the next update is a full frame.
    fn adopt(&mut self, source: Box<dyn FrameSource>) {
        let g = source.geometry();
        let now = Geometry {
            x: self.origin.0,
            y: self.origin.1,
            width: self.width,
            height: self.height,
        };
        if g != now {
            tracing::info!(
                "the source is now {}x{}+{}+{} (was {}x{})",
                g.width,
                g.height,
                g.x,
                g.y,
                self.width,
                self.height
            );
            self.width = g.width;
            self.height = g.height;
            self.origin = (g.x, g.y);
            self.tiles = plan::Tiles::new(g.width, g.height);
            self.deferred = TileSet::new(g.width, g.height);
            // Nothing of the old size goes out any more.
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
            self.shared.keyframe.send_replace(None);
            self.shared.whole.send_replace(None);
            self.shared.lock().catch_ups.clear();
            self.shared.geometry.send_replace(g);
        }
        self.source = source;
        self.picture = None;
        self.passed = None;
        self.shared.lock().kicked = true;
    }

    /// The screen changed size: open it again at the new one.
    fn reshape(&mut self) {
        let Some(reopen) = self.reopen.as_mut() else {
            return;
        };
        match reopen() {
            Ok(source) => self.adopt(source),
            Err(e) => {
                self.log.error("cannot open the resized screen", &e);
                self.check_lost();
            }
        }
    }

    /// While the source is lost, once a second: tries to open it again.
    fn retry(&mut self) {
        let Some(at) = self.down else { return };
        let Some(reopen) = self.reopen.as_mut() else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.down = Some(Instant::now() + RETRY_EVERY);
        match reopen() {
            Ok(source) => {
                tracing::info!(backend = source.backend(), "the source is back");
                self.adopt(source);
                self.down = None;
                self.shared.source.send_replace(SourceState::Up);
            }
            Err(e) => tracing::debug!(cause = %e, "the source is still gone"),
        }
    }

    pub(super) fn run(&mut self, period: Duration) {
        self.credit = Credit::new(1.0 / period.as_secs_f64());
        let mut last_capture = Instant::now() - period;
        loop {
            self.retry();
            let Some(wake) = self.wait(period, last_capture) else {
                return;
            };
            if wake.capture {
                last_capture = Instant::now();
                let captures = self.shared.stats.captures.load(Ordering::Relaxed);
                self.tick();
                let captured = self.shared.stats.captures.load(Ordering::Relaxed) != captures;
                if captured {
                    // Only real captures spend credit: damage queries are cheap.
                    self.credit.spend(last_capture);
                    self.follow_until = None;
                } else if wake.kicked {
                    // Input arrived but the app has not repainted yet: keep looking
                    // for its damage every few ms for a while, not a whole period.
                    self.follow_until = Some(last_capture + FOLLOW_FOR);
                }
            }
            self.serve_keyframe();
            self.serve_whole();
            self.serve_catch_ups();
        }
    }

    /// Sleeps until a capture is due, a keyframe or whole frame is wanted, or input
    /// asks for an early capture; idles while nobody watches. `None` on shutdown.
    fn wait(&mut self, period: Duration, last: Instant) -> Option<Wake> {
        let shared = self.shared;
        let stats = &shared.stats;
        let mut st = shared.lock();
        loop {
            if st.shutdown {
                stats.running.store(false, Ordering::SeqCst);
                return None;
            }
            if st.viewers + st.whole_viewers == 0 {
                stats.running.store(false, Ordering::SeqCst);
                drop(st);
                self.go_idle();
                st = shared.lock();
                while st.viewers + st.whole_viewers == 0 && !st.shutdown {
                    let timeout = if self.reopen.is_some() {
                        RETRY_EVERY
                    } else {
                        Duration::from_secs(3600)
                    };
                    let (guard, waited) = shared
                        .wake
                        .wait_timeout(st, timeout)
                        .unwrap_or_else(|p| p.into_inner());
                    st = guard;
                    if waited.timed_out() {
                        // Nobody watches, but /healthz should still tell the truth.
                        drop(st);
                        self.check_lost();
                        self.retry();
                        st = shared.lock();
                    }
                }
                tracing::debug!("pipeline running");
                continue;
            }
            stats.running.store(true, Ordering::SeqCst);
            let now = Instant::now();
            // Early captures spend credit that refills at the frame rate, so input
            // never pushes the rate above --fps for longer than one frame.
            let allowed = self.credit.ready_at(now);
            let regular = (last + period).max(allowed);
            let early = (last + MIN_KICK_GAP.min(period)).max(allowed);
            let follow = self
                .follow_until
                .filter(|&u| now < u)
                .map(|_| last + FOLLOW_EVERY);
            if now >= regular
                || (st.kicked && now >= early)
                || follow.is_some_and(|f| now >= f)
                || st.reopen_wanted
            {
                let kicked = std::mem::take(&mut st.kicked);
                return Some(Wake {
                    capture: true,
                    kicked,
                });
            }
            let picture = self.picture.is_some();
            if picture
                && ((st.key_wanted && !st.key_in_flight)
                    || (st.whole_wanted && !st.whole_in_flight))
            {
                return Some(Wake {
                    capture: false,
                    kicked: false,
                });
            }
            let mut until = if st.kicked { early } else { regular };
            if let Some(f) = follow {
                until = until.min(f);
            }
            st = shared
                .wake
                .wait_timeout(st, until.saturating_duration_since(now))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Nobody watches: forget the picture, so a later viewer never sees a stale one.
    fn go_idle(&mut self) {
        self.source.pause();
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.picture = None;
        self.passed = None;
        self.tiles = plan::Tiles::new(self.width, self.height);
        self.shared.keyframe.send_replace(None);
        self.shared.whole.send_replace(None);
        let mut st = self.shared.lock();
        st.key_wanted = false;
        st.whole_wanted = false;
        st.catch_ups.clear();
        tracing::debug!("pipeline idle");
    }

    /// One capture tick: what changed, confirmed, sent.
    fn tick(&mut self) {
        if std::mem::take(&mut self.shared.lock().reopen_wanted) {
            self.reshape();
            return;
        }
        if let Some(next) = self.source.jpeg() {
            self.tick_jpeg(next);
            return;
        }
        let stats = self.shared.stats.clone();
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        let input_seq = stats.input_seq.load(Ordering::SeqCst);
        let capture_us = now_us();
        let resync = std::mem::take(&mut self.shared.lock().resync);
        let fresh = self.picture.is_none() || resync;
        let full = Rect::full(self.width, self.height);
        // What may have changed: the areas to capture (whole tiles), and the damage
        // itself, to trim the rectangles sent to what really was drawn.
        let damaged = self.source.damage();
        if self.source.reshaped() {
            self.reshape();
            return;
        }
        let (areas, damage) = match damaged {
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                self.log.error("damage query failed", &e);
                self.check_lost();
                if self.down.is_some() {
                    return;
                }
                (vec![full], None)
            }
            Ok(_) if fresh => (vec![full], None),
            Ok(Damage::All) => (vec![full], None),
            Ok(Damage::Nothing) => (Vec::new(), None),
            Ok(Damage::Rects(rects)) => (
                plan::capture_areas(&rects, self.width, self.height),
                Some(rects),
            ),
        };
        let mut changed = TileSet::new(self.width, self.height);
        let mut captured: Vec<Arc<Pixels>> = Vec::new();
        if !areas.is_empty() {
            stats.captures.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let captured_now = self.source.capture(&areas);
            stats
                .capture_seconds
                .observe(started.elapsed().as_secs_f64());
            let pixels = match captured_now {
                Ok(p) => p,
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.log.error("capture failed", &e);
                    self.check_lost();
                    return;
                }
            };
            if let Some(bad) = pixels
                .iter()
                .find(|p| !p.is_complete() || !full.contains(&p.rect))
            {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "{:?} does not fit the {}x{} screen",
                    bad.rect, self.width, self.height
                );
                self.log.error("capture failed", &why);
                return;
            }
            let Some(layout) = pixels.first().map(|p| p.layout) else {
                return;
            };
            let picture = self
                .picture
                .get_or_insert_with(|| Picture::new(self.width, self.height, layout));
            captured = pixels.into_iter().map(Arc::new).collect();
            for p in &captured {
                picture.update(p, &p.rect, fresh, &mut changed);
            }
            if changed.is_empty() {
                stats.unchanged.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(picture) = self.picture.as_ref() else {
            return;
        };
        let now = Instant::now();
        if !fresh {
            self.tiles.changed(&changed, now);
        }
        let deferred = std::mem::replace(&mut self.deferred, TileSet::new(self.width, self.height));
        // Held-back tiles were damaged before this capture's damage: do not trim to it.
        let damage = if deferred.is_empty() { damage } else { None };
        changed.union(&deferred);
        let key = fresh || plan::is_full(&changed, self.width, self.height);
        if !key && input_seq != self.shown_input {
            // The update that answers input goes first and small: areas in motion (a
            // video) wait for the next update instead of making the input's result
            // cross a slow link behind them.
            let (still, moving) = changed.split(|r| !self.tiles.is_moving(r, now));
            if !still.is_empty() && !moving.is_empty() {
                changed = still;
                self.deferred = moving;
                self.shared.lock().kicked = true;
            }
        }
        self.shown_input = input_seq;
        let refresh = if key {
            TileSet::new(self.width, self.height)
        } else {
            self.tiles.due(&changed, now)
        };
        if changed.is_empty() && refresh.is_empty() {
            return;
        }
        // The first picture after a start is sent sharp at once: a still screen then
        // costs nothing more. Later changes go at the stream quality, lower while in
        // motion, and are refreshed sharp once still.
        let (stream, motion) = (self.quality, plan::motion_quality(self.quality));
        let tiles = &self.tiles;
        let quality = |rect: &Rect| match () {
            _ if fresh => stream.max(REFRESH_QUALITY),
            _ if tiles.is_moving(rect, now) => motion,
            _ => stream,
        };

        // The pieces: what changed, then the refreshes.
        let workers = self.pool.size();
        let mut pieces: Vec<(Arc<Pixels>, Rect, u8, u16)> = Vec::new();
        let mut add = |pixels: &Arc<Pixels>, rect: Rect, quality: u8, flags: u16| {
            for stripe in plan::stripes(rect, workers) {
                pieces.push((pixels.clone(), stripe, quality, flags));
            }
        };
        if key {
            let source = captured
                .iter()
                .find(|p| p.rect == full)
                .cloned()
                .unwrap_or_else(|| Arc::new(picture.copy(full)));
            add(&source, full, quality(&full), FLAG_KEY);
        } else {
            for rect in changed.rects(plan::MAX_RECTS) {
                let rect = match &damage {
                    Some(d) => plan::trim(rect, d),
                    None => rect,
                };
                let source = captured
                    .iter()
                    .find(|p| p.rect.contains(&rect))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(picture.copy(rect)));
                add(&source, rect, quality(&rect), 0);
            }
            for rect in refresh.rects(plan::MAX_RECTS) {
                add(
                    &Arc::new(picture.copy(rect)),
                    rect,
                    REFRESH_QUALITY,
                    FLAG_REFRESH,
                );
            }
        }
        for (_, rect, quality, _) in &pieces {
            self.tiles.sent(rect, *quality, now);
        }
        drop(captured);

        // Updates are published in order: wait for the one before to be encoded.
        {
            let mut st = self.shared.lock();
            while st.update_in_flight && !st.shutdown {
                st = self.shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.update_in_flight = true;
        }
        let prev = self.seq;
        self.seq += 1;
        let seq = self.seq;
        if !changed.is_empty() {
            self.changed_seq = seq;
        }
        if key {
            self.key_seq = seq;
        }
        self.shared.latest.store(seq, Ordering::SeqCst);
        let (pieces, rects) = self.frame(seq, capture_us, input_seq, pieces, true);
        for rect in &rects {
            self.tiles.sent_in(rect, seq);
        }
        self.submit(
            pieces,
            "frame",
            move |shared, messages| {
                let update = Arc::new(Update {
                    seq,
                    prev,
                    key,
                    messages,
                    rects,
                });
                shared.stats.published.fetch_add(1, Ordering::Relaxed);
                shared
                    .stats
                    .bytes
                    .fetch_add(update.bytes() as u64, Ordering::Relaxed);
                if key {
                    shared.keyframe.send_replace(Some(Arc::new(Keyframe {
                        covers: seq,
                        update: update.clone(),
                    })));
                }
                let _ = shared.updates.send(update);
                shared.answered.send_if_modified(|shown| {
                    let newer = input_seq > *shown;
                    if newer {
                        *shown = input_seq;
                    }
                    newer
                });
            },
            |st, ok| {
                st.update_in_flight = false;
                // A lost update: viewers see the gap; the next one is a full frame for all.
                st.resync |= !ok;
            },
        );
    }

    /// One tick of a source whose frames already are JPEG: the newest frame goes to
    /// every viewer as it is, as a full frame (so also as the keyframe and the whole
    /// frame for MJPEG readers): never decoded, never encoded again.
    fn tick_jpeg(&mut self, next: Result<Option<bytes::Bytes>, CaptureError>) {
        let stats = self.shared.stats.clone();
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        let jpeg = match next {
            Ok(Some(jpeg)) => jpeg,
            Ok(None) => return,
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                self.log.error("camera frame failed", &e);
                self.check_lost();
                return;
            }
        };
        stats.captures.fetch_add(1, Ordering::Relaxed);
        // The kept picture is for sources that capture pixels.
        self.picture = None;
        {
            let mut st = self.shared.lock();
            while st.update_in_flight && !st.shutdown {
                st = self.shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
        let prev = self.seq;
        self.seq += 1;
        let seq = self.seq;
        (self.changed_seq, self.key_seq) = (seq, seq);
        self.shared.latest.store(seq, Ordering::SeqCst);
        let input_seq = stats.input_seq.load(Ordering::SeqCst);
        let full = Rect::full(self.width, self.height);
        let header = FrameHeader {
            flags: FLAG_KEY | FLAG_LAST,
            seq,
            capture_us: now_us(),
            input_seq,
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
            screen_width: self.width,
            screen_height: self.height,
            quality: 0,
            rects: 1,
        };
        let message = bytes::Bytes::from(header.encode_with(&jpeg));
        let update = Arc::new(Update {
            seq,
            prev,
            key: true,
            messages: vec![message],
            rects: vec![full],
        });
        stats.published.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes
            .fetch_add(update.bytes() as u64, Ordering::Relaxed);
        let shared = self.shared;
        shared.keyframe.send_replace(Some(Arc::new(Keyframe {
            covers: seq,
            update: update.clone(),
        })));
        shared.whole.send_replace(Some(Arc::new(Whole {
            covers: seq,
            cursor: None,
            header,
            jpeg,
        })));
        self.passed = Some(update.clone());
        let _ = shared.updates.send(update);
    }

    /// Encodes `pieces` on the pool. `publish` gets their messages, unless the pipeline
    /// went idle meanwhile; a failure is counted and logged as `what`. Then `finish`
    /// (told whether it worked) clears the caller's in-flight flag, and the capture
    /// thread wakes.
    fn submit(
        &self,
        pieces: Vec<Piece>,
        what: &'static str,
        publish: impl FnOnce(&Shared, Vec<bytes::Bytes>) + Send + 'static,
        finish: fn(&mut State, bool),
    ) {
        let shared = self.shared.clone();
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let started = Instant::now();
        self.pool.submit(
            pieces,
            Box::new(move |result| {
                shared
                    .stats
                    .encode_seconds
                    .observe(started.elapsed().as_secs_f64());
                let ok = result.is_ok();
                match result {
                    Ok(messages) if shared.epoch.load(Ordering::SeqCst) == epoch => {
                        publish(&shared, messages)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(cause = %e, "{what} encode failed; skipped");
                    }
                }
                shared.done(|st| finish(st, ok));
            }),
        );
    }

    /// Numbers `parts` (pixels, rectangle, quality, flags) as the rectangles of frame
    /// `seq`: every header carries the screen size and the rectangle count, the last
    /// one the `last` flag. With `fills`, a one-colour rectangle may go as a fill
    /// ([`FLAG_FILL`]; `/ws` only, never for MJPEG readers). Returns the pieces to
    /// encode and their rectangles.
    fn frame(
        &self,
        seq: u64,
        capture_us: u64,
        input_seq: u64,
        parts: Vec<(Arc<Pixels>, Rect, u8, u16)>,
        fills: bool,
    ) -> (Vec<Piece>, Vec<Rect>) {
        let count = parts.len();
        let rects = parts.iter().map(|(_, rect, _, _)| *rect).collect();
        let pieces = parts
            .into_iter()
            .enumerate()
            .map(|(i, (pixels, rect, quality, flags))| Piece {
                pixels,
                header: FrameHeader {
                    flags: flags
                        | if i + 1 == count { FLAG_LAST } else { 0 }
                        | if fills { FLAG_FILL } else { 0 },
                    seq,
                    capture_us,
                    input_seq,
                    x: rect.x,
                    y: rect.y,
                    width: rect.width,
                    height: rect.height,
                    screen_width: self.width,
                    screen_height: self.height,
                    quality,
                    rects: u16::try_from(count).unwrap_or(u16::MAX),
                },
            })
            .collect();
        (pieces, rects)
    }

    /// Encodes a keyframe from the kept picture if a viewer waits for one newer than
    /// the last.
    fn serve_keyframe(&mut self) {
        let Some(picture) = self.picture.as_ref() else {
            return;
        };
        let covers = self.seq;
        {
            let mut st = self.shared.lock();
            if !st.key_wanted || st.key_in_flight {
                return;
            }
            st.key_wanted = false;
            // The newest update is a full frame (maybe still encoding): it is the keyframe.
            let current = self.key_seq == covers
                || self
                    .shared
                    .keyframe
                    .borrow()
                    .as_ref()
                    .is_some_and(|k| k.covers >= covers);
            if current {
                return;
            }
            st.key_in_flight = true;
        }
        let full = Rect::full(self.width, self.height);
        let pixels = Arc::new(picture.copy(full));
        let quality = self.quality.max(REFRESH_QUALITY);
        let parts = plan::stripes(full, self.pool.size())
            .into_iter()
            .map(|rect| (pixels.clone(), rect, quality, FLAG_KEY))
            .collect();
        let input_seq = self.shared.stats.input_seq.load(Ordering::SeqCst);
        let (pieces, _) = self.frame(covers, now_us(), input_seq, parts, true);
        self.submit(
            pieces,
            "keyframe",
            move |shared, messages| {
                shared.stats.keyframes.fetch_add(1, Ordering::Relaxed);
                let update = Arc::new(Update {
                    seq: covers,
                    prev: covers,
                    key: true,
                    messages,
                    rects: vec![full],
                });
                shared
                    .keyframe
                    .send_replace(Some(Arc::new(Keyframe { covers, update })));
            },
            |st, _| st.key_in_flight = false,
        );
    }

    /// Encodes one whole-screen JPEG while an MJPEG reader watches and the picture
    /// moved on since the last one.
    fn serve_whole(&mut self) {
        if self.picture.is_none() {
            return;
        }
        // Refreshes do not change the picture: a whole frame covers real changes only.
        let covers = self.changed_seq;
        let cursor = {
            let mut st = self.shared.lock();
            if st.whole_viewers == 0 {
                // Nobody reads whole frames: let the cursor watcher idle.
                self.cursor_rx = None;
                return;
            }
            if st.whole_in_flight {
                return;
            }
            let cursor = self.cursor_now();
            let at = cursor.as_ref().map(|(s, at)| (s.serial, *at));
            let current = self
                .shared
                .whole
                .borrow()
                .as_ref()
                .is_some_and(|w| w.covers == covers && w.cursor == at);
            let wanted = std::mem::take(&mut st.whole_wanted);
            if current {
                if wanted {
                    // A new reader: hand it the current picture again.
                    self.shared.whole.send_modify(|_| {});
                }
                return;
            }
            st.whole_in_flight = true;
            cursor
        };
        let full = Rect::full(self.width, self.height);
        let Some(picture) = self.picture.as_ref() else {
            return;
        };
        let mut copy = picture.copy(full);
        let at = cursor.map(|(shape, at)| {
            if let PixelData::Owned(bytes) = &mut copy.data {
                shape.draw(bytes, copy.layout, self.width, at);
            }
            (shape.serial, at)
        });
        let pixels = Arc::new(copy);
        let input_seq = self.shared.stats.input_seq.load(Ordering::SeqCst);
        let parts = vec![(pixels, full, self.quality, FLAG_KEY)];
        let (pieces, _) = self.frame(covers, now_us(), input_seq, parts, false);
        let header = pieces[0].header;
        self.submit(
            pieces,
            "whole-frame",
            move |shared, mut messages| {
                if let Some(message) = messages.pop() {
                    shared.stats.wholes.fetch_add(1, Ordering::Relaxed);
                    let jpeg = message.slice(FRAME_HEADER_LEN..);
                    shared.whole.send_replace(Some(Arc::new(Whole {
                        covers,
                        cursor: at,
                        header,
                        jpeg,
                    })));
                }
            },
            |st, _| st.whole_in_flight = false,
        );
    }
}

impl Engine<'_> {
    /// The cursor to draw into a whole frame and where, in picture pixels; `None` with
    /// `--no-cursor`, without a cursor watcher, or while the pointer is off the picture.
    fn cursor_now(&mut self) -> Option<(Arc<cursor::Shape>, (i32, i32))> {
        let watcher = self.cursor.as_ref()?;
        let rx = self.cursor_rx.get_or_insert_with(|| watcher.subscribe());
        let st = rx.borrow();
        st.drawn_at(self.origin, self.width, self.height)
    }

    /// Encodes, for each viewer that asked, the areas it is behind on, from the kept
    /// picture at that viewer's quality: one update that brings it to now.
    fn serve_catch_ups(&mut self) {
        let requests = std::mem::take(&mut self.shared.lock().catch_ups);
        if let Some(newest) = self.passed.as_ref().filter(|_| self.picture.is_none()) {
            // Passed-through frames are whole: the newest brings anyone up to date.
            for request in requests {
                let _ = request.reply.send(newest.clone());
            }
            return;
        }
        let Some(picture) = self.picture.as_ref() else {
            return;
        };
        let covers = self.seq;
        let capture_us = now_us();
        let input_seq = self.shared.stats.input_seq.load(Ordering::SeqCst);
        // Viewers behind at the same quality share one encode: all tiles sent since the
        // oldest of their updates (a little more than some of them need, never less).
        let mut jobs: Vec<CatchUpJob> = Vec::new();
        for request in requests {
            let (tiles, shared) = match &request.area {
                viewer::Area::Since(seq) => (self.tiles.sent_after(*seq), true),
                // A refresh is one viewer's own.
                viewer::Area::Rects(rects) => {
                    let mut tiles = TileSet::new(self.width, self.height);
                    for r in rects {
                        tiles.mark(r);
                    }
                    (tiles, false)
                }
            };
            match jobs
                .iter_mut()
                .find(|j| shared && j.shared && j.quality == request.quality)
            {
                Some(job) => {
                    job.tiles.union(&tiles);
                    job.replies.push(request.reply);
                }
                None => jobs.push(CatchUpJob {
                    tiles,
                    quality: request.quality,
                    shared,
                    replies: vec![request.reply],
                }),
            }
        }
        for CatchUpJob {
            tiles,
            quality,
            replies,
            ..
        } in jobs
        {
            let mut parts = Vec::new();
            for rect in tiles.rects(plan::MAX_RECTS) {
                let pixels = Arc::new(picture.copy(rect));
                for stripe in plan::stripes(rect, self.pool.size()) {
                    parts.push((pixels.clone(), stripe, quality, 0));
                }
            }
            let (pieces, rects) = self.frame(covers, capture_us, input_seq, parts, true);
            self.submit(
                pieces,
                "catch-up",
                move |_, messages| {
                    let update = Arc::new(Update {
                        seq: covers,
                        prev: covers,
                        key: false,
                        messages,
                        rects,
                    });
                    for reply in replies {
                        let _ = reply.send(update.clone());
                    }
                },
                |_, _| {},
            );
        }
    }
}

/// One catch-up encode and the viewers waiting for it.
struct CatchUpJob {
    tiles: TileSet,
    quality: u8,
    /// Whether more viewers behind at this quality may join it.
    shared: bool,
    replies: Vec<oneshot::Sender<Arc<Update>>>,
}
