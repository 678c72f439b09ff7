//! The relay's side: frames from NATS into the relayed pipeline; this relay's interest
//! to the origin; its controller's input to the origin, when the origin allows it.
//!
//! When the origin falls silent (no heartbeat for [`GONE_AFTER`]) or NATS cannot be
//! reached, viewers get an "origin unreachable" placeholder; once the origin is heard
//! again the relay asks for a keyframe and carries on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deskcast_shared::{ClientMessage, ErrorCode};
use futures_util::StreamExt as _;
use tokio::sync::{broadcast, mpsc, watch};

use super::wire::{Assembler, Kind};
use super::{Beat, InputReply, InputRequest, Subjects, Wants, BEAT_EVERY, GONE_AFTER};
use crate::pipeline::{Incoming, Inlet, Interest};

/// What the relay knows of the origin.
#[derive(Debug, Clone, Default)]
pub struct OriginState {
    /// Its last heartbeat.
    pub beat: Option<Beat>,
    /// Whether it was heard from lately and NATS is connected.
    pub reachable: bool,
}

/// What the relay's NATS task works with.
pub struct Link {
    /// The NATS connection.
    pub client: async_nats::Client,
    /// The stream's subjects.
    pub subjects: Subjects,
    /// This relay's id.
    pub relay: String,
    /// Where frames go.
    pub inlet: Inlet,
    /// What this relay's viewers want.
    pub wants: watch::Receiver<Interest>,
    /// What is known of the origin.
    pub origin: watch::Sender<OriginState>,
    /// The NATS connection coming and going.
    pub events: mpsc::Receiver<async_nats::Event>,
    /// The origin's cursor, for this relay's viewers.
    pub cursor: watch::Sender<crate::cursor::State>,
}

/// Feeds the relayed pipeline from NATS until `stopping` turns true.
pub async fn run(link: Link, mut stopping: watch::Receiver<bool>) {
    let Link {
        client,
        subjects,
        relay,
        inlet,
        mut wants,
        origin,
        mut events,
        cursor,
    } = link;
    let subscribe = async {
        Ok::<_, async_nats::SubscribeError>((
            client.subscribe(subjects.frames.clone()).await?,
            client.subscribe(subjects.whole.clone()).await?,
            client.subscribe(subjects.origin.clone()).await?,
            client.subscribe(subjects.cursor.clone()).await?,
        ))
    };
    let (mut frames, mut wholes, mut beats, mut pointer) = match subscribe.await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot subscribe to the stream");
            return;
        }
    };
    tracing::info!(subject = %subjects.frames, "relaying from NATS");
    let (mut frame_parts, mut whole_parts) = (Assembler::default(), Assembler::default());
    let mut heard: Option<Instant> = None;
    let started = Instant::now();
    let mut connected = true;
    let mut tick = tokio::time::interval(BEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut told = Interest::default();
    // Whether to say what this relay wants even though it did not change.
    let mut resend = true;
    let mut is_down = false;
    let go_down = |why: String, is_down: &mut bool| {
        if !std::mem::replace(is_down, true) {
            inlet.push(Incoming::Down(format!("origin unreachable: {why}")));
        }
        origin.send_modify(|o| o.reachable = false);
    };
    loop {
        tokio::select! {
            _ = super::stopped(&mut stopping) => break,
            msg = frames.next() => {
                let Some(msg) = msg else { break };
                match frame_parts.push(msg.payload) {
                    Ok(Some(f)) => {
                        let incoming = match f.kind {
                            Kind::Keyframe => Incoming::Keyframe(f.body),
                            _ => Incoming::Update(f.body),
                        };
                        inlet.push(incoming);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(cause = %e, "frame lost"),
                }
            }
            msg = wholes.next() => {
                let Some(msg) = msg else { break };
                if let Ok(Some(f)) = whole_parts.push(msg.payload) {
                    let Some(m) = f.body.messages.into_iter().next() else { continue };
                    if let Ok((header, _)) = deskcast_shared::FrameHeader::decode(&m) {
                        let jpeg = m.slice(usize::from(m[0])..);
                        inlet.push(Incoming::Whole(header, jpeg));
                    }
                }
            }
            msg = pointer.next() => {
                let Some(msg) = msg else { break };
                if let Ok(news) = serde_json::from_slice::<super::CursorNews>(&msg.payload) {
                    follow_cursor(&cursor, news);
                }
            }
            msg = beats.next() => {
                let Some(msg) = msg else { break };
                let Ok(beat) = serde_json::from_slice::<Beat>(&msg.payload) else { continue };
                heard = Some(Instant::now());
                if std::mem::take(&mut is_down) {
                    inlet.push(Incoming::Up);
                }
                origin.send_replace(OriginState { beat: Some(beat), reachable: true });
            }
            event = events.recv() => match event {
                Some(async_nats::Event::Disconnected) => {
                    connected = false;
                    tracing::warn!("lost the NATS server; reconnecting");
                    go_down("the NATS server cannot be reached".into(), &mut is_down);
                }
                Some(async_nats::Event::Connected) => {
                    connected = true;
                    tracing::info!("connected to NATS");
                    // Tell the origin at once what this relay needs.
                    resend = true;
                }
                Some(_) => {}
                None => {}
            },
            changed = wants.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tick.tick() => {
                let silent = heard.map_or(started.elapsed(), |t| t.elapsed());
                if silent >= GONE_AFTER && connected {
                    go_down(format!("no word from the origin for {} s", silent.as_secs()), &mut is_down);
                }
                // Once a second, so the origin knows this relay is there.
                resend = true;
            }
        }
        let now = *wants.borrow_and_update();
        if now != told || std::mem::take(&mut resend) {
            told = now;
            let w = Wants {
                relay: relay.clone(),
                ws: now.ws,
                whole: now.whole,
                key: now.key,
            };
            if let Ok(json) = serde_json::to_vec(&w) {
                let _ = client.publish(subjects.interest.clone(), json.into()).await;
            }
        }
    }
}

/// The origin's cursor news into this relay's cursor state: a new shape is kept; a
/// position under a shape not seen yet waits for it.
fn follow_cursor(cursor: &watch::Sender<crate::cursor::State>, news: super::CursorNews) {
    use base64::Engine as _;
    let mut shape = cursor.borrow().shape.clone();
    if let Some(bits) = news.shape {
        let rgba = base64::engine::general_purpose::STANDARD
            .decode(bits.rgba.as_bytes())
            .unwrap_or_default();
        let fits = bits.width <= 256
            && bits.height <= 256
            && rgba.len() == usize::from(bits.width) * usize::from(bits.height) * 4;
        if fits && shape.as_ref().is_none_or(|s| s.serial != news.serial) {
            shape = Some(Arc::new(crate::cursor::Shape {
                serial: news.serial,
                width: bits.width,
                height: bits.height,
                hot_x: bits.hot_x,
                hot_y: bits.hot_y,
                rgba,
            }));
        }
    }
    let Some(shape) = shape.filter(|s| s.serial == news.serial) else {
        return;
    };
    let state = crate::cursor::State {
        shape: Some(shape),
        position: news.at,
    };
    cursor.send_if_modified(|now| {
        let changed = *now != state;
        *now = state;
        changed
    });
}

/// Input for the origin's desktop from this relay's controller, over NATS: events go
/// in order, a batch per request, and the origin's answer comes back as errors for
/// the session.
pub struct RemoteInput {
    tx: mpsc::Sender<Outgoing>,
    origin: watch::Receiver<OriginState>,
    errors: broadcast::Sender<(ErrorCode, String)>,
    tap: broadcast::Sender<ClientMessage>,
}

enum Outgoing {
    Event(ClientMessage),
    Release,
}

/// Events waiting for the origin at most; more are refused (`rate_limited`).
const QUEUE: usize = 256;

/// Events sent in one request at most.
const BATCH: usize = 64;

/// How often, and how far apart, a release is sent again until the origin has it
/// (the origin lets go of a relay's seat anyway once it is silent for [`GONE_AFTER`]).
const RELEASE_TRIES: usize = 30;
const RELEASE_AGAIN: Duration = Duration::from_millis(500);

/// How long the origin gets to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

impl RemoteInput {
    /// Starts sending this relay's input to the origin.
    pub fn start(
        client: async_nats::Client,
        subject: String,
        relay: String,
        origin: watch::Receiver<OriginState>,
    ) -> Arc<Self> {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let (errors, _) = broadcast::channel(16);
        let (tap, _) = broadcast::channel(QUEUE);
        let remote = Arc::new(RemoteInput {
            tx,
            origin,
            errors: errors.clone(),
            tap: tap.clone(),
        });
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                // Events before a release go first, then the release.
                let mut events = Vec::new();
                for o in batch {
                    match o {
                        Outgoing::Event(m) => {
                            let _ = tap.send(m.clone());
                            events.push(m.to_json());
                        }
                        Outgoing::Release => {
                            let request = InputRequest {
                                relay: relay.clone(),
                                events: std::mem::take(&mut events),
                                release: false,
                            };
                            ask(&client, &subject, request, &errors).await;
                            let release = InputRequest {
                                relay: relay.clone(),
                                events: Vec::new(),
                                release: true,
                            };
                            // Until the origin has it: a lost release leaves a key held.
                            for _ in 0..RELEASE_TRIES {
                                if ask(&client, &subject, release.clone(), &errors).await {
                                    break;
                                }
                                tokio::time::sleep(RELEASE_AGAIN).await;
                            }
                        }
                    }
                }
                if !events.is_empty() {
                    let request = InputRequest {
                        relay: relay.clone(),
                        events,
                        release: false,
                    };
                    ask(&client, &subject, request, &errors).await;
                }
            }
        });
        remote
    }

    /// Whether the origin takes this relay's input now.
    pub fn available(&self) -> bool {
        let o = self.origin.borrow();
        o.reachable && o.beat.as_ref().is_some_and(|b| b.relay_control && b.input)
    }

    /// Whether the origin lets relays' controllers control at all (`--relay-control`).
    pub fn may_control(&self) -> bool {
        self.origin
            .borrow()
            .beat
            .as_ref()
            .is_some_and(|b| b.relay_control)
    }

    /// Whether the origin was heard from at all.
    pub fn heard(&self) -> bool {
        self.origin.borrow().beat.is_some()
    }

    /// Queues an event for the origin; never blocks.
    pub fn send(&self, msg: ClientMessage) -> Result<(), crate::input::SendError> {
        self.tx.try_send(Outgoing::Event(msg)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => crate::input::SendError::Full,
            mpsc::error::TrySendError::Closed(_) => crate::input::SendError::Closed,
        })
    }

    /// Lets go of everything held at the origin, after the events already queued.
    pub fn release_all(&self) {
        if self.tx.try_send(Outgoing::Release).is_err() {
            // A full queue must not keep a key held: send the release by itself.
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(Outgoing::Release).await;
            });
        }
    }

    /// The origin's refusals, for the session whose events they were.
    pub fn errors(&self) -> broadcast::Receiver<(ErrorCode, String)> {
        self.errors.subscribe()
    }

    /// Every event sent on to the origin (for tests).
    pub fn tap(&self) -> broadcast::Receiver<ClientMessage> {
        self.tap.subscribe()
    }
}

/// Sends `request` and waits for the answer; whether the origin answered. A refusal
/// goes to `errors`.
async fn ask(
    client: &async_nats::Client,
    subject: &str,
    request: InputRequest,
    errors: &broadcast::Sender<(ErrorCode, String)>,
) -> bool {
    if request.events.is_empty() && !request.release {
        return true;
    }
    let Ok(json) = serde_json::to_vec(&request) else {
        return true;
    };
    let answer = tokio::time::timeout(
        ANSWER_WITHIN,
        client.request(subject.to_string(), json.into()),
    )
    .await;
    let answered = matches!(answer, Ok(Ok(_)));
    let error = match answer {
        Ok(Ok(msg)) => match serde_json::from_slice::<InputReply>(&msg.payload) {
            Ok(reply) => reply.error,
            Err(_) => Some((
                ErrorCode::Internal,
                "unreadable answer from the origin".into(),
            )),
        },
        Ok(Err(e)) => Some((
            ErrorCode::InputUnavailable,
            format!("input unavailable; the origin did not take it ({e})"),
        )),
        Err(_) => Some((
            ErrorCode::InputUnavailable,
            "input unavailable; the origin did not answer in time".into(),
        )),
    };
    if let Some(e) = error {
        tracing::debug!(code = ?e.0, message = %e.1, "the origin refused input");
        let _ = errors.send(e);
    }
    answered
}
