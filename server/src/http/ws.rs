//! `GET /ws`: `hello`, then binary frames down; JSON input up; JSON control both ways.
//!
//! Per socket a send task (frames and control messages) and a receive task (client
//! messages) run side by side; when one ends, the other is aborted.
//!
//! The upgrade happens only after [`super::guard`] let the request in with a token, so
//! no unauthenticated socket ever exists. Each session takes a viewer seat; a message
//! over [`MAX_MESSAGE_BYTES`] closes it with 1009; input beyond `--max-input-rate` is
//! dropped with one `rate_limited` error per burst.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::Extension;
use deskcast_shared::{
    ClientMessage, DragPhase, ErrorCode, Role, ServerMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::flow::Flow;
use super::guard::Access;
use super::AppState;
use crate::capture::Geometry;
use crate::cursor;
use crate::input::{key_for, Input, SendError};
use crate::limits::{Held, InputBudget, Verdict, ViewerSlot};
use crate::pipeline::SourceState;

/// WebSocket close code for "message too big".
const CLOSE_TOO_BIG: u16 = 1009;

/// WebSocket close code for "policy violation".
const CLOSE_POLICY: u16 = 1008;

/// Pings a client may send a second (in bursts of as many); more close the socket.
const PINGS_PER_SECOND: u32 = 10;

/// WebSocket close code for "going away": the server shuts down.
const CLOSE_GOING_AWAY: u16 = 1001;

/// How often flow control looks at a stalled viewer and sends `stats`.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// How often the server pings each client.
const PING_EVERY: Duration = Duration::from_secs(10);

/// A client silent this long (no pong, no message) is taken for gone.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest message tungstenite reads whole: a little over [`MAX_MESSAGE_BYTES`], so an
/// oversized message is refused as it arrives, not buffered first. Anything over
/// [`MAX_MESSAGE_BYTES`] closes the socket with 1009.
const READ_LIMIT: usize = MAX_MESSAGE_BYTES * 2;

/// Most bytes waiting to be written to one client (frames, and the pongs tungstenite
/// answers pings with): a client that pings but never reads cannot make the server
/// buffer without bound. Room for one rectangle of a large screen at quality 90 on
/// top of [`FLUSH_AT`].
const WRITE_LIMIT: usize = 8 * 1024 * 1024;

/// A frame's rectangles are written together up to this many bytes, then flushed
/// before the next, so the write buffer stays far below [`WRITE_LIMIT`].
const FLUSH_AT: usize = 1024 * 1024;

/// Upgrades the connection and runs the session, with the role the token gave.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(Access(role)): Extension<Access>,
    end: Option<Extension<super::guard::SessionEnd>>,
) -> Response {
    let Some(seat) = app.viewers.try_take(role) else {
        tracing::warn!(%peer, "refused: too many viewers");
        return super::too_many_viewers();
    };
    // At a relay, control is the origin's to give (`--relay-control`).
    let may_control = role == Role::Control && app.input.as_ref().is_none_or(Input::may_control);
    ws.max_message_size(READ_LIMIT)
        .max_frame_size(READ_LIMIT)
        .max_write_buffer_size(WRITE_LIMIT)
        .on_upgrade(move |socket| {
            let end = end.map(|Extension(e)| e.0);
            session(socket, app, may_control, seat, end)
                .instrument(tracing::info_span!("ws", %peer))
        })
}

fn too_big() -> Message {
    Message::Close(Some(CloseFrame {
        code: CLOSE_TOO_BIG,
        reason: "message too large".into(),
    }))
}

/// Whether a read error is tungstenite refusing a message over [`READ_LIMIT`].
fn is_too_big(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Message too long") || text.contains("Space limit exceeded")
}

fn text(msg: &ServerMessage) -> Message {
    Message::Text(msg.to_json().into())
}

fn error(code: ErrorCode, message: impl Into<String>) -> Message {
    text(&ServerMessage::Error {
        code,
        message: message.into(),
    })
}

/// Sends `msg` without waiting; a client that does not read its errors loses them,
/// not its connection.
fn tell(tx: &mpsc::Sender<Message>, msg: Message) {
    let _ = tx.try_send(msg);
}

/// Holds the control seat for a session: on drop (however the session ends) it
/// releases every held button and key, then frees the seat, if this session holds it.
struct SeatGuard {
    app: AppState,
    id: u64,
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        self.app.seat.withdraw(self.id);
        // Releasing the seat lets go of what this session held (the seat's handover).
        self.app.seat.release(self.id);
    }
}

/// The next refusal of input from the origin (at a relay); `None` once there are no
/// more; never without a source of them.
async fn refused(
    rx: &mut Option<tokio::sync::broadcast::Receiver<(ErrorCode, String)>>,
) -> Option<(ErrorCode, String)> {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(r) => return Some(r),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// What one connection was last told about the cursor.
#[derive(Default)]
struct SentCursor {
    serial: Option<u32>,
    pointer: Option<(f64, f64)>,
}

impl SentCursor {
    /// The messages that bring the connection up to `state`: the shape when it is
    /// new, and for a view-only connection the pointer when it moved (the controller
    /// has its own pointer).
    fn news(
        &mut self,
        state: &cursor::State,
        geometry: Geometry,
        controlling: bool,
    ) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        if let Some(shape) = &state.shape {
            if self.serial != Some(shape.serial) {
                self.serial = Some(shape.serial);
                out.push(shape.message());
            }
        }
        if !controlling {
            if let Some(at) = state.fraction(geometry) {
                if self.pointer != Some(at) {
                    self.pointer = Some(at);
                    out.push(ServerMessage::Pointer { x: at.0, y: at.1 });
                }
            }
        } else {
            self.pointer = None;
        }
        out
    }
}

/// Resolves when the clipboard changed (`true`) or its thread stopped (`false`); never
/// without a clipboard.
async fn clipboard_changed(
    rx: &mut Option<watch::Receiver<Option<crate::clipboard::Text>>>,
) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// The controller picks another monitor (`None`: all of them).
fn switch_monitor(app: &AppState, controlling: bool, index: Option<u32>) -> Option<Message> {
    use crate::capture::monitors::MonitorChoice;
    let Some(monitors) = &app.monitors else {
        return Some(error(
            ErrorCode::NoDesktop,
            "monitor refused; this source is not a desktop",
        ));
    };
    if !controlling {
        return Some(error(
            ErrorCode::ViewOnly,
            "monitor refused; only the controller picks the monitor",
        ));
    }
    let choice = match index {
        Some(i) => MonitorChoice::Index(i as usize),
        None => MonitorChoice::All,
    };
    match monitors.set(choice) {
        Ok(()) => {
            tracing::info!(%choice, "switching monitor");
            app.pipeline.reopen_soon();
            None
        }
        Err(why) => Some(error(
            ErrorCode::OutOfRange,
            format!("monitor refused; {why}"),
        )),
    }
}

/// A clipboard text arriving in pieces from the client.
#[derive(Default)]
struct Paste {
    text: String,
    /// The text went over the limit: the rest of its pieces are dropped.
    refused: bool,
}

impl Paste {
    /// Takes one piece; the last one sets the desktop's clipboard. Returns the error
    /// to send, if any.
    fn piece(
        &mut self,
        app: &AppState,
        controlling: bool,
        text: &str,
        more: bool,
    ) -> Option<Message> {
        let Some(clipboard) = &app.clipboard else {
            return Some(error(
                ErrorCode::NoDesktop,
                "clipboard refused; this source is not an X desktop",
            ));
        };
        if !controlling {
            // Pieces from before control was lost are dropped too.
            *self = Paste::default();
            return Some(error(
                ErrorCode::ViewOnly,
                "clipboard refused; only the controller sets the remote clipboard",
            ));
        }
        let mut reply = None;
        if !self.refused {
            if self.text.len() + text.len() > crate::clipboard::MAX_BYTES {
                self.refused = true;
                self.text = String::new();
                reply = Some(error(
                    ErrorCode::TooLarge,
                    "clipboard refused; the text is over 1 MiB",
                ));
            } else {
                self.text.push_str(text);
            }
        }
        if !more {
            if !std::mem::take(&mut self.refused) {
                clipboard.set(std::mem::take(&mut self.text));
            }
            self.text = String::new();
        }
        reply
    }
}

/// Whether a message lets go of something held: it must never be dropped.
fn is_release(msg: &ClientMessage) -> bool {
    matches!(
        msg,
        ClientMessage::Key { down: false, .. }
            | ClientMessage::Button { down: false, .. }
            | ClientMessage::Drag {
                phase: DragPhase::End,
                ..
            }
    )
}

/// Resolves when the session the socket was opened with ends (sign-out); never for a
/// socket opened with a token.
async fn signed_out(end: &mut Option<watch::Receiver<()>>) {
    match end {
        Some(rx) => while rx.changed().await.is_ok() {},
        None => std::future::pending().await,
    }
}

/// Sends a Close with `code` and lets the socket end cleanly: the reader keeps reading
/// until the client answers the Close (data left unread would make the kernel reset
/// the connection, and the client lose the Close frame), for at most a second.
async fn close_gracefully(
    control: &mpsc::Sender<Message>,
    code: u16,
    reason: &'static str,
    send_task: &mut tokio::task::JoinHandle<()>,
    recv_task: &mut tokio::task::JoinHandle<()>,
) {
    let _ = control.try_send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })));
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = (&mut *send_task).await;
        let _ = (&mut *recv_task).await;
    })
    .await;
    send_task.abort();
    recv_task.abort();
}

/// WebSocket close code for a socket whose session was signed out.
const CLOSE_SIGNED_OUT: u16 = 4001;

async fn session(
    socket: WebSocket,
    app: AppState,
    may_control: bool,
    _slot: ViewerSlot,
    mut end: Option<watch::Receiver<()>>,
) {
    // Shutdown waits for this session to end (and its held input to be released).
    let _tracked = app.sessions.token();
    let _counted = app
        .metrics
        .viewer("ws", if may_control { "control" } else { "view" });
    let metrics = app.metrics.clone();
    let id = app.seat.new_id();
    // Watch the seat before trying it, so a release in between is never missed.
    let mut seat = app.seat.watch();
    seat.mark_changed();
    let guard = SeatGuard {
        app: app.clone(),
        id,
    };
    let controlling = Arc::new(AtomicBool::new(may_control && app.seat.try_claim(id)));
    // Whether this session takes a free seat by itself: not after it gave control up
    // (until it asks again), or "give up control" would take it straight back.
    let wants_control = Arc::new(AtomicBool::new(may_control));
    let (send_wants, recv_wants) = (wants_control.clone(), wants_control);
    let role = |c: bool| if c { Role::Control } else { Role::View };
    tracing::info!(id, role = ?role(controlling.load(Ordering::SeqCst)), "viewer connected");
    let mut viewer = app.pipeline.subscribe();
    let mut geometry_rx = app.pipeline.geometry_watch();
    let mut geometry = *geometry_rx.borrow_and_update();
    let (mut sink, mut stream) = socket.split();
    let hello = ServerMessage::Hello {
        width: geometry.width,
        height: geometry.height,
        role: role(controlling.load(Ordering::SeqCst)),
        input: app.input.as_ref().is_some_and(Input::available),
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        id,
        may_control,
    };
    if sink.send(text(&hello)).await.is_err() {
        return;
    }
    // Who controls, now and (from the seat watch below) whenever it changes.
    let mut told_holder = app.seat.watch().borrow().holder;
    let mut told_asker = None;
    if sink
        .send(text(&ServerMessage::Controller { id: told_holder }))
        .await
        .is_err()
    {
        return;
    }
    if let Some(list) = app.monitors.as_ref().and_then(|m| m.message()) {
        if sink.send(text(&list)).await.is_err() {
            return;
        }
    }
    let monitors = app.monitors.clone();

    let (control_tx, mut control_rx) = mpsc::channel::<Message>(16);
    let control_tx_stop = control_tx.clone();
    // Acks are cumulative: when this fills up, dropping one loses nothing.
    let (ack_tx, mut ack_rx) = mpsc::channel::<u64>(64);
    let (send_seat, send_controlling) = (app.seat.clone(), controlling.clone());
    let quality = app.quality;
    let mut cursor = app.cursor.as_ref().map(|w| w.subscribe());
    if let Some(rx) = cursor.as_mut() {
        // The shape goes out right after `hello`.
        rx.mark_changed();
    }
    let mut sent_cursor = SentCursor::default();
    // The remote clipboard: to the controller, and to viewers with --view-clipboard.
    let mut clip = app.clipboard.as_ref().map(|c| c.watch());
    if let Some(rx) = clip.as_mut() {
        if rx.borrow().is_some() {
            rx.mark_changed();
        }
    }
    let view_clipboard = app.view_clipboard;
    let mut sent_clip = 0u64;
    let mut source = app.pipeline.source_state();
    if !source.borrow().is_up() {
        // A viewer joining while the source is down hears why right after `hello`.
        source.mark_changed();
    }
    let mut answered = app.pipeline.answered();
    // At a relay, the origin's refusals of this relay's input come later.
    let mut refusals = app.input.as_ref().and_then(Input::refusals);
    // The input `seq` of the newest update sent to this viewer.
    let mut sent_input = 0u64;
    let mut send_task = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval(STATS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flow = Flow::new(quality, Instant::now());
        loop {
            tokio::select! {
                biased;
                msg = control_rx.recv() => {
                    let Some(msg) = msg else { break };
                    if matches!(msg, Message::Close(_)) {
                        // Send (or, after the client's close, flush tungstenite's queued
                        // reply) and end the handshake cleanly.
                        let _ = sink.send(msg).await;
                        let _ = sink.close().await;
                        break;
                    }
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                }
                changed = seat.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let st = *seat.borrow_and_update();
                    if may_control && st.holder.is_none() && send_wants.load(Ordering::SeqCst) {
                        // Free: the first control session to see it takes it.
                        send_seat.try_claim(id);
                    }
                    let mut news = Vec::new();
                    let now = send_seat.holds(id);
                    if now != send_controlling.swap(now, Ordering::SeqCst) {
                        tracing::info!(id, control = now, "role changed");
                        news.push(ServerMessage::Role { role: role(now) });
                        if now {
                            // The new controller gets the clipboard as it is.
                            if let Some(rx) = clip.as_mut() {
                                rx.mark_changed();
                            }
                        }
                    }
                    let st = *seat.borrow();
                    if st.holder != told_holder {
                        told_holder = st.holder;
                        news.push(ServerMessage::Controller { id: st.holder });
                    }
                    if now && st.asked_by.is_some() && st.asked_by != told_asker {
                        news.push(ServerMessage::ControlRequested {
                            by: st.asked_by.unwrap_or_default(),
                            grant_after_ms: send_seat.grant_after().as_millis() as u64,
                        });
                    }
                    told_asker = st.asked_by;
                    let mut failed = false;
                    for msg in news {
                        if sink.send(text(&msg)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                ack = ack_rx.recv() => {
                    let Some(seq) = ack else { break };
                    flow.acked(seq, Instant::now());
                }
                // The window filled up, and an update answering input came out: look again.
                changed = answered.changed(), if !flow.may_send() => {
                    if changed.is_err() {
                        break;
                    }
                }
                // Only while the window has room (one more for the answer to input):
                // meanwhile changes merge (see Flow).
                update = viewer.next(flow.quality()),
                    if flow.may_send()
                        || (*answered.borrow() > sent_input && flow.may_send_urgent()) => {
                    let Some(update) = update else { break };
                    if update.messages.is_empty() {
                        continue;
                    }
                    // A frame's rectangles in as few writes as [`FLUSH_AT`] allows.
                    let mut failed = false;
                    let mut buffered = 0;
                    for message in &update.messages {
                        if buffered > 0 && buffered + message.len() > FLUSH_AT {
                            if sink.flush().await.is_err() {
                                failed = true;
                                break;
                            }
                            buffered = 0;
                        }
                        buffered += message.len();
                        if sink.feed(Message::Binary(message.clone())).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break;
                    }
                    flow.sent(update.seq, update.bytes(), Instant::now());
                    let ws = crate::metrics::KindLabels { kind: "ws" };
                    metrics.frames_sent.get_or_create(&ws).inc();
                    metrics
                        .sent_bytes
                        .get_or_create(&ws)
                        .inc_by(update.bytes() as u64);
                    if let Some(age) = update.age() {
                        metrics.frame_age.observe(age);
                    }
                    sent_input = sent_input.max(update.input_seq());
                }
                changed = cursor::changed(&mut cursor) => {
                    if !changed {
                        cursor = None;
                        continue;
                    }
                    let Some(rx) = cursor.as_mut() else { continue };
                    let state = rx.borrow_and_update().clone();
                    let controlling = send_controlling.load(Ordering::SeqCst);
                    let mut failed = false;
                    for msg in sent_cursor.news(&state, geometry, controlling) {
                        if sink.send(text(&msg)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                changed = clipboard_changed(&mut clip) => {
                    if !changed {
                        clip = None;
                        continue;
                    }
                    let Some(rx) = clip.as_mut() else { continue };
                    let latest = rx.borrow_and_update().clone();
                    let allowed = view_clipboard || send_controlling.load(Ordering::SeqCst);
                    if let Some(t) = latest.filter(|t| allowed && t.serial != sent_clip) {
                        sent_clip = t.serial;
                        let msg = ServerMessage::Clipboard { text: t.text.to_string() };
                        if sink.send(text(&msg)).await.is_err() {
                            break;
                        }
                    }
                }
                changed = geometry_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    geometry = *geometry_rx.borrow_and_update();
                    let resize = ServerMessage::Resize {
                        width: geometry.width,
                        height: geometry.height,
                    };
                    if sink.send(text(&resize)).await.is_err() {
                        break;
                    }
                    // Another monitor may be streamed now: the picker follows.
                    if let Some(list) = monitors.as_ref().and_then(|m| m.message()) {
                        if sink.send(text(&list)).await.is_err() {
                            break;
                        }
                    }
                }
                refusal = refused(&mut refusals) => {
                    let Some((code, message)) = refusal else {
                        refusals = None;
                        continue;
                    };
                    if send_controlling.load(Ordering::SeqCst)
                        && sink.send(error(code, message)).await.is_err()
                    {
                        break;
                    }
                }
                changed = source.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let msg = source_message(&source.borrow_and_update());
                    if sink.send(text(&msg)).await.is_err() {
                        break;
                    }
                }
                _ = tick.tick() => {
                    // Asked for control: it passes once the controller stays idle.
                    send_seat.grant_if_idle(id);
                    flow.tick(Instant::now());
                    metrics.viewer_quality.observe(f64::from(flow.quality()));
                    if flow.is_acking() {
                        let (bytes, fps) = flow.rates();
                        let stats = ServerMessage::Stats {
                            rtt_ms: flow.rtt().map_or(0.0, |d| d.as_secs_f64() * 1e3),
                            kbps: bytes * 8.0 / 1e3,
                            quality: flow.quality(),
                            fps,
                        };
                        if sink.send(text(&stats)).await.is_err() {
                            break;
                        }
                    }
                }
                _ = ping.tick() => {
                    // Keeps a still screen's socket proving it is alive (see READ_TIMEOUT).
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let recv_app = app.clone();
    let mut budget = InputBudget::new(app.max_input_rate, Instant::now());
    let mut held = Held::default();
    let mut pings = InputBudget::new(PINGS_PER_SECOND, Instant::now());
    let mut paste = Paste::default();
    let mut recv_task = tokio::spawn(async move {
        // The client's own pings do not count as signs of life: only its pongs and
        // its messages do (a client that only pings and never reads is not alive).
        let mut alive_until = tokio::time::Instant::now() + READ_TIMEOUT;
        loop {
            // A client that answers neither pings nor anything else for this long is gone
            // (a laptop that slept, a network that changed): end the session, so its
            // seat and held buttons are released.
            let next = match tokio::time::timeout_at(alive_until, stream.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => {
                    tracing::info!("no reply to pings; closing");
                    break;
                }
            };
            if matches!(next, Ok(Message::Ping(_))) {
                // Each ping makes tungstenite queue a pong: a client that pings and never
                // reads makes the server hold them. Browsers never ping; tools rarely.
                if pings.take(Instant::now()) != Verdict::Accept {
                    tracing::warn!("ping flood; closing");
                    let _ = control_tx.try_send(Message::Close(Some(CloseFrame {
                        code: CLOSE_POLICY,
                        reason: "too many pings".into(),
                    })));
                    break;
                }
            } else {
                alive_until = tokio::time::Instant::now() + READ_TIMEOUT;
            }
            let msg = match next {
                Ok(msg) => msg,
                Err(e) if is_too_big(&e) => {
                    tracing::warn!(cause = %e, "message too large; closing");
                    let _ = control_tx.send(too_big()).await;
                    break;
                }
                Err(e) => {
                    tracing::debug!(cause = %e, "socket read failed");
                    break;
                }
            };
            let reply = match msg {
                Message::Text(t) if t.len() > MAX_MESSAGE_BYTES => {
                    tracing::warn!(bytes = t.len(), "message too large; closing");
                    let _ = control_tx.send(too_big()).await;
                    break;
                }
                Message::Binary(b) if b.len() > MAX_MESSAGE_BYTES => {
                    tracing::warn!(bytes = b.len(), "message too large; closing");
                    let _ = control_tx.send(too_big()).await;
                    break;
                }
                Message::Text(t) => match ClientMessage::parse(t.as_str()) {
                    Err(e) => {
                        tracing::debug!(cause = %e, "bad client message");
                        Some(error(e.code, e.message))
                    }
                    // Not input: any role may ack, and acks skip the input budget.
                    Ok(ClientMessage::Ack { frame, .. }) => {
                        let _ = ack_tx.try_send(frame);
                        None
                    }
                    Ok(ClientMessage::Clipboard { text, more }) => {
                        paste.piece(&recv_app, recv_app.seat.holds(id), &text, more)
                    }
                    // A switch asks the X server for its monitors: input's budget applies.
                    Ok(ClientMessage::Monitor { index }) => match budget.take(Instant::now()) {
                        Verdict::Accept => switch_monitor(&recv_app, recv_app.seat.holds(id), index),
                        Verdict::DropAndTell => Some(error(
                            ErrorCode::RateLimited,
                            "monitor switch dropped; more events per second than --max-input-rate allows",
                        )),
                        Verdict::Drop => None,
                    },
                    Ok(ClientMessage::RequestControl) if !may_control => Some(error(
                        ErrorCode::ViewOnly,
                        "control refused; this connection came with the view token",
                    )),
                    Ok(ClientMessage::RequestControl) => {
                        recv_wants.store(true, Ordering::SeqCst);
                        recv_app.seat.request(id);
                        None
                    }
                    Ok(ClientMessage::ReleaseControl) => {
                        if recv_app.seat.holds(id) {
                            recv_wants.store(false, Ordering::SeqCst);
                        }
                        recv_app.seat.release(id);
                        None
                    }
                    // Releases of what this client holds skip the rate budget: dropping
                    // one would leave a key held. Any other release is input like any.
                    Ok(m) if held.releases(&m) => handle_input(&recv_app, id, m),
                    Ok(m) => match budget.take(Instant::now()) {
                        Verdict::Accept => {
                            held.accepted(&m);
                            recv_app.seat.touched(id);
                            let reply = handle_input(&recv_app, id, m);
                            let outcome = if reply.is_some() {
                                "refused"
                            } else {
                                "accepted"
                            };
                            recv_app
                                .metrics
                                .input
                                .get_or_create(&crate::metrics::InputLabels { outcome })
                                .inc();
                            reply
                        }
                        Verdict::DropAndTell => {
                            tracing::debug!("input over the rate; dropping this burst");
                            Some(error(
                                ErrorCode::RateLimited,
                                "input dropped; more events per second than --max-input-rate allows",
                            ))
                        }
                        Verdict::Drop => None,
                    },
                },
                Message::Binary(_) => match budget.take(Instant::now()) {
                    Verdict::Accept | Verdict::DropAndTell => Some(error(
                        ErrorCode::BadMessage,
                        "binary messages are not accepted; send JSON text",
                    )),
                    Verdict::Drop => None,
                },
                Message::Close(_) => {
                    // Answer the close handshake, so the client sees a clean close.
                    let _ = control_tx.send(Message::Close(None)).await;
                    break;
                }
                Message::Ping(_) | Message::Pong(_) => None,
            };
            if let Some(reply) = reply {
                tell(&control_tx, reply);
            }
        }
    });

    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => {
            // Give the send task a moment to flush a close frame, then stop it.
            let _ = tokio::time::timeout(Duration::from_millis(200), &mut send_task).await;
            send_task.abort();
        }
        _ = signed_out(&mut end) => {
            close_gracefully(&control_tx_stop, CLOSE_SIGNED_OUT, "signed out", &mut send_task, &mut recv_task).await;
        }
        _ = app.stopped() => {
            // The client hears why: 1001, going away.
            close_gracefully(&control_tx_stop, CLOSE_GOING_AWAY, "server shutting down", &mut send_task, &mut recv_task).await;
        }
    }
    // Wait until both tasks are really gone, so neither can take the seat after the
    // guard has let it go.
    if !send_task.is_finished() {
        let _ = send_task.await;
    }
    if !recv_task.is_finished() {
        let _ = recv_task.await;
    }
    drop(guard);
    tracing::info!(id, "viewer disconnected");
}

/// The `source` message that tells a viewer about `state`.
fn source_message(state: &SourceState) -> ServerMessage {
    match state {
        SourceState::Up => ServerMessage::Source {
            up: true,
            message: "the source is back".into(),
        },
        SourceState::Down(why) => ServerMessage::Source {
            up: false,
            message: format!("{why}; retrying every second"),
        },
    }
}

fn handle_input(app: &AppState, id: u64, msg: ClientMessage) -> Option<Message> {
    let controlling = app.seat.holds(id);
    let Some(input) = &app.input else {
        return Some(error(
            ErrorCode::NoDesktop,
            "input refused; this source is not a desktop, there is nothing to control",
        ));
    };
    if !controlling {
        return Some(error(
            ErrorCode::ViewOnly,
            "input refused; this connection is view-only (someone else has control, or you used the view token)",
        ));
    }
    if !input.available() {
        if is_release(&msg) {
            // A desktop here is re-opened fresh; an origin's (at a relay) is not: let
            // go of everything there as soon as it can be reached.
            input.release_all();
            return None;
        }
        return Some(error(
            ErrorCode::InputUnavailable,
            "input unavailable; the desktop cannot take input now (see the server log)",
        ));
    }
    if let ClientMessage::Key { code, key, .. } = &msg {
        if key_for(code, key.as_deref()).is_none() {
            return Some(error(
                ErrorCode::OutOfRange,
                format!("unknown key code {code:?}; send it as text instead"),
            ));
        }
    }
    let release = is_release(&msg);
    // Queued only while this session still holds the seat (see Seat::if_holder).
    let Some(sent) = app.seat.if_holder(id, || input.send(msg)) else {
        return Some(error(
            ErrorCode::ViewOnly,
            "input refused; control passed to another viewer",
        ));
    };
    match sent {
        Ok(()) => None,
        Err(SendError::Full) => {
            if release {
                // The queue is full, but a release must not be lost: let go of everything.
                input.release_all();
            }
            Some(error(
                ErrorCode::RateLimited,
                "input dropped; events arrive faster than the desktop takes them",
            ))
        }
        Err(SendError::Closed) => Some(error(
            ErrorCode::Internal,
            "input unavailable; the input thread stopped",
        )),
    }
}
