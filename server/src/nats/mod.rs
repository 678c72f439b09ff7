//! Past one machine: an origin publishes its encoded frames to NATS, and relays serve
//! them to viewers of their own.
//!
//! One capture and one encode at the origin, however many watch: NATS fans the stream
//! out to the relays, and each relay to its browsers. Subjects, under
//! `deskcast.STREAM.`:
//!
//! | subject | from → to | what |
//! |---|---|---|
//! | `frames` | origin → relays | updates and keyframes, in order ([`wire`]) |
//! | `whole` | origin → relays | whole-screen JPEGs, while some relay has an MJPEG reader |
//! | `cursor` | origin → relays | the remote cursor: its shape when new, where it is ([`CursorNews`]) |
//! | `origin` | origin → relays | once a second: who it is, whether it takes input ([`Beat`]) |
//! | `interest` | relays → origin | once a second: viewers there, keyframe wanted ([`Wants`]) |
//! | `input` | relays → origin | request/reply: a relay controller's input ([`InputRequest`]) |
//!
//! The origin captures only while someone watches, there or at a relay.
//! [`origin`] is the origin's side; [`relay`] the relay's.

pub mod origin;
pub mod relay;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use deskcast_shared::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::StartError;

/// How to reach NATS and which stream to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port` or `tls://host:port` (user and password may sit in it).
    pub url: String,
    /// The stream's name: subjects are `deskcast.NAME.…`.
    pub stream: String,
    /// Credentials: a `.creds` file, or a file holding an nkey seed, `user:password`
    /// or a token.
    pub creds: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for `tls://`, besides the system's.
    pub ca: Option<PathBuf>,
    /// At the origin: relays' controllers may send input.
    pub relay_control: bool,
}

/// Checks a stream name: it becomes one subject token.
pub fn check_stream(name: &str) -> Result<(), StartError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(StartError::Config(format!(
            "--stream {name:?} must be 1 to 64 characters of A-Z a-z 0-9 - _"
        )));
    }
    Ok(())
}

/// The subjects of one stream.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// Updates and keyframes.
    pub frames: String,
    /// Whole-screen JPEGs.
    pub whole: String,
    /// The remote cursor.
    pub cursor: String,
    /// The origin's heartbeat.
    pub origin: String,
    /// Relays' interest.
    pub interest: String,
    /// Relays' input.
    pub input: String,
}

impl Subjects {
    /// The subjects of stream `name`.
    pub fn new(name: &str) -> Self {
        let at = |s: &str| format!("deskcast.{name}.{s}");
        Subjects {
            frames: at("frames"),
            whole: at("whole"),
            cursor: at("cursor"),
            origin: at("origin"),
            interest: at("interest"),
            input: at("input"),
        }
    }
}

/// The origin's heartbeat, on `origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// This run of the origin (random at its start).
    pub instance: u64,
    /// Whether its source delivers.
    pub source_up: bool,
    /// Why not, when it does not.
    pub message: String,
    /// Whether relays' controllers may send input (`--relay-control`).
    pub relay_control: bool,
    /// Whether input reaches its desktop now.
    pub input: bool,
}

/// The origin's cursor, on `cursor`: sent when it moves or changes shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CursorNews {
    /// The shape's serial.
    pub serial: u32,
    /// The shape itself, when it is new (and now and then for relays that came later).
    pub shape: Option<ShapeBits>,
    /// Where its hotspot is, in picture pixels; `None` while off the picture.
    pub at: Option<(i32, i32)>,
}

/// A cursor shape as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapeBits {
    /// Size, pixels.
    pub width: u16,
    /// Size, pixels.
    pub height: u16,
    /// Hotspot.
    pub hot_x: u16,
    /// Hotspot.
    pub hot_y: u16,
    /// RGBA, base64.
    pub rgba: String,
}

/// A relay's interest, on `interest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wants {
    /// Which relay (random at its start).
    pub relay: String,
    /// Its `/ws` viewers.
    pub ws: usize,
    /// Its MJPEG readers.
    pub whole: usize,
    /// It needs a keyframe.
    pub key: bool,
}

/// A relay controller's input, on `input` (request/reply).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRequest {
    /// Which relay.
    pub relay: String,
    /// The events, in order, as JSON (the origin checks them as it would a client's).
    #[serde(default)]
    pub events: Vec<String>,
    /// Let go of everything the relay's controller holds, and of the origin's seat.
    #[serde(default)]
    pub release: bool,
}

/// The origin's answer to an [`InputRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputReply {
    /// Why the events were refused; `None`: applied.
    pub error: Option<(ErrorCode, String)>,
}

/// How long without a heartbeat before the other side is taken for gone.
pub const GONE_AFTER: Duration = Duration::from_secs(3);

/// How often both sides say they are there.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// Connects to NATS (in the background: the server may come later) with the
/// configured credentials and TLS; `events` hears about the connection coming and
/// going.
pub async fn connect(
    config: &NatsConfig,
    name: &str,
    events: tokio::sync::mpsc::Sender<async_nats::Event>,
) -> Result<async_nats::Client, StartError> {
    let bad = |what: String| StartError::Config(what);
    let mut options = match &config.creds {
        None => async_nats::ConnectOptions::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read --nats-creds {}; {e}", path.display())))?;
            let text = text.trim();
            if text.contains("-----BEGIN NATS USER JWT-----") {
                async_nats::ConnectOptions::with_credentials(text).map_err(|e| {
                    bad(format!(
                        "--nats-creds {} is not a creds file; {e}",
                        path.display()
                    ))
                })?
            } else if text.starts_with("SU") && !text.contains(char::is_whitespace) {
                async_nats::ConnectOptions::with_nkey(text.to_string())
            } else if let Some((user, password)) = text.split_once(':') {
                async_nats::ConnectOptions::with_user_and_password(
                    user.to_string(),
                    password.to_string(),
                )
            } else {
                async_nats::ConnectOptions::with_token(text.to_string())
            }
        }
    };
    if let Some(ca) = &config.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if config.url.starts_with("tls://") {
        options = options.require_tls(true);
    }
    let options = options
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        // A lost server is noticed within seconds, and retried at most every second.
        .ping_interval(Duration::from_secs(2))
        .connection_timeout(Duration::from_secs(3))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.try_send(event);
            }
        });
    options
        .connect(config.url.as_str())
        .await
        .map_err(|e| bad(format!("cannot use --nats {}; {e}", config.url)))
}

/// What one NATS message may carry, given what the server said (1 MiB before it did).
pub fn max_payload(client: &async_nats::Client) -> usize {
    match client.server_info().max_payload {
        0 => 1024 * 1024,
        n => n,
    }
}

/// A random id for this run or this relay.
pub fn random_id() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}
