//! `GET /ws`: `hello`, then binary frames down; JSON input up; JSON control both ways.
//!
//! Per socket a send task (frames and control messages) and a receive task (client
//! messages) run side by side; when one ends, the other is aborted.

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use deskcast_shared::{
    ClientMessage, ErrorCode, Role, ServerMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::AppState;

/// WebSocket close code for "message too big".
const CLOSE_TOO_BIG: u16 = 1009;

/// Upgrades the connection and runs the session.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    // Let oversized messages through the framing layer so we can close with 1009 ourselves;
    // anything far beyond that is cut off by tungstenite.
    ws.max_message_size(MAX_MESSAGE_BYTES * 512)
        .on_upgrade(move |socket| session(socket, app).instrument(tracing::info_span!("ws", %peer)))
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

async fn session(socket: WebSocket, app: AppState) {
    tracing::info!("viewer connected");
    let mut viewer = app.pipeline.subscribe();
    let geometry = app.pipeline.geometry();
    let role = Role::Control;
    let (mut sink, mut stream) = socket.split();
    let hello = ServerMessage::Hello {
        width: geometry.width,
        height: geometry.height,
        role,
        input: app.pipeline.is_desktop(),
        protocol: PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if sink.send(text(&hello)).await.is_err() {
        return;
    }

    let (control_tx, mut control_rx) = mpsc::channel::<Message>(16);
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
                frame = viewer.next() => {
                    let Some(frame) = frame else { break };
                    if sink.send(Message::Binary(frame.ws_message.clone())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let recv_app = app.clone();
    let mut recv_task = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let reply = match msg {
                Message::Text(t) if t.len() > MAX_MESSAGE_BYTES => {
                    tracing::warn!(bytes = t.len(), "message too large; closing");
                    let _ = control_tx
                        .send(Message::Close(Some(CloseFrame {
                            code: CLOSE_TOO_BIG,
                            reason: "message too large".into(),
                        })))
                        .await;
                    break;
                }
                Message::Text(t) => handle_text(&recv_app, t.as_str()),
                Message::Binary(_) => Some(error(
                    ErrorCode::BadMessage,
                    "binary messages are not accepted; send JSON text",
                )),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => None,
            };
            if let Some(reply) = reply {
                // A client that does not read its errors loses them, not its connection.
                let _ = control_tx.try_send(reply);
            }
        }
    });

    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => {
            // Give the send task a moment to flush a close frame, then stop it.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), &mut send_task).await;
            send_task.abort();
        }
        _ = app.stopped() => {
            send_task.abort();
            recv_task.abort();
        }
    }
    tracing::info!("viewer disconnected");
}

fn handle_text(app: &AppState, text: &str) -> Option<Message> {
    let msg = match ClientMessage::parse(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(cause = %e, "bad client message");
            return Some(error(e.code, e.message));
        }
    };
    if !app.pipeline.is_desktop() {
        return Some(error(
            ErrorCode::NoDesktop,
            "input refused; this source is not a desktop, there is nothing to control",
        ));
    }
    let _ = msg;
    Some(error(ErrorCode::Internal, "input not implemented yet"))
}
