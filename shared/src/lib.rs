//! The deskcast wire protocol, shared by the server and the browser client.
//!
//! # Layout
//! - [`message`]: JSON text messages, client → server ([`ClientMessage`]) and
//!   server → client ([`ServerMessage`]).
//! - [`frame`]: the fixed binary header in front of every JPEG frame on `/ws`.
//!
//! This crate holds protocol only: no I/O, no async runtime, so it builds for
//! `wasm32-unknown-unknown` as well as natively.

pub mod frame;
pub mod message;

pub use frame::{
    FrameHeader, FrameHeaderError, FLAG_FILL, FLAG_KEY, FLAG_LAST, FLAG_REFRESH, FRAME_HEADER_LEN,
    FRAME_HEADER_MIN_LEN,
};
pub use message::{
    Button, ClientMessage, DragPhase, ErrorCode, InvalidMessage, MonitorInfo, Role, ServerMessage,
};

/// Version of this protocol, sent in `hello`. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text message a client may send, in bytes. Larger ones close the socket.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// Longest `text` payload, in characters, accepted in one `text` message.
pub const MAX_TEXT_CHARS: usize = 256;

/// Longest `KeyboardEvent.code` accepted in one `key` message.
pub const MAX_KEY_CODE_LEN: usize = 32;

/// Most clicks in one series a `button` press may claim (a triple click).
pub const MAX_CLICKS: u8 = 3;

/// Largest wheel step, in either direction, accepted in one `wheel` message.
pub const MAX_WHEEL_STEP: i32 = 100;

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";
