//! A pipeline fed from elsewhere (a relay's, fed over NATS by the origin) instead of
//! by a capture thread: what arrives is already encoded, and goes to viewers as it is.
//!
//! The feeder thread keeps the origin's last keyframe and every update since (the
//! backlog), in the relay's own sequence numbers: the origin's stream may restart
//! (the origin did) or break (a message lost), and the relay's viewers must still see
//! one unbroken chain. So each update is renumbered as it arrives (only its headers;
//! the JPEGs stay byte for byte the origin's).
//!
//! - A viewer who joins gets the keyframe and the backlog, sent together as one
//!   keyframe: it never waits for the origin.
//! - A viewer behind the stream gets whichever is smaller: the updates since the one it
//!   is at, or the keyframe and the backlog. Nothing is encoded here, so a slow viewer
//!   skips ahead rather than queueing.
//! - When the backlog outgrows the keyframe, or the chain breaks, the feeder asks the
//!   origin for a fresh keyframe ([`Interest::key`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use deskcast_shared::{FrameHeader, FLAG_KEY, FLAG_LAST};
use tokio::sync::watch;

use super::{Keyframe, Shared, SourceState, Update, Whole};
use crate::capture::{FrameSource as _, Geometry, Placeholder, Rect};

/// One frame from the origin, in the origin's numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// Which run of the origin sent it (a restarted origin numbers from 1 again).
    pub instance: u64,
    /// The origin's `seq`; for a keyframe, the update it covers.
    pub seq: u64,
    /// The origin's update before it.
    pub prev: u64,
    /// Whether it covers the whole screen.
    pub key: bool,
    /// What it covers.
    pub rects: Vec<Rect>,
    /// The `/ws` messages, as the origin made them.
    pub messages: Vec<Bytes>,
}

/// What the feeder is told.
#[derive(Debug)]
pub enum Incoming {
    /// An update of the origin's stream.
    Update(Relayed),
    /// A keyframe of the origin's stream: covers `seq`.
    Keyframe(Relayed),
    /// A whole-screen JPEG for `/video_feed` and `/snapshot.jpg`.
    Whole(FrameHeader, Bytes),
    /// The origin is back.
    Up,
    /// The origin cannot be reached: why. Viewers get a placeholder saying so.
    Down(String),
}

/// What the relay wants from the origin, as it changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    /// `/ws` viewers here.
    pub ws: usize,
    /// `/video_feed` and `/snapshot.jpg` readers here.
    pub whole: usize,
    /// A keyframe is wanted: a viewer waits and there is none, the chain broke, or
    /// the backlog outgrew the keyframe.
    pub key: bool,
}

/// The sending end of a relayed pipeline: what the origin sends goes in here.
#[derive(Clone)]
pub struct Inlet {
    shared: Arc<Shared>,
    tx: mpsc::SyncSender<Incoming>,
    /// [`Incoming::Up`] and [`Incoming::Down`]: never dropped (and rare).
    reach: mpsc::Sender<Incoming>,
}

/// Things in flight to the feeder at most; a relay that cannot keep up drops frames
/// (and asks for a keyframe) rather than holding them.
const INLET_DEPTH: usize = 256;

impl Inlet {
    /// Hands `incoming` to the feeder; `false` when its queue is full (the frame is
    /// dropped; the feeder sees the gap and asks for a keyframe).
    pub fn push(&self, incoming: Incoming) -> bool {
        let sent = match incoming {
            Incoming::Up | Incoming::Down(_) => self.reach.send(incoming).is_ok(),
            _ => self.tx.try_send(incoming).is_ok(),
        };
        // Taking the lock orders this after the feeder's look at the queue.
        drop(self.shared.lock());
        self.shared.wake.notify_all();
        sent
    }
}

/// Most updates kept after the keyframe for joiners; and bytes of them: eight
/// keyframes' worth, within these bounds.
const MAX_BACKLOG: usize = 2048;
const MIN_BACKLOG_BYTES: usize = 4 * 1024 * 1024;
const MAX_BACKLOG_BYTES: usize = 32 * 1024 * 1024;

/// Largest screen side a relayed keyframe may announce; larger is garbage.
const MAX_SIDE: u32 = 16384;

/// Asking the origin again for a keyframe it has not sent yet, at most this often.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// The feeder thread's state.
pub(super) struct Feeder {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Incoming>,
    reach: mpsc::Receiver<Incoming>,
    interest: watch::Sender<Interest>,
    /// The relay's newest `seq`.
    seq: u64,
    /// Where the chain is, in the origin's terms: its run and its `seq`; `None` until
    /// a keyframe (the chain broke, or never started).
    at: Option<(u64, u64)>,
    /// The newest keyframe, in the relay's numbering, and every update after it.
    base: Option<Arc<Keyframe>>,
    since: VecDeque<Arc<Update>>,
    since_bytes: usize,
    /// A keyframe was asked for, and when.
    asked: Option<Instant>,
    geometry: Geometry,
    desktop: bool,
    /// Why the origin cannot be reached, while it cannot.
    down: Option<String>,
    /// Whether anybody watched at the last look.
    watched: bool,
}

impl Feeder {
    pub(super) fn new(
        shared: Arc<Shared>,
        (rx, reach): (mpsc::Receiver<Incoming>, mpsc::Receiver<Incoming>),
        interest: watch::Sender<Interest>,
        geometry: Geometry,
    ) -> Self {
        Feeder {
            shared,
            rx,
            reach,
            interest,
            seq: 0,
            at: None,
            base: None,
            since: VecDeque::new(),
            since_bytes: 0,
            asked: None,
            geometry,
            desktop: true,
            down: None,
            watched: false,
        }
    }

    pub(super) fn inlet(
        shared: &Arc<Shared>,
    ) -> (Inlet, (mpsc::Receiver<Incoming>, mpsc::Receiver<Incoming>)) {
        let (tx, rx) = mpsc::sync_channel(INLET_DEPTH);
        let (reach, reach_rx) = mpsc::channel();
        (
            Inlet {
                shared: shared.clone(),
                tx,
                reach,
            },
            (rx, reach_rx),
        )
    }

    pub(super) fn run(&mut self) {
        loop {
            let incoming: Vec<Incoming> = {
                let mut st = self.shared.lock();
                loop {
                    if st.shutdown {
                        self.shared.stats.running.store(false, Ordering::SeqCst);
                        return;
                    }
                    // Whether the origin is reachable first: frames after it count.
                    let mut got: Vec<Incoming> = self.reach.try_iter().collect();
                    got.extend(self.rx.try_iter());
                    let pending = (st.key_wanted && self.base.is_some())
                        || st.whole_wanted
                        || !st.catch_ups.is_empty()
                        || (st.viewers + st.whole_viewers > 0) != self.watched;
                    if !got.is_empty() || pending {
                        break got;
                    }
                    st = self
                        .shared
                        .wake
                        .wait_timeout(st, ASK_AGAIN)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            };
            for i in incoming {
                self.take(i);
            }
            self.serve();
        }
    }

    fn take(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Update(u) => self.update(u),
            Incoming::Keyframe(k) => self.keyframe(k),
            Incoming::Whole(header, jpeg) => {
                if self.down.is_none() && self.shared.lock().whole_viewers > 0 {
                    self.shared.stats.wholes.fetch_add(1, Ordering::Relaxed);
                    self.shared.whole.send_replace(Some(Arc::new(Whole {
                        covers: self.seq,
                        cursor: None,
                        header,
                        jpeg,
                    })));
                }
            }
            Incoming::Up => {
                if self.down.take().is_some() {
                    tracing::info!("the origin is back");
                    self.shared.source.send_replace(SourceState::Up);
                    // The placeholder is no picture to start from.
                    self.at = None;
                    self.base = None;
                    self.since.clear();
                    self.since_bytes = 0;
                    self.ask();
                }
            }
            Incoming::Down(why) => {
                if self.down.is_none() {
                    tracing::warn!("{why}; showing a placeholder");
                    self.down = Some(why.clone());
                    self.shared.source.send_replace(SourceState::Down(why));
                    self.placeholder();
                }
            }
        }
    }

    /// An update from the origin: the next in the chain, or a full frame, goes out.
    fn update(&mut self, u: Relayed) {
        if self.down.is_some() || !self.watched {
            return;
        }
        let next = match self.at {
            Some((instance, at)) if instance == u.instance => {
                if u.seq <= at {
                    return;
                }
                u.prev == at
            }
            _ => false,
        };
        if !next && !u.key {
            // A gap (a lost message, a new origin): wait for a keyframe.
            if self.at.is_some() {
                tracing::debug!(
                    seq = u.seq,
                    "gap in the origin's stream; asking for a keyframe"
                );
            }
            self.at = None;
            self.ask();
            return;
        }
        self.at = Some((u.instance, u.seq));
        self.publish(u.key, u.rects, &u.messages);
    }

    /// A keyframe from the origin: the new base for joiners, or, when the chain is
    /// broken, the next update for everyone.
    fn keyframe(&mut self, k: Relayed) {
        if self.down.is_some() || !self.watched {
            return;
        }
        match self.at {
            Some((instance, at)) if instance == k.instance && k.seq == at => {
                let update = self.renumbered(self.seq, self.seq, true, k.rects, &k.messages);
                self.set_base(update);
                self.asked = None;
            }
            // Older than what viewers have: of no use.
            Some((instance, at)) if instance == k.instance && k.seq < at => {}
            _ => {
                self.at = Some((k.instance, k.seq));
                self.publish(true, k.rects, &k.messages);
            }
        }
    }

    /// Renumbers `messages` as the relay's next update and sends it to every viewer.
    fn publish(&mut self, key: bool, rects: Vec<Rect>, messages: &[Bytes]) {
        let prev = self.seq;
        self.seq += 1;
        let update = self.renumbered(self.seq, prev, key, rects, messages);
        if key {
            self.follow_size(&update);
            self.set_base(update.clone());
            self.asked = None;
        } else {
            self.since_bytes += update.bytes();
            self.since.push_back(update.clone());
            let base_bytes = self.base.as_ref().map_or(0, |b| b.update.bytes());
            if self.since_bytes > base_bytes.max(64 * 1024) {
                // Joiners would get more backlog than picture: a fresh keyframe.
                self.ask();
            }
            let cap = (8 * base_bytes).clamp(MIN_BACKLOG_BYTES, MAX_BACKLOG_BYTES);
            if self.since_bytes > cap || self.since.len() > MAX_BACKLOG {
                // The origin sends no keyframe: keep nothing more. Viewers following the
                // stream carry on; joiners wait for the keyframe asked for.
                self.base = None;
                self.since.clear();
                self.since_bytes = 0;
            }
        }
        let shared = &self.shared;
        shared.latest.store(self.seq, Ordering::SeqCst);
        shared.stats.published.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .bytes
            .fetch_add(update.bytes() as u64, Ordering::Relaxed);
        let input_seq = update.input_seq();
        shared.answered.send_if_modified(|shown| {
            let newer = input_seq > *shown;
            *shown = (*shown).max(input_seq);
            newer
        });
        let _ = shared.updates.send(update);
    }

    fn set_base(&mut self, update: Arc<Update>) {
        self.since.clear();
        self.since_bytes = 0;
        self.base = Some(Arc::new(Keyframe {
            covers: update.seq,
            update,
        }));
    }

    /// A keyframe with another screen size: viewers follow it.
    fn follow_size(&mut self, update: &Update) {
        let Some((h, _)) = update
            .messages
            .first()
            .and_then(|m| FrameHeader::decode(m).ok())
        else {
            return;
        };
        let side = 1..=MAX_SIDE;
        if !side.contains(&h.screen_width) || !side.contains(&h.screen_height) {
            return;
        }
        if (h.screen_width, h.screen_height) != (self.geometry.width, self.geometry.height) {
            self.geometry.width = h.screen_width;
            self.geometry.height = h.screen_height;
            self.shared.geometry.send_replace(self.geometry);
        }
    }

    /// `messages` with `seq` in their headers, as one update.
    fn renumbered(
        &self,
        seq: u64,
        prev: u64,
        key: bool,
        rects: Vec<Rect>,
        messages: &[Bytes],
    ) -> Arc<Update> {
        let messages = messages
            .iter()
            .map(|m| {
                let mut b = BytesMut::from(&m[..]);
                if b.len() >= 12 {
                    b[4..12].copy_from_slice(&seq.to_le_bytes());
                }
                b.freeze()
            })
            .collect();
        Arc::new(Update {
            seq,
            prev,
            key,
            messages,
            rects,
        })
    }

    /// Asks the origin for a keyframe (again, once [`ASK_AGAIN`] passed).
    fn ask(&mut self) {
        let now = Instant::now();
        if self
            .asked
            .is_some_and(|t| now.duration_since(t) < ASK_AGAIN)
        {
            return;
        }
        self.asked = Some(now);
        self.interest.send_modify(|i| i.key = true);
    }

    /// The keyframe a joiner starts from: the base and the backlog, in one.
    fn joiner(&self) -> Option<Arc<Keyframe>> {
        let base = self.base.as_ref()?;
        if self.since.is_empty() {
            return Some(base.clone());
        }
        let mut messages = base.update.messages.clone();
        for u in &self.since {
            messages.extend(u.messages.iter().cloned());
        }
        Some(Arc::new(Keyframe {
            covers: self.seq,
            update: Arc::new(Update {
                seq: self.seq,
                prev: self.seq,
                key: true,
                messages,
                rects: vec![Rect::full(self.geometry.width, self.geometry.height)],
            }),
        }))
    }

    /// Answers what viewers wait for; tells the origin what this relay wants.
    fn serve(&mut self) {
        let mut st = self.shared.lock();
        let watched = st.viewers + st.whole_viewers > 0;
        if watched != self.watched {
            self.watched = watched;
            self.shared.stats.running.store(watched, Ordering::SeqCst);
            if !watched {
                // The origin stops sending: what is kept goes stale.
                self.at = None;
                self.asked = None;
                self.base = None;
                self.since.clear();
                self.since_bytes = 0;
                self.shared.keyframe.send_replace(None);
                self.shared.whole.send_replace(None);
                st.key_wanted = false;
                st.catch_ups.clear();
            } else if self.down.is_some() {
                drop(st);
                self.placeholder();
                st = self.shared.lock();
            }
        }
        if st.key_wanted {
            match self.joiner() {
                Some(k) => {
                    st.key_wanted = false;
                    if self.shared.keyframe.borrow().as_ref().map(|k| k.covers) != Some(k.covers) {
                        self.shared.stats.keyframes.fetch_add(1, Ordering::Relaxed);
                    }
                    self.shared.keyframe.send_replace(Some(k));
                }
                None => {
                    drop(st);
                    self.ask();
                    st = self.shared.lock();
                }
            }
        }
        if std::mem::take(&mut st.whole_wanted) && self.shared.whole.borrow().is_some() {
            // A new reader: hand it the current picture again.
            self.shared.whole.send_modify(|_| {});
        }
        let requests = std::mem::take(&mut st.catch_ups);
        let (ws, whole) = (st.viewers, st.whole_viewers);
        drop(st);
        for request in requests {
            if let Some(answer) = self.catch_up(&request.area) {
                let _ = request.reply.send(answer);
            }
            // Else the reply is dropped: the viewer starts over from a keyframe.
        }
        let key = self.watched && self.asked.is_some() && self.down.is_none();
        self.interest.send_if_modified(|i| {
            let new = Interest { ws, whole, key };
            let changed = *i != new;
            *i = new;
            changed
        });
    }

    /// What brings a viewer at `area` up to now: the updates since, or the joiner's
    /// keyframe, whichever is smaller.
    fn catch_up(&self, area: &super::viewer::Area) -> Option<Arc<Update>> {
        let super::viewer::Area::Since(at) = *area else {
            // Relayed frames are never re-encoded lower: nothing to sharpen.
            return None;
        };
        if at == self.seq {
            return Some(Arc::new(Update {
                seq: self.seq,
                prev: self.seq,
                key: false,
                messages: Vec::new(),
                rects: Vec::new(),
            }));
        }
        let joiner = self.joiner()?.update.clone();
        let first = self.since.front().map(|u| u.prev);
        let in_backlog = self.base.as_ref().is_some_and(|b| b.covers <= at)
            && first.is_some_and(|f| f <= at)
            && at < self.seq;
        if !in_backlog {
            return Some(joiner);
        }
        let behind: Vec<&Arc<Update>> = self.since.iter().filter(|u| u.seq > at).collect();
        let bytes: usize = behind.iter().map(|u| u.bytes()).sum();
        if bytes >= joiner.bytes() {
            return Some(joiner);
        }
        Some(Arc::new(Update {
            seq: self.seq,
            prev: at,
            key: false,
            messages: behind
                .iter()
                .flat_map(|u| u.messages.iter().cloned())
                .collect(),
            rects: behind
                .iter()
                .flat_map(|u| u.rects.iter().copied())
                .collect(),
        }))
    }

    /// Shows "ORIGIN UNREACHABLE" to every viewer, as the relay's next full frame.
    fn placeholder(&mut self) {
        let Some(why) = self.down.clone() else {
            return;
        };
        let g = self.geometry;
        let mut source = Placeholder::new(g, self.desktop, "ORIGIN UNREACHABLE", &why);
        let full = Rect::full(g.width, g.height);
        let jpeg = source.capture(&[full]).ok().and_then(|p| {
            let mut encoder = crate::encode::Encoder::new(self.shared.quality).ok()?;
            encoder.encode(p.first()?, full, 80).ok()
        });
        let Some(jpeg) = jpeg else {
            tracing::warn!("could not draw the placeholder");
            return;
        };
        let header = FrameHeader {
            flags: FLAG_KEY | FLAG_LAST,
            seq: self.seq + 1,
            capture_us: super::engine::now_us(),
            input_seq: 0,
            x: 0,
            y: 0,
            width: g.width,
            height: g.height,
            screen_width: g.width,
            screen_height: g.height,
            quality: 80,
            rects: 1,
        };
        let message = Bytes::from(header.encode_with(&jpeg));
        self.at = None;
        self.publish(true, vec![full], std::slice::from_ref(&message));
        self.shared.whole.send_replace(Some(Arc::new(Whole {
            covers: self.seq,
            cursor: None,
            header,
            jpeg: Bytes::from(jpeg),
        })));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::Pipeline;

    const G: Geometry = Geometry {
        x: 0,
        y: 0,
        width: 64,
        height: 32,
    };

    /// One origin update of one rectangle whose "JPEG" names its origin `seq`.
    fn from_origin(instance: u64, seq: u64, prev: u64, key: bool) -> Relayed {
        let header = FrameHeader {
            flags: FLAG_LAST | if key { FLAG_KEY } else { 0 },
            seq,
            screen_width: G.width,
            screen_height: G.height,
            width: 8,
            height: 8,
            rects: 1,
            ..FrameHeader::default()
        };
        Relayed {
            instance,
            seq,
            prev,
            key,
            rects: vec![Rect::full(8, 8)],
            messages: vec![Bytes::from(
                header.encode_with(format!("jpeg-{instance}-{seq}").as_bytes()),
            )],
        }
    }

    /// The "JPEGs" of an update and the `seq` in each header.
    fn seen(u: &Update) -> Vec<(String, u64)> {
        u.messages
            .iter()
            .map(|m| {
                let (h, jpeg) = FrameHeader::decode(m).expect("header");
                (String::from_utf8_lossy(jpeg).to_string(), h.seq)
            })
            .collect()
    }

    async fn next(v: &mut crate::pipeline::Viewer) -> Arc<Update> {
        tokio::time::timeout(Duration::from_secs(5), v.next(30))
            .await
            .expect("an update within 5 s")
            .expect("pipeline running")
    }

    async fn wanted(wants: &mut watch::Receiver<Interest>, f: impl Fn(&Interest) -> bool) {
        tokio::time::timeout(Duration::from_secs(5), wants.wait_for(f))
            .await
            .expect("in time")
            .expect("feeder running");
    }

    #[tokio::test]
    async fn joiners_get_the_keyframe_and_the_backlog_renumbered_with_the_jpegs_untouched() {
        let (p, inlet, mut wants) = Pipeline::relayed(G).expect("starts");
        let mut first = p.subscribe();
        wanted(&mut wants, |i| i.ws == 1).await;
        inlet.push(Incoming::Update(from_origin(7, 10, 9, true)));
        let k = next(&mut first).await;
        assert!(k.key);
        assert_eq!(seen(&k), [("jpeg-7-10".to_string(), 1)]);
        for seq in 11..=12 {
            inlet.push(Incoming::Update(from_origin(7, seq, seq - 1, false)));
        }
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(seen(&*next(&mut first).await));
        }
        assert_eq!(
            got,
            [("jpeg-7-11".to_string(), 2), ("jpeg-7-12".to_string(), 3)]
        );
        // A joiner: the keyframe and both updates at once, as they were numbered.
        let mut second = p.subscribe();
        let j = next(&mut second).await;
        assert!(j.key);
        assert_eq!(j.seq, 3);
        assert_eq!(
            seen(&j),
            [
                ("jpeg-7-10".to_string(), 1),
                ("jpeg-7-11".to_string(), 2),
                ("jpeg-7-12".to_string(), 3)
            ]
        );
        wanted(&mut wants, |i| i.ws == 2 && !i.key).await;
    }

    #[tokio::test]
    async fn a_gap_waits_for_a_keyframe_and_a_restarted_origin_is_followed() {
        let (p, inlet, mut wants) = Pipeline::relayed(G).expect("starts");
        let mut v = p.subscribe();
        wanted(&mut wants, |i| i.ws == 1).await;
        inlet.push(Incoming::Update(from_origin(7, 10, 9, true)));
        assert_eq!(next(&mut v).await.seq, 1);
        // 11 was lost: 12 is not drawn, and a keyframe is asked for.
        inlet.push(Incoming::Update(from_origin(7, 12, 11, false)));
        wanted(&mut wants, |i| i.key).await;
        inlet.push(Incoming::Keyframe(from_origin(7, 12, 12, true)));
        let k = next(&mut v).await;
        assert!(k.key && k.prev == 1 && k.seq == 2, "{k:?}");
        assert_eq!(seen(&k), [("jpeg-7-12".to_string(), 2)]);
        // The origin restarted (a new run, numbering from 1): its keyframe goes on.
        inlet.push(Incoming::Update(from_origin(9, 2, 1, false)));
        inlet.push(Incoming::Keyframe(from_origin(9, 2, 2, true)));
        let k = next(&mut v).await;
        assert_eq!((k.seq, k.prev), (3, 2));
        assert_eq!(seen(&k), [("jpeg-9-2".to_string(), 3)]);
    }

    #[tokio::test]
    async fn an_unreachable_origin_shows_a_placeholder_and_its_return_asks_for_a_keyframe() {
        let (p, inlet, mut wants) = Pipeline::relayed(G).expect("starts");
        let mut v = p.subscribe();
        let mut state = p.source_state();
        wanted(&mut wants, |i| i.ws == 1).await;
        inlet.push(Incoming::Down("origin unreachable: test".into()));
        let u = next(&mut v).await;
        assert!(u.key);
        let (h, jpeg) = FrameHeader::decode(&u.messages[0]).expect("header");
        assert_eq!((h.width, h.height), (G.width, G.height));
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
        assert!(!state.borrow_and_update().is_up());
        inlet.push(Incoming::Up);
        wanted(&mut wants, |i| i.key).await;
        assert!(state.borrow_and_update().is_up());
    }
}
