//! JSON text messages on `/ws`, tagged by `type` in snake_case.
//!
//! Coordinates are fractions (0.0–1.0) of the streamed image, so the client never
//! needs to know the screen's pixel size and letterboxing stays a client concern.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{MAX_CLICKS, MAX_KEY_CODE_LEN, MAX_MESSAGE_BYTES, MAX_TEXT_CHARS, MAX_WHEEL_STEP};

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    /// The primary button (the default when `button` is omitted).
    #[default]
    Left,
    /// The secondary button: context menus.
    Right,
    /// The wheel button.
    Middle,
}

/// Where a drag is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DragPhase {
    /// Move to the point and press the button.
    Start,
    /// Move with the button held.
    Move,
    /// Move to the point and release the button.
    End,
}

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees the screen and sends input.
    Control,
    /// Sees the screen only; input is refused.
    View,
}

/// A message from the browser to the server.
///
/// Every variant takes an optional `seq`: the frame header reports the last applied
/// one, which lets the client measure click-to-photon latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Move to (x, y) and click once.
    Click {
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
        /// Which button; left when omitted.
        #[serde(default)]
        button: Button,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Move to (x, y) and click twice, with the server's local timing.
    DoubleClick {
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
        /// Which button; left when omitted.
        #[serde(default)]
        button: Button,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// One step of a drag: press at `start`, follow on `move`, release at `end`.
    Drag {
        /// Which step.
        phase: DragPhase,
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
        /// Which button; left when omitted. Only `start` needs it.
        #[serde(default)]
        button: Button,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// A button went down or up, as it happened: move to (x, y), then press or release.
    /// Moves while a button is down drag. This is what the page sends; `click`,
    /// `double_click` and `drag` remain for scripts.
    Button {
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
        /// Which button; left when omitted.
        #[serde(default)]
        button: Button,
        /// True on press, false on release.
        down: bool,
        /// On a press: which click of a series this is by the client's own timing
        /// (1 single, 2 the second click of a double click, 3 of a triple click). The
        /// server replays a series the network stretched past the desktop's
        /// double-click time. 1 when omitted.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        clicks: u8,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Move the pointer (hover, or a drag while a `button` is down).
    Move {
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Scroll by whole wheel steps; positive `dy` scrolls down, positive `dx` right.
    Wheel {
        /// Horizontal steps.
        #[serde(default)]
        dx: i32,
        /// Vertical steps.
        #[serde(default)]
        dy: i32,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// A physical key went down or up, named by `KeyboardEvent.code` (e.g. `KeyA`, `Enter`).
    Key {
        /// The `KeyboardEvent.code` value.
        code: String,
        /// True on key down, false on key up.
        down: bool,
        /// The `KeyboardEvent.key` value, when it helps: a letter typed with Ctrl, Alt
        /// or Meta names the shortcut by the client's layout (Ctrl+`z` on a German
        /// keyboard is the key labelled Z, which sends `code` `KeyY`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Type text as-is: printable characters, IME results, characters no key map has.
    Text {
        /// The characters to type.
        text: String,
        /// Optional input sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Text for the remote clipboard, from the controller (Ctrl+V on the desktop then
    /// pastes it). A text longer than one message allows comes in pieces, each but the
    /// last with `more: true`; together at most 1 MiB of UTF-8.
    Clipboard {
        /// This piece of the text.
        text: String,
        /// More pieces of the same text follow.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// The controller switches the stream to monitor `index` of the `monitors` list
    /// (`null`: all monitors as one picture). Every viewer follows.
    Monitor {
        /// Which monitor; `None` for all.
        index: Option<u32>,
    },
    /// A control-token viewer that does not control asks for control. It is granted at
    /// once when nobody controls or the controller has been idle for the server's
    /// handoff time (`--handoff-idle`); else the controller is asked
    /// (`control_requested`), and it passes anyway once the controller stays idle
    /// that long.
    RequestControl,
    /// The controller gives control up: to the viewer that asked for it, if one did,
    /// else to another control-token viewer that takes the free seat; it gets control
    /// back only by asking again. Everything the controller held down is released first.
    ReleaseControl,
    /// The client has drawn every frame up to frame `seq` (the frame header's sequence
    /// number; not an input number). The server keeps only a small window of frames in
    /// flight to a client that acks, and measures the link from the ack timing.
    Ack {
        /// The newest frame drawn.
        #[serde(rename = "seq")]
        frame: u64,
        /// How long decoding and drawing it took, milliseconds (informational).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decode_ms: Option<f64>,
    },
}

/// Machine-readable reason in an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message was not valid JSON or not a known message.
    BadMessage,
    /// A number was out of range, or a string too long.
    OutOfRange,
    /// The message was larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// This connection has the view role; input is refused.
    ViewOnly,
    /// The source is not a desktop (test pattern, camera); there is nothing to control.
    NoDesktop,
    /// Too many input events per second; the excess was dropped.
    RateLimited,
    /// The desktop cannot take input now (its X server is gone, or input could not
    /// be opened); the event was dropped.
    InputUnavailable,
    /// The server could not apply the event.
    Internal,
}

/// One monitor of the desktop, in a `monitors` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorInfo {
    /// Its index (what `monitor` and `--monitor` take).
    pub index: u32,
    /// Its name (`DP-1`).
    pub name: String,
    /// Where it sits on the desktop and how large it is, pixels.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// The primary monitor.
    pub primary: bool,
}

/// A message from the server to the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message on every connection.
    Hello {
        /// Width of the streamed image, pixels.
        width: u32,
        /// Height of the streamed image, pixels.
        height: u32,
        /// What this connection may do.
        role: Role,
        /// Whether the source is a desktop that takes input at all.
        input: bool,
        /// [`crate::PROTOCOL_VERSION`] of the server.
        protocol: u32,
        /// The server's version string.
        server_version: String,
        /// This connection's session id (`controller` messages name sessions by it).
        #[serde(default)]
        id: u64,
        /// Whether this connection may take control (it came with the control token).
        #[serde(default)]
        may_control: bool,
    },
    /// The desktop's monitors, after `hello` when there is more than one, and whenever
    /// the stream switches: the page offers a picker.
    Monitors {
        /// Each monitor.
        monitors: Vec<MonitorInfo>,
        /// The one streamed; `None` when all are, as one picture.
        current: Option<u32>,
    },
    /// The remote clipboard's text, when it changes (and after `hello`), to the
    /// controller (and to viewers with `--view-clipboard`).
    Clipboard {
        /// The text.
        text: String,
    },
    /// The streamed image changed size (the remote screen was resized): the frames
    /// that follow, a full one first, have the new size, and input maps to it.
    Resize {
        /// Width of the streamed image, pixels.
        width: u32,
        /// Height of the streamed image, pixels.
        height: u32,
    },
    /// Who controls, to every connection after `hello` and whenever it changes: the
    /// session id (compare with `hello.id`), or `null` when nobody does.
    Controller {
        /// The controlling session.
        id: Option<u64>,
    },
    /// To the controller: session `by` asks for control. `release_control` hands it
    /// over; it passes anyway after `grant_after_ms` more without input.
    ControlRequested {
        /// The asking session.
        by: u64,
        /// When it passes without an answer, milliseconds from now.
        grant_after_ms: u64,
    },
    /// This connection's role changed (for example, it was given control).
    Role {
        /// The new role.
        role: Role,
    },
    /// The source stopped delivering (`up: false`: its X server is gone, its camera
    /// unplugged; the frames are a placeholder until it returns) or delivers again.
    /// Sent after `hello` while the source is down, and on every change.
    Source {
        /// Whether the source delivers.
        up: bool,
        /// What happened, for people.
        message: String,
    },
    /// What the server measures of this connection, about once a second to a client
    /// that acks.
    Stats {
        /// Smoothed round trip from sending a frame to its ack, milliseconds.
        rtt_ms: f64,
        /// Bytes acknowledged per second over the last second, as kilobits per second.
        kbps: f64,
        /// JPEG quality this connection gets now.
        quality: u8,
        /// Frames sent per second over the last second.
        fps: f64,
    },
    /// The remote cursor's shape: sent after `hello` and whenever the shape changes.
    Cursor {
        /// Changes with every new shape.
        serial: u32,
        /// Width, pixels (0 for a hidden cursor).
        width: u16,
        /// Height, pixels.
        height: u16,
        /// Hotspot, pixels from the left edge.
        hot_x: u16,
        /// Hotspot, pixels from the top edge.
        hot_y: u16,
        /// The pixels: RGBA, not premultiplied, rows top to bottom, standard base64.
        rgba: String,
    },
    /// Where the remote pointer is, as fractions of the image; sent to view-only
    /// connections when it moves (the controller has its own pointer).
    Pointer {
        /// Horizontal position, fraction of the image width.
        x: f64,
        /// Vertical position, fraction of the image height.
        y: f64,
    },
    /// A client message was refused; the connection stays open.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail, lowercase, "what; detail".
        message: String,
    },
}

fn one() -> u8 {
    1
}

fn is_one(n: &u8) -> bool {
    *n == 1
}

/// Why a client text message was refused.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{message}")]
pub struct InvalidMessage {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl InvalidMessage {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn check_fraction(name: &str, v: f64) -> Result<(), InvalidMessage> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(InvalidMessage::new(
            ErrorCode::OutOfRange,
            format!("{name} out of range; expected a fraction from 0 to 1, got {v}"),
        ))
    }
}

impl ClientMessage {
    /// Parses and validates one text message from a client.
    pub fn parse(text: &str) -> Result<Self, InvalidMessage> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(InvalidMessage::new(
                ErrorCode::TooLarge,
                format!(
                    "message too large; {} bytes, limit {MAX_MESSAGE_BYTES}",
                    text.len()
                ),
            ));
        }
        let msg: ClientMessage = serde_json::from_str(text)
            .map_err(|e| InvalidMessage::new(ErrorCode::BadMessage, format!("bad message; {e}")))?;
        msg.validate()?;
        Ok(msg)
    }

    /// Checks ranges and lengths that the JSON types alone do not.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            ClientMessage::Click { x, y, .. }
            | ClientMessage::DoubleClick { x, y, .. }
            | ClientMessage::Drag { x, y, .. }
            | ClientMessage::Move { x, y, .. } => {
                check_fraction("x", *x)?;
                check_fraction("y", *y)
            }
            ClientMessage::Button { x, y, clicks, .. } => {
                check_fraction("x", *x)?;
                check_fraction("y", *y)?;
                if (1..=MAX_CLICKS).contains(clicks) {
                    Ok(())
                } else {
                    Err(InvalidMessage::new(
                        ErrorCode::OutOfRange,
                        format!("clicks out of range; 1 to {MAX_CLICKS}"),
                    ))
                }
            }
            ClientMessage::Wheel { dx, dy, .. } => {
                if dx.unsigned_abs() > MAX_WHEEL_STEP.unsigned_abs()
                    || dy.unsigned_abs() > MAX_WHEEL_STEP.unsigned_abs()
                {
                    Err(InvalidMessage::new(
                        ErrorCode::OutOfRange,
                        format!("wheel step out of range; limit ±{MAX_WHEEL_STEP} per message"),
                    ))
                } else {
                    Ok(())
                }
            }
            ClientMessage::Key { code, key, .. } => {
                let key_ok = key.as_ref().is_none_or(|k| {
                    k.len() <= MAX_KEY_CODE_LEN && !k.chars().any(char::is_control)
                });
                let ok = !code.is_empty()
                    && code.len() <= MAX_KEY_CODE_LEN
                    && code.chars().all(|c| c.is_ascii_alphanumeric())
                    && key_ok;
                if ok {
                    Ok(())
                } else {
                    Err(InvalidMessage::new(
                        ErrorCode::OutOfRange,
                        "bad key code; expected a KeyboardEvent.code such as KeyA or Enter",
                    ))
                }
            }
            ClientMessage::RequestControl
            | ClientMessage::ReleaseControl
            | ClientMessage::Clipboard { .. }
            | ClientMessage::Monitor { .. } => Ok(()),
            ClientMessage::Ack { decode_ms, .. } => match decode_ms {
                Some(ms) if !ms.is_finite() || *ms < 0.0 => Err(InvalidMessage::new(
                    ErrorCode::OutOfRange,
                    "decode_ms out of range; expected milliseconds, 0 or more",
                )),
                _ => Ok(()),
            },
            ClientMessage::Text { text, .. } => {
                let n = text.chars().count();
                if n == 0 || n > MAX_TEXT_CHARS {
                    Err(InvalidMessage::new(
                        ErrorCode::OutOfRange,
                        format!("text length out of range; 1 to {MAX_TEXT_CHARS} characters"),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The optional input sequence number (`None` for an ack, which is not input).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ClientMessage::Click { seq, .. }
            | ClientMessage::DoubleClick { seq, .. }
            | ClientMessage::Drag { seq, .. }
            | ClientMessage::Button { seq, .. }
            | ClientMessage::Move { seq, .. }
            | ClientMessage::Wheel { seq, .. }
            | ClientMessage::Key { seq, .. }
            | ClientMessage::Text { seq, .. } => *seq,
            ClientMessage::Ack { .. }
            | ClientMessage::RequestControl
            | ClientMessage::ReleaseControl
            | ClientMessage::Clipboard { .. }
            | ClientMessage::Monitor { .. } => None,
        }
    }

    /// The input sequence number, to set it; `None` for an ack (it is not input).
    pub fn seq_mut(&mut self) -> Option<&mut Option<u64>> {
        match self {
            ClientMessage::Click { seq, .. }
            | ClientMessage::DoubleClick { seq, .. }
            | ClientMessage::Drag { seq, .. }
            | ClientMessage::Button { seq, .. }
            | ClientMessage::Move { seq, .. }
            | ClientMessage::Wheel { seq, .. }
            | ClientMessage::Key { seq, .. }
            | ClientMessage::Text { seq, .. } => Some(seq),
            ClientMessage::Ack { .. }
            | ClientMessage::RequestControl
            | ClientMessage::ReleaseControl
            | ClientMessage::Clipboard { .. }
            | ClientMessage::Monitor { .. } => None,
        }
    }

    /// Whether this is input for the desktop (not an ack, not about control).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            ClientMessage::Ack { .. }
                | ClientMessage::RequestControl
                | ClientMessage::ReleaseControl
                | ClientMessage::Clipboard { .. }
                | ClientMessage::Monitor { .. }
        )
    }

    /// Serializes to the JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // Serializing these plain enums cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerMessage {
    /// Serializes to the JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a server message (used by the client and by tests).
    pub fn parse(text: &str) -> Result<Self, InvalidMessage> {
        serde_json::from_str(text)
            .map_err(|e| InvalidMessage::new(ErrorCode::BadMessage, format!("bad message; {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples_parse() {
        let cases = [
            (
                r#"{"type":"click","x":0.25,"y":0.5,"button":"left"}"#,
                ClientMessage::Click {
                    x: 0.25,
                    y: 0.5,
                    button: Button::Left,
                    seq: None,
                },
            ),
            (
                r#"{"type":"double_click","x":0.25,"y":0.5,"button":"left"}"#,
                ClientMessage::DoubleClick {
                    x: 0.25,
                    y: 0.5,
                    button: Button::Left,
                    seq: None,
                },
            ),
            (
                r#"{"type":"drag","phase":"start","x":0.1,"y":0.1,"button":"left"}"#,
                ClientMessage::Drag {
                    phase: DragPhase::Start,
                    x: 0.1,
                    y: 0.1,
                    button: Button::Left,
                    seq: None,
                },
            ),
            (
                r#"{"type":"drag","phase":"end","x":0.3,"y":0.4}"#,
                ClientMessage::Drag {
                    phase: DragPhase::End,
                    x: 0.3,
                    y: 0.4,
                    button: Button::Left,
                    seq: None,
                },
            ),
            (
                r#"{"type":"button","x":0.5,"y":0.25,"button":"left","down":true,"clicks":2}"#,
                ClientMessage::Button {
                    x: 0.5,
                    y: 0.25,
                    button: Button::Left,
                    down: true,
                    clicks: 2,
                    seq: None,
                },
            ),
            (
                r#"{"type":"button","x":0.5,"y":0.25,"down":false}"#,
                ClientMessage::Button {
                    x: 0.5,
                    y: 0.25,
                    button: Button::Left,
                    down: false,
                    clicks: 1,
                    seq: None,
                },
            ),
            (
                r#"{"type":"move","x":0.5,"y":0.5}"#,
                ClientMessage::Move {
                    x: 0.5,
                    y: 0.5,
                    seq: None,
                },
            ),
            (
                r#"{"type":"wheel","dx":0,"dy":-3}"#,
                ClientMessage::Wheel {
                    dx: 0,
                    dy: -3,
                    seq: None,
                },
            ),
            (
                r#"{"type":"key","code":"KeyA","down":true}"#,
                ClientMessage::Key {
                    code: "KeyA".into(),
                    down: true,
                    key: None,
                    seq: None,
                },
            ),
            (
                r#"{"type":"key","code":"KeyY","down":true,"key":"z"}"#,
                ClientMessage::Key {
                    code: "KeyY".into(),
                    down: true,
                    key: Some("z".into()),
                    seq: None,
                },
            ),
            (
                r#"{"type":"text","text":"é"}"#,
                ClientMessage::Text {
                    text: "é".into(),
                    seq: None,
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(ClientMessage::parse(json).expect(json), want, "{json}");
        }
    }

    #[test]
    fn client_messages_round_trip_with_seq() {
        let m = ClientMessage::Click {
            x: 0.5,
            y: 0.75,
            button: Button::Right,
            seq: Some(7),
        };
        let json = m.to_json();
        assert!(json.contains(r#""type":"click""#), "{json}");
        assert!(json.contains(r#""button":"right""#), "{json}");
        assert_eq!(ClientMessage::parse(&json), Ok(m.clone()));
        assert_eq!(m.seq(), Some(7));
    }

    #[test]
    fn control_requests_are_messages_not_input() {
        let r = ClientMessage::parse(r#"{"type":"request_control"}"#).expect("parses");
        assert_eq!(r, ClientMessage::RequestControl);
        assert!(!r.is_input());
        let g = ClientMessage::parse(r#"{"type":"release_control"}"#).expect("parses");
        assert_eq!(g, ClientMessage::ReleaseControl);
        assert_eq!(g.to_json(), r#"{"type":"release_control"}"#);
        let asked = ServerMessage::ControlRequested {
            by: 3,
            grant_after_ms: 60_000,
        };
        assert_eq!(
            asked.to_json(),
            r#"{"type":"control_requested","by":3,"grant_after_ms":60000}"#
        );
        let piece = ClientMessage::parse(r#"{"type":"clipboard","text":"héllo","more":true}"#)
            .expect("parses");
        assert!(!piece.is_input());
        let last = ClientMessage::Clipboard {
            text: "x".into(),
            more: false,
        };
        assert_eq!(last.to_json(), r#"{"type":"clipboard","text":"x"}"#);
        let all = ClientMessage::parse(r#"{"type":"monitor","index":null}"#).expect("parses");
        assert_eq!(all, ClientMessage::Monitor { index: None });
        let one = ClientMessage::parse(r#"{"type":"monitor","index":1}"#).expect("parses");
        assert_eq!(one, ClientMessage::Monitor { index: Some(1) });
        let c = ServerMessage::Controller { id: None };
        assert_eq!(c.to_json(), r#"{"type":"controller","id":null}"#);
        assert_eq!(ServerMessage::parse(&c.to_json()), Ok(c));
    }

    #[test]
    fn an_ack_names_the_frame_and_is_not_input() {
        let m = ClientMessage::parse(r#"{"type":"ack","seq":42,"decode_ms":3.5}"#).expect("ack");
        assert_eq!(
            m,
            ClientMessage::Ack {
                frame: 42,
                decode_ms: Some(3.5)
            }
        );
        assert!(!m.is_input());
        assert_eq!(
            m.seq(),
            None,
            "its seq is a frame number, not an input number"
        );
        let mut plain = ClientMessage::parse(r#"{"type":"ack","seq":7}"#).expect("ack");
        assert!(plain.seq_mut().is_none());
        assert_eq!(plain.to_json(), r#"{"type":"ack","seq":7}"#);
        let bad = ClientMessage::parse(r#"{"type":"ack","seq":7,"decode_ms":-1}"#);
        assert_eq!(bad.map_err(|e| e.code), Err(ErrorCode::OutOfRange));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ack"}"#).map_err(|e| e.code),
            Err(ErrorCode::BadMessage)
        );
    }

    #[test]
    fn server_messages_round_trip() {
        let hello = ServerMessage::Hello {
            width: 1280,
            height: 720,
            role: Role::View,
            input: true,
            protocol: crate::PROTOCOL_VERSION,
            server_version: "0.1.0".into(),
            id: 4,
            may_control: false,
        };
        let json = hello.to_json();
        assert!(json.starts_with(r#"{"type":"hello""#), "{json}");
        assert!(json.contains(r#""role":"view""#), "{json}");
        assert_eq!(ServerMessage::parse(&json), Ok(hello));
        let err = ServerMessage::Error {
            code: ErrorCode::ViewOnly,
            message: "view only".into(),
        };
        assert!(err.to_json().contains(r#""code":"view_only""#));
        let source = ServerMessage::Source {
            up: false,
            message: "the X display :5 is gone".into(),
        };
        let json = source.to_json();
        assert!(json.starts_with(r#"{"type":"source","up":false"#), "{json}");
        assert_eq!(ServerMessage::parse(&json), Ok(source));
        let stats = ServerMessage::Stats {
            rtt_ms: 21.5,
            kbps: 7800.0,
            quality: 60,
            fps: 29.5,
        };
        let json = stats.to_json();
        assert!(json.starts_with(r#"{"type":"stats""#), "{json}");
        assert_eq!(ServerMessage::parse(&json), Ok(stats));
        let cursor = ServerMessage::Cursor {
            serial: 7,
            width: 1,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            rgba: "AAAA/w==".into(),
        };
        let json = cursor.to_json();
        assert!(json.starts_with(r#"{"type":"cursor""#), "{json}");
        assert_eq!(ServerMessage::parse(&json), Ok(cursor));
        let pointer = ServerMessage::Pointer { x: 0.5, y: 0.25 };
        assert_eq!(ServerMessage::parse(&pointer.to_json()), Ok(pointer));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let bad = [
            (r#"{"type":"click","x":1.5,"y":0.5}"#, ErrorCode::OutOfRange),
            (
                r#"{"type":"click","x":-0.1,"y":0.5}"#,
                ErrorCode::OutOfRange,
            ),
            (r#"{"type":"click","x":0.5}"#, ErrorCode::BadMessage),
            (
                r#"{"type":"teleport","x":0.5,"y":0.5}"#,
                ErrorCode::BadMessage,
            ),
            (r#"{"type":"click","x":"a","y":0.5}"#, ErrorCode::BadMessage),
            (r#"not json"#, ErrorCode::BadMessage),
            (
                r#"{"type":"wheel","dx":0,"dy":100000}"#,
                ErrorCode::OutOfRange,
            ),
            (
                r#"{"type":"wheel","dx":0,"dy":-2147483648}"#,
                ErrorCode::OutOfRange,
            ),
            (
                r#"{"type":"key","code":"","down":true}"#,
                ErrorCode::OutOfRange,
            ),
            (
                r#"{"type":"key","code":"Key A;rm","down":true}"#,
                ErrorCode::OutOfRange,
            ),
            (r#"{"type":"text","text":""}"#, ErrorCode::OutOfRange),
            (
                r#"{"type":"click","x":0.5,"y":0.5,"button":"fourth"}"#,
                ErrorCode::BadMessage,
            ),
            (
                r#"{"type":"button","x":0.5,"y":0.5,"down":true,"clicks":0}"#,
                ErrorCode::OutOfRange,
            ),
            (
                r#"{"type":"button","x":0.5,"y":0.5,"down":true,"clicks":9}"#,
                ErrorCode::OutOfRange,
            ),
            (
                r#"{"type":"button","x":0.5,"y":0.5}"#,
                ErrorCode::BadMessage,
            ),
        ];
        for (json, code) in bad {
            let err = ClientMessage::parse(json).expect_err(json);
            assert_eq!(err.code, code, "{json}: {}", err.message);
            assert!(!err.message.is_empty());
        }
        let huge = format!(
            r#"{{"type":"text","text":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMessage::parse(&huge).expect_err("huge").code,
            ErrorCode::TooLarge
        );
    }
}
