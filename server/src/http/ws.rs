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
    ClientMessage, ErrorCode, Role, ServerMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::guard::Access;
use super::AppState;
use crate::input::{key_for_code, SendError};
use crate::limits::{InputBudget, Verdict, ViewerSlot};

/// WebSocket close code for "message too big".
const CLOSE_TOO_BIG: u16 = 1009;

/// Largest message tungstenite reads whole. Anything over [`MAX_MESSAGE_BYTES`] closes
/// the socket with 1009: read whole up to here, so the client gets the close frame
/// cleanly; cut off by tungstenite beyond, and closed with 1009 all the same.
const READ_LIMIT: usize = MAX_MESSAGE_BYTES * 512;

/// Upgrades the connection and runs the session, with the role the token gave.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(Access(role)): Extension<Access>,
) -> Response {
    let Some(seat) = app.viewers.try_take() else {
        tracing::warn!(%peer, "refused: too many viewers");
        return super::too_many_viewers();
    };
    let may_control = role == Role::Control;
    ws.max_message_size(READ_LIMIT)
        .max_frame_size(READ_LIMIT)
        .on_upgrade(move |socket| {
            session(socket, app, may_control, seat).instrument(tracing::info_span!("ws", %peer))
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

async fn session(socket: WebSocket, app: AppState, may_control: bool, _seat: ViewerSlot) {
    let id = app.seat.new_id();
    let controlling = Arc::new(AtomicBool::new(may_control && app.seat.try_claim(id)));
    let role = |c: bool| if c { Role::Control } else { Role::View };
    tracing::info!(id, role = ?role(controlling.load(Ordering::SeqCst)), "viewer connected");
    let mut viewer = app.pipeline.subscribe();
    let geometry = app.pipeline.geometry();
    let (mut sink, mut stream) = socket.split();
    let hello = ServerMessage::Hello {
        width: geometry.width,
        height: geometry.height,
        role: role(controlling.load(Ordering::SeqCst)),
        input: app.input.is_some(),
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if sink.send(text(&hello)).await.is_err() {
        return;
    }

    let (control_tx, mut control_rx) = mpsc::channel::<Message>(16);
    let mut seat = app.seat.watch();
    let (send_seat, send_controlling) = (app.seat.clone(), controlling.clone());
    let mut send_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                msg = control_rx.recv() => {
                    let Some(msg) = msg else { break };
                    let closing = matches!(msg, Message::Close(_));
                    if sink.send(msg).await.is_err() || closing {
                        break;
                    }
                }
                changed = seat.changed(), if may_control && !send_controlling.load(Ordering::SeqCst) => {
                    if changed.is_err() {
                        break;
                    }
                    if seat.borrow_and_update().is_none() && send_seat.try_claim(id) {
                        send_controlling.store(true, Ordering::SeqCst);
                        tracing::info!(id, "viewer got control");
                        if sink.send(text(&ServerMessage::Role { role: Role::Control })).await.is_err() {
                            break;
                        }
                    }
                }
                frame = viewer.next() => {
                    let Some(frame) = frame else { break };
                    if sink.send(Message::Binary(frame.ws_message.clone())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let (recv_app, recv_controlling) = (app.clone(), controlling.clone());
    let mut budget = InputBudget::new(app.max_input_rate, Instant::now());
    let mut recv_task = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let msg = match msg {
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
            match msg {
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
                Message::Text(_) | Message::Binary(_) => match budget.take(Instant::now()) {
                    Verdict::Accept => {}
                    Verdict::DropAndTell => {
                        tracing::debug!("input over the rate; dropping this burst");
                        tell(
                            &control_tx,
                            error(
                                ErrorCode::RateLimited,
                                "input dropped; more events per second than --max-input-rate allows",
                            ),
                        );
                        continue;
                    }
                    Verdict::Drop => continue,
                },
                _ => {}
            }
            match msg {
                Message::Text(t) => {
                    if let Some(reply) = handle_text(
                        &recv_app,
                        recv_controlling.load(Ordering::SeqCst),
                        t.as_str(),
                    ) {
                        tell(&control_tx, reply);
                    }
                }
                Message::Binary(_) => tell(
                    &control_tx,
                    error(
                        ErrorCode::BadMessage,
                        "binary messages are not accepted; send JSON text",
                    ),
                ),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
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
        _ = app.stopped() => {
            send_task.abort();
            recv_task.abort();
        }
    }
    if controlling.load(Ordering::SeqCst) {
        if let Some(input) = &app.input {
            input.release_all();
        }
        app.seat.release(id);
    }
    tracing::info!(id, "viewer disconnected");
}

fn handle_text(app: &AppState, controlling: bool, text: &str) -> Option<Message> {
    let msg = match ClientMessage::parse(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(cause = %e, "bad client message");
            return Some(error(e.code, e.message));
        }
    };
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
    if let ClientMessage::Key { code, .. } = &msg {
        if key_for_code(code).is_none() {
            return Some(error(
                ErrorCode::OutOfRange,
                format!("unknown key code {code:?}; send it as text instead"),
            ));
        }
    }
    match input.send(msg) {
        Ok(()) => None,
        Err(SendError::Full) => Some(error(
            ErrorCode::RateLimited,
            "input dropped; events arrive faster than the desktop takes them",
        )),
        Err(SendError::Closed) => Some(error(
            ErrorCode::Internal,
            "input unavailable; the input thread stopped",
        )),
    }
}
