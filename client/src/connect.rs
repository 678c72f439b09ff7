//! The connection's small rules: where `/ws` is, how long to wait before reconnecting,
//! and input sequence numbers.

use deskcast_shared::{ClientMessage, WS_PATH};

/// First reconnect delay, milliseconds.
pub const BACKOFF_MIN_MS: u32 = 500;
/// Longest reconnect delay, milliseconds.
pub const BACKOFF_MAX_MS: u32 = 10_000;

/// The WebSocket URL on the page's own origin: `ws:` under `http:`, `wss:` under
/// `https:`. A `token` query parameter of the page is passed along (the server takes
/// its token from the query, a cookie or a header); nothing else is.
pub fn ws_url(protocol: &str, host: &str, search: &str) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    let token = search
        .trim_start_matches('?')
        .split('&')
        .find(|pair| pair.starts_with("token="));
    match token {
        Some(pair) => format!("{scheme}://{host}{WS_PATH}?{pair}"),
        None => format!("{scheme}://{host}{WS_PATH}"),
    }
}

/// Reconnect delays: 0.5 s, doubling to 10 s; back to 0.5 s after a good `hello`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next_ms: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next_ms: BACKOFF_MIN_MS,
        }
    }
}

impl Backoff {
    /// Starts at [`BACKOFF_MIN_MS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the next attempt; the one after it is twice as long.
    pub fn next_delay(&mut self) -> u32 {
        let d = self.next_ms;
        self.next_ms = self.next_ms.saturating_mul(2).min(BACKOFF_MAX_MS);
        d
    }

    /// A connection succeeded: start over from [`BACKOFF_MIN_MS`].
    pub fn reset(&mut self) {
        self.next_ms = BACKOFF_MIN_MS;
    }
}

/// Numbers outgoing messages 1, 2, 3, … (0 means "none" in the frame header).
#[derive(Debug, Default, Clone)]
pub struct Sequencer {
    last: u64,
}

impl Sequencer {
    /// Starts before 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the next sequence number on `msg` (input only; an ack is not numbered).
    pub fn stamp(&mut self, mut msg: ClientMessage) -> ClientMessage {
        if let Some(seq) = msg.seq_mut() {
            self.last += 1;
            *seq = Some(self.last);
        }
        msg
    }

    /// The number of the last input stamped (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_the_page_scheme_and_keeps_only_the_token() {
        assert_eq!(
            ws_url("http:", "127.0.0.1:8080", ""),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(ws_url("https:", "example.org", ""), "wss://example.org/ws");
        assert_eq!(
            ws_url("http:", "h:1", "?a=1&token=abc123&b=2"),
            "ws://h:1/ws?token=abc123"
        );
        assert_eq!(ws_url("http:", "h:1", "?tokens=x"), "ws://h:1/ws");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<u32> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        b.reset();
        assert_eq!(b.next_delay(), 500);
    }

    #[test]
    fn every_message_gets_the_next_seq() {
        let mut s = Sequencer::new();
        let a = s.stamp(ClientMessage::Move {
            x: 0.5,
            y: 0.5,
            seq: None,
        });
        let b = s.stamp(ClientMessage::Text {
            text: "x".into(),
            seq: None,
        });
        assert_eq!((a.seq(), b.seq()), (Some(1), Some(2)));
        assert!(b.to_json().contains(r#""seq":2"#));
    }
}
