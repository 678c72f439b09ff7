//! The origin's side: publishes the pipeline's updates (as they are: one encode for
//! every relay), keyframes when a relay asks or the stream has moved on far from the
//! last one, and whole JPEGs while some relay has an MJPEG reader; answers relays'
//! input with `--relay-control`.
//!
//! It holds a pipeline subscription only while some relay has viewers, so an origin
//! nobody watches, here or at a relay, captures nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use deskcast_shared::{ClientMessage, ErrorCode};
use futures_util::StreamExt as _;
use tokio::sync::{broadcast, watch};

use super::wire::{Frame, Kind};
use super::{Beat, InputReply, InputRequest, Subjects, Wants, BEAT_EVERY, GONE_AFTER};
use crate::control::Seat;
use crate::input::{Input, SendError};
use crate::pipeline::{Feed, Pipeline, Relayed, Update, Whole, WholeViewer};

/// A relay, as last heard from.
struct Relay {
    wants: Wants,
    at: Instant,
}

/// The relays' controllers: one origin seat id for each relay.
type RelaySeats = Arc<Mutex<HashMap<String, u64>>>;

/// What the origin lets relays' controllers do.
#[derive(Clone)]
pub struct Control {
    /// The desktop's input.
    pub input: Input,
    /// The origin's one control seat.
    pub seat: Arc<Seat>,
}

/// Publishes the stream until `stopping` turns true.
pub async fn run(
    client: async_nats::Client,
    subjects: Subjects,
    pipeline: Arc<Pipeline>,
    control: Option<Control>,
    cursor: Option<Arc<crate::cursor::Watcher>>,
    mut stopping: watch::Receiver<bool>,
) {
    let instance = super::random_id();
    let seats = RelaySeats::default();
    if let Some(control) = control.clone() {
        let (client, subject, seats) = (client.clone(), subjects.input.clone(), seats.clone());
        tokio::spawn(async move { answer_input(client, subject, control, seats).await });
    }
    let mut interest = match client.subscribe(subjects.interest.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot subscribe to relays' interest; not publishing");
            return;
        }
    };
    tracing::info!(subject = %subjects.frames, "publishing to relays over NATS");
    let mut out = Publisher {
        client: client.clone(),
        subjects: subjects.clone(),
        instance,
        published: 0,
        key_bytes: 0,
        since_key: 0,
        key_at: Instant::now(),
        want_key: false,
        asked_at: None,
        last_whole: None,
    };
    let mut relays: HashMap<String, Relay> = HashMap::new();
    let mut feed: Option<Feed> = None;
    let mut wholes: Option<WholeViewer> = None;
    // Followed while relays watch.
    let mut pointer: Option<watch::Receiver<crate::cursor::State>> = None;
    let mut told_shape: Option<(u32, Instant)> = None;
    let mut source = pipeline.source_state();
    let mut beat = tokio::time::interval(BEAT_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = super::stopped(&mut stopping) => break,
            msg = interest.next() => {
                let Some(msg) = msg else { break };
                let Ok(wants) = serde_json::from_slice::<Wants>(&msg.payload) else {
                    tracing::debug!("unreadable interest message");
                    continue;
                };
                let more_wholes = wants.whole > relays.get(&wants.relay).map_or(0, |r| r.wants.whole);
                if !relays.contains_key(&wants.relay) {
                    // A new relay gets the cursor's shape with its next move.
                    told_shape = None;
                }
                // A relay with no /ws viewer needs no keyframe.
                out.want_key |= wants.key && wants.ws > 0;
                relays.insert(wants.relay.clone(), Relay { wants, at: Instant::now() });
                if more_wholes {
                    // A new MJPEG reader at a relay: the picture as it is, at once.
                    out.republish_whole().await;
                }
            }
            event = feed_event(&mut feed) => match event {
                FeedEvent::Update(Ok(update)) => out.update(&update).await,
                FeedEvent::Update(Err(broadcast::error::RecvError::Lagged(n))) => {
                    // Relays see the gap and ask for a keyframe; so does the origin.
                    tracing::warn!(missed = n, "NATS publishing fell behind the stream");
                    out.want_key = true;
                }
                FeedEvent::Update(Err(broadcast::error::RecvError::Closed))
                | FeedEvent::Keyframe(false) => break,
                // Looked at below (offer_key).
                FeedEvent::Keyframe(true) => {}
            },
            changed = crate::cursor::changed(&mut pointer) => {
                if !changed {
                    pointer = None;
                    continue;
                }
                let state = pointer.as_mut().map(|p| p.borrow_and_update().clone());
                if let Some(state) = state {
                    out.cursor(&state, pipeline.geometry(), &mut told_shape).await;
                }
            }
            whole = next_whole(&mut wholes) => match whole {
                Some(w) => out.whole(&w).await,
                None => wholes = None,
            },
            changed = source.changed() => {
                if changed.is_err() {
                    break;
                }
                out.beat(&pipeline, control.as_ref()).await;
            }
            _ = beat.tick() => {
                let now = Instant::now();
                relays.retain(|id, r| {
                    let alive = now.duration_since(r.at) < GONE_AFTER;
                    if !alive {
                        tracing::info!(relay = %id, "relay gone");
                        if let (Some(control), Some(seat)) = (&control, lock(&seats).remove(id)) {
                            control.seat.release(seat);
                        }
                    }
                    alive
                });
                out.beat(&pipeline, control.as_ref()).await;
            }
        }
        // Subscribed while, and only while, some relay has viewers.
        let ws: usize = relays.values().map(|r| r.wants.ws).sum();
        let whole: usize = relays.values().map(|r| r.wants.whole).sum();
        match (&feed, ws > 0) {
            (None, true) => {
                tracing::info!(relays = relays.len(), viewers = ws, "relays watch");
                feed = Some(pipeline.feed());
                out.want_key = true;
                pointer = cursor.as_ref().map(|c| {
                    let mut rx = c.subscribe();
                    rx.mark_changed();
                    rx
                });
                told_shape = None;
            }
            (Some(_), false) => {
                tracing::info!("no relay watches");
                feed = None;
                pointer = None;
            }
            _ => {}
        }
        match (&wholes, whole > 0) {
            (None, true) => wholes = Some(pipeline.subscribe_whole()),
            (Some(_), false) => {
                wholes = None;
                out.last_whole = None;
            }
            _ => {}
        }
        if let Some(feed) = &feed {
            out.offer_key(feed).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the pipeline subscription brought.
enum FeedEvent {
    Update(Result<Arc<Update>, broadcast::error::RecvError>),
    /// A new keyframe (`true`), or the pipeline shut down (`false`).
    Keyframe(bool),
}

async fn feed_event(feed: &mut Option<Feed>) -> FeedEvent {
    let Some(f) = feed else {
        return std::future::pending().await;
    };
    tokio::select! {
        u = f.updates.recv() => FeedEvent::Update(u),
        k = f.keyframes.changed() => FeedEvent::Keyframe(k.is_ok()),
    }
}

async fn next_whole(wholes: &mut Option<WholeViewer>) -> Option<Arc<Whole>> {
    match wholes {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// Where the published stream is.
struct Publisher {
    client: async_nats::Client,
    subjects: Subjects,
    instance: u64,
    /// `seq` of the newest update published.
    published: u64,
    /// Bytes of the last keyframe (or full frame) published, and of updates since.
    key_bytes: usize,
    since_key: usize,
    key_at: Instant,
    /// A relay wants a keyframe, or the stream moved on far from the last one.
    want_key: bool,
    /// When the pipeline was last asked for one.
    asked_at: Option<Instant>,
    last_whole: Option<Arc<Whole>>,
}

impl Publisher {
    async fn send(&self, subject: &str, frame: &Frame) {
        for payload in frame.encode(super::max_payload(&self.client)) {
            if let Err(e) = self.client.publish(subject.to_string(), payload).await {
                tracing::debug!(cause = %e, "NATS publish failed");
                return;
            }
        }
    }

    async fn update(&mut self, u: &Update) {
        let frame = Frame {
            kind: Kind::Update,
            body: Relayed {
                instance: self.instance,
                seq: u.seq,
                prev: u.prev,
                key: u.key,
                rects: u.rects.clone(),
                messages: u.messages.clone(),
            },
        };
        self.send(&self.subjects.frames, &frame).await;
        self.published = self.published.max(u.seq);
        if u.key {
            // A full frame serves every relay that asked for a keyframe.
            self.want_key = false;
            self.asked_at = None;
            self.key_bytes = u.bytes();
            self.since_key = 0;
            self.key_at = Instant::now();
        } else {
            self.since_key += u.bytes();
            // Relays would hand joiners more backlog than picture: a fresh keyframe.
            if self.since_key > self.key_bytes.max(64 * 1024) && self.key_at.elapsed() >= BEAT_EVERY
            {
                self.want_key = true;
            }
        }
    }

    /// Publishes the pipeline's keyframe if one is wanted and it covers at least what
    /// was published (relays drop the updates it covers that come after it); else asks
    /// the pipeline for one.
    async fn offer_key(&mut self, feed: &Feed) {
        if !self.want_key {
            return;
        }
        let current = feed.keyframes.borrow().clone();
        match current {
            Some(k) if k.covers >= self.published => {
                self.published = k.covers;
                let frame = Frame {
                    kind: Kind::Keyframe,
                    body: Relayed {
                        instance: self.instance,
                        seq: k.covers,
                        prev: k.covers,
                        key: true,
                        rects: k.update.rects.clone(),
                        messages: k.update.messages.clone(),
                    },
                };
                self.send(&self.subjects.frames, &frame).await;
                self.want_key = false;
                self.asked_at = None;
                self.key_bytes = k.update.bytes();
                self.since_key = 0;
                self.key_at = Instant::now();
            }
            // Older than what was published, or none yet.
            _ => {
                let now = Instant::now();
                if self
                    .asked_at
                    .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_millis(100))
                {
                    self.asked_at = Some(now);
                    feed.want_keyframe();
                }
            }
        }
    }

    async fn whole(&mut self, w: &Arc<Whole>) {
        self.last_whole = Some(w.clone());
        self.send_whole(w).await;
    }

    async fn republish_whole(&mut self) {
        if let Some(w) = self.last_whole.clone() {
            self.send_whole(&w).await;
        }
    }

    async fn send_whole(&self, w: &Whole) {
        let message = Bytes::from(w.header.encode_with(&w.jpeg));
        let frame = Frame {
            kind: Kind::Whole,
            body: Relayed {
                instance: self.instance,
                seq: w.covers,
                prev: w.covers,
                key: true,
                rects: Vec::new(),
                messages: vec![message],
            },
        };
        self.send(&self.subjects.whole, &frame).await;
    }

    /// Tells relays where the cursor is; its shape too when it is new to them, and
    /// every few seconds.
    async fn cursor(
        &self,
        state: &crate::cursor::State,
        geometry: crate::capture::Geometry,
        told: &mut Option<(u32, Instant)>,
    ) {
        use base64::Engine as _;
        let Some(shape) = &state.shape else {
            return;
        };
        let at = state
            .drawn_at((geometry.x, geometry.y), geometry.width, geometry.height)
            .map(|(_, at)| at);
        let stale = told.is_none_or(|(serial, when)| {
            serial != shape.serial || when.elapsed() >= std::time::Duration::from_secs(5)
        });
        let bits = stale.then(|| super::ShapeBits {
            width: shape.width,
            height: shape.height,
            hot_x: shape.hot_x,
            hot_y: shape.hot_y,
            rgba: base64::engine::general_purpose::STANDARD.encode(&shape.rgba),
        });
        if stale {
            *told = Some((shape.serial, Instant::now()));
        }
        let news = super::CursorNews {
            serial: shape.serial,
            shape: bits,
            at,
        };
        if let Ok(json) = serde_json::to_vec(&news) {
            let _ = self
                .client
                .publish(self.subjects.cursor.clone(), json.into())
                .await;
        }
    }

    async fn beat(&self, pipeline: &Pipeline, control: Option<&Control>) {
        let state = pipeline.source_state().borrow().clone();
        let beat = Beat {
            instance: self.instance,
            source_up: state.is_up(),
            message: match state {
                crate::pipeline::SourceState::Up => String::new(),
                crate::pipeline::SourceState::Down(why) => why,
            },
            relay_control: control.is_some(),
            input: control.is_some_and(|c| c.input.available()),
        };
        let Ok(json) = serde_json::to_vec(&beat) else {
            return;
        };
        let _ = self
            .client
            .publish(self.subjects.origin.clone(), json.into())
            .await;
    }
}

/// Answers relays' input requests: the origin's seat decides, as for its own viewers.
async fn answer_input(
    client: async_nats::Client,
    subject: String,
    control: Control,
    seats: RelaySeats,
) {
    let mut requests = match client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot take relays' input");
            return;
        }
    };
    while let Some(msg) = requests.next().await {
        let reply = match serde_json::from_slice::<InputRequest>(&msg.payload) {
            Ok(request) => apply(&control, &seats, request),
            Err(e) => Some((
                ErrorCode::BadMessage,
                format!("unreadable input request; {e}"),
            )),
        };
        let Some(to) = msg.reply else { continue };
        let Ok(json) = serde_json::to_vec(&InputReply { error: reply }) else {
            continue;
        };
        let _ = client.publish(to, json.into()).await;
    }
}

/// Applies one relay's request; the error to answer with, if any.
fn apply(
    control: &Control,
    seats: &RelaySeats,
    request: InputRequest,
) -> Option<(ErrorCode, String)> {
    let seat = &control.seat;
    let id = *lock(seats)
        .entry(request.relay.clone())
        .or_insert_with(|| seat.new_id());
    if request.release {
        // Releasing the seat lets go of what the relay's controller held.
        seat.release(id);
        return None;
    }
    if !seat.holds(id) && !seat.try_claim(id) {
        return Some((
            ErrorCode::ViewOnly,
            "input refused; someone else controls the desktop (at the origin or another relay)"
                .into(),
        ));
    }
    if !control.input.available() {
        return Some((
            ErrorCode::InputUnavailable,
            "input unavailable; the origin's desktop cannot take input now".into(),
        ));
    }
    for text in &request.events {
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => return Some((e.code, e.message)),
        };
        seat.touched(id);
        match seat.if_holder(id, || control.input.send(msg)) {
            None => {
                return Some((
                    ErrorCode::ViewOnly,
                    "input refused; control passed to another viewer".into(),
                ))
            }
            Some(Err(SendError::Full)) => {
                // The rest of the batch is dropped: none of its releases may be lost.
                control.input.release_all();
                return Some((
                    ErrorCode::RateLimited,
                    "input dropped; events arrive faster than the desktop takes them".into(),
                ));
            }
            Some(Err(SendError::Closed)) => {
                return Some((ErrorCode::Internal, "the input thread stopped".into()))
            }
            Some(Ok(())) => {}
        }
    }
    None
}
