//! The WebSocket: connect, read `hello`/`role`/`error` and frames, send input, reconnect.
//!
//! One set of page-lifetime handlers serves every socket; a handler ignores events
//! from a socket that is no longer the current one.

use deskcast_shared::{ClientMessage, FrameHeader, Role, ServerMessage, PROTOCOL_VERSION};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{console, BinaryType, MessageEvent, WebSocket};

use super::{App, Job, State};
use crate::connect::ws_url;
use crate::stats::{ConnState, ERROR_SHOWN_MS};

/// Longest frame header the client reads (the first byte is the header's length).
const MAX_HEADER_BYTES: u32 = 255;

impl State {
    /// Whether input may be sent now: connected (after `hello`) with the control role
    /// on a source that takes input.
    pub(super) fn input_allowed(&self) -> bool {
        self.ws.is_some() && self.status.state == ConnState::Connected && !self.status.view_only()
    }

    /// Numbers and sends `msgs`, or drops them when input is not allowed.
    pub(super) fn send(&mut self, msgs: Vec<ClientMessage>) {
        if msgs.is_empty() || !self.input_allowed() {
            return;
        }
        let Some(ws) = &self.ws else { return };
        for msg in msgs {
            let msg = self.seq.stamp(msg);
            if let Err(e) = ws.send_with_str(&msg.to_json()) {
                console::warn_2(&JsValue::from_str("deskcast: send failed"), &e);
                return;
            }
            if let Some(seq) = msg.seq() {
                self.photon.sent(seq, js_sys::Date::now());
            }
        }
    }

    /// Sends a message about control (any role, not input: never stamped).
    pub(super) fn send_control(&self, msg: &ClientMessage) {
        let Some(ws) = &self.ws else { return };
        if let Err(e) = ws.send_with_str(&msg.to_json()) {
            console::warn_2(&JsValue::from_str("deskcast: send failed"), &e);
        }
    }

    /// Tells the server frame `seq` (and all before it) is drawn: it sends the next
    /// ones only as fast as they are drawn. Any role acks.
    pub(super) fn ack(&self, seq: u64) {
        let Some(ws) = &self.ws else { return };
        let ack = ClientMessage::Ack {
            frame: seq,
            decode_ms: None,
        };
        if let Err(e) = ws.send_with_str(&ack.to_json()) {
            console::warn_2(&JsValue::from_str("deskcast: ack failed"), &e);
        }
    }

    /// Forgets input state without sending anything (the server releases held
    /// buttons itself when a controlling client goes away).
    fn forget_input(&mut self) {
        let _ = self.gestures.reset();
        self.keyboard.clear();
    }
}

/// Whether `target` is `ws`: the event comes from the current socket.
fn is_current(ws: Option<&WebSocket>, target: Option<web_sys::EventTarget>) -> bool {
    match (ws, target) {
        (Some(ws), Some(t)) => {
            let (a, b): (&JsValue, &JsValue) = (t.as_ref(), ws.as_ref());
            a == b
        }
        _ => false,
    }
}

impl App {
    /// Opens a new socket to `/ws` on the page's origin, replacing any old one.
    pub(super) fn connect(&self) {
        let url = {
            let loc = self.window.location();
            ws_url(
                &loc.protocol().unwrap_or_default(),
                &loc.host().unwrap_or_default(),
                &loc.search().unwrap_or_default(),
            )
        };
        let mut s = self.s.borrow_mut();
        if s.status.state == ConnState::SignedOut {
            return;
        }
        self.drop_socket(&mut s);
        s.status.state = ConnState::Connecting;
        match WebSocket::new(&url) {
            Ok(ws) => {
                ws.set_binary_type(BinaryType::Arraybuffer);
                ws.set_onopen(Some(&self.js.ws_open));
                ws.set_onmessage(Some(&self.js.ws_message));
                ws.set_onclose(Some(&self.js.ws_close));
                s.ws = Some(ws);
            }
            Err(e) => {
                console::error_2(&JsValue::from_str("deskcast: cannot open the socket"), &e);
                self.schedule_reconnect(&mut s);
            }
        }
        drop(s);
        self.refresh_overlay();
    }

    /// Detaches and closes the current socket, if any.
    fn drop_socket(&self, s: &mut State) {
        if let Some(old) = s.ws.take() {
            old.set_onopen(None);
            old.set_onmessage(None);
            old.set_onclose(None);
            let _ = old.close();
        }
        s.forget_input();
        s.photon.clear();
        s.acked = 0;
        s.status.rtt_ms = None;
        for stale in s.frames.clear() {
            stale.close();
        }
    }

    fn schedule_reconnect(&self, s: &mut State) {
        let delay = s.backoff.next_delay();
        s.status.state = ConnState::Reconnecting { in_ms: delay };
        let timeout = i32::try_from(delay).unwrap_or(i32::MAX);
        if let Err(e) = self
            .window
            .set_timeout_with_callback_and_timeout_and_arguments_0(&self.js.reconnect, timeout)
        {
            console::error_2(
                &JsValue::from_str("deskcast: cannot schedule a reconnect"),
                &e,
            );
        }
    }

    pub(super) fn on_open(&self, _event: JsValue) {
        // Nothing to send: the server speaks first with `hello`.
        self.refresh_overlay();
    }

    pub(super) fn on_close(&self, event: JsValue) {
        let Some(event) = event.dyn_ref::<web_sys::Event>() else {
            return;
        };
        let mut s = self.s.borrow_mut();
        if !is_current(s.ws.as_ref(), event.target()) {
            return;
        }
        self.drop_socket(&mut s);
        self.cancel_gesture_timer(&mut s);
        if s.status.state != ConnState::SignedOut {
            self.schedule_reconnect(&mut s);
        }
        drop(s);
        self.refresh_overlay();
    }

    /// Ends this browser's session on the server (`DELETE /session`), closes the
    /// socket, and stays signed out.
    pub(super) fn sign_out(&self) {
        let init = web_sys::RequestInit::new();
        init.set_method("DELETE");
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        // The answer clears the cookie; nothing to wait for.
        let _ = self.window.fetch_with_str_and_init("/session", &init);
        let mut s = self.s.borrow_mut();
        self.drop_socket(&mut s);
        self.cancel_gesture_timer(&mut s);
        s.status.state = ConnState::SignedOut;
        s.status.source_down = None;
        drop(s);
        self.refresh_overlay();
    }

    pub(super) fn on_message(&self, event: JsValue) {
        let Some(event) = event.dyn_ref::<MessageEvent>() else {
            return;
        };
        if !is_current(self.s.borrow().ws.as_ref(), event.target()) {
            return;
        }
        let data = event.data();
        if let Some(text) = data.as_string() {
            self.on_text(&text);
        } else if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
            self.on_binary(buf);
        }
    }

    fn on_text(&self, text: &str) {
        let msg = match ServerMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                console::warn_1(&JsValue::from_str(&format!("deskcast: {e}")));
                return;
            }
        };
        let mut s = self.s.borrow_mut();
        match msg {
            ServerMessage::Hello {
                width,
                height,
                role,
                input,
                protocol,
                id,
                may_control,
                ..
            } => {
                s.status.control = crate::stats::Control {
                    me: id,
                    may: may_control,
                    ..Default::default()
                };
                if protocol != PROTOCOL_VERSION {
                    s.status.error = Some(format!(
                        "server speaks protocol {protocol}, this page {PROTOCOL_VERSION}; reload the page"
                    ));
                    s.error_until_ms = f64::INFINITY;
                }
                s.status.state = ConnState::Connected;
                s.status.role = Some(role);
                s.status.input = input;
                s.backoff.reset();
                // "This page acks": the server paces frames by acks from the first one,
                // so not even the first frames pile up in buffers on a slow link.
                s.ack(0);
                if s.image != Some((width, height)) {
                    self.set_image_size(&mut s, width, height);
                }
            }
            ServerMessage::Role { role } => {
                if role == Role::View {
                    s.forget_input();
                }
                s.status.control.asking = false;
                s.status.control.asked_by = None;
                s.status.role = Some(role);
                self.place_pointer(&s);
            }
            ServerMessage::Cursor {
                width,
                height,
                hot_x,
                hot_y,
                rgba,
                ..
            } => self.set_cursor(&mut s, (width, height), (hot_x, hot_y), &rgba),
            ServerMessage::Pointer { x, y } => self.set_remote_pointer(&mut s, (x, y)),
            ServerMessage::Clipboard { text } => {
                drop(s);
                self.remote_clipboard(text);
                self.refresh_overlay();
                return;
            }
            ServerMessage::Monitors { monitors, current } => {
                self.set_monitors(&monitors, current);
            }
            ServerMessage::Resize { width, height } => {
                // The remote screen changed size: drop the old picture now; the full
                // frame that follows repaints it.
                if s.image != Some((width, height)) {
                    self.set_image_size(&mut s, width, height);
                }
            }
            ServerMessage::Controller { id } => {
                s.status.control.holder = id;
            }
            ServerMessage::ControlRequested { by, .. } => {
                s.status.control.asked_by = Some(by);
            }
            ServerMessage::Source { up, message } => {
                s.status.source_down = (!up).then_some(message);
            }
            ServerMessage::Stats { rtt_ms, .. } => {
                s.status.rtt_ms = Some(rtt_ms);
            }
            ServerMessage::Error { code, message } => {
                console::warn_1(&JsValue::from_str(&format!(
                    "deskcast: server error {code:?}: {message}"
                )));
                s.status.error = Some(message);
                s.error_until_ms = self.now() + ERROR_SHOWN_MS;
            }
        }
        drop(s);
        self.refresh_overlay();
    }

    fn on_binary(&self, buf: &ArrayBuffer) {
        let bytes = Uint8Array::new(buf);
        let len = bytes.length();
        let head = bytes.subarray(0, len.min(MAX_HEADER_BYTES)).to_vec();
        let header = match FrameHeader::decode(&head) {
            Ok((header, _)) => header,
            Err(e) => {
                console::warn_1(&JsValue::from_str(&format!("deskcast: bad frame; {e}")));
                return;
            }
        };
        // `decode` succeeded, so `head[0]` is the header length and the message holds it.
        let start = head.first().map_or(0, |&n| u32::from(n));
        let jpeg = bytes.subarray(start, len);
        let now = self.now();
        let mut s = self.s.borrow_mut();
        s.bytes.record(now, f64::from(len));
        if jpeg.length() == 0 {
            return;
        }
        self.frame_arrived(&mut s, Job { header, jpeg });
    }
}
