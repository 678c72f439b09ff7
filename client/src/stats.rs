//! What the overlay shows: connection state, role, fps, bandwidth, quality, the round
//! trip the server measures from acks, and click-to-photon: from sending an input
//! event to drawing the first frame whose header says it was applied.

use std::collections::VecDeque;
use std::fmt::Write as _;

use deskcast_shared::Role;

/// Width of the sliding window the meters average over, in milliseconds.
pub const WINDOW_MS: f64 = 1000.0;

/// How long an `error` from the server stays in the overlay, in milliseconds.
pub const ERROR_SHOWN_MS: f64 = 5000.0;

/// Counts amounts (frames, bytes) over the last [`WINDOW_MS`].
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(f64, f64)>,
}

impl RateMeter {
    /// An empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `amount` at time `now_ms`.
    pub fn record(&mut self, now_ms: f64, amount: f64) {
        self.samples.push_back((now_ms, amount));
        self.expire(now_ms);
    }

    /// Sum of the amounts in the last [`WINDOW_MS`], i.e. the amount per second.
    pub fn per_second(&mut self, now_ms: f64) -> f64 {
        self.expire(now_ms);
        // A fold from +0.0: `Sum for f64` starts at -0.0, which prints as "-0".
        let total = self.samples.iter().fold(0.0, |sum, (_, a)| sum + a);
        total * (1000.0 / WINDOW_MS)
    }

    fn expire(&mut self, now_ms: f64) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| *t <= now_ms - WINDOW_MS)
        {
            self.samples.pop_front();
        }
    }
}

/// A byte rate for people: `850 kbit/s` below one megabyte a second, `1.4 MB/s` above.
pub fn format_bandwidth(bytes_per_second: f64) -> String {
    if bytes_per_second >= 1_000_000.0 {
        format!("{:.1} MB/s", bytes_per_second / 1_000_000.0)
    } else {
        format!("{:.0} kbit/s", bytes_per_second * 8.0 / 1000.0)
    }
}

/// Click-to-photon: when each input event went out, until a drawn frame's header
/// (`input_seq`) says the desktop had it. Keeps the last [`Photon::KEEP`] events.
#[derive(Debug, Default)]
pub struct Photon {
    sent: VecDeque<(u64, f64)>,
}

impl Photon {
    /// Events remembered at most (older ones are forgotten unmeasured).
    pub const KEEP: usize = 256;

    /// No events yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Input event `seq` was sent at `now_ms`.
    pub fn sent(&mut self, seq: u64, now_ms: f64) {
        if self.sent.len() == Self::KEEP {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, now_ms));
    }

    /// A frame showing every input up to `input_seq` was drawn at `now_ms`: the time
    /// since the oldest event it is the first to show, if any.
    pub fn drawn(&mut self, input_seq: u64, now_ms: f64) -> Option<f64> {
        let mut oldest = None;
        while let Some(&(seq, at)) = self.sent.front() {
            if seq > input_seq {
                break;
            }
            self.sent.pop_front();
            oldest.get_or_insert(now_ms - at);
        }
        oldest
    }

    /// Forgets everything (the connection was replaced).
    pub fn clear(&mut self) {
        self.sent.clear();
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConnState {
    /// The socket is opening, or open and waiting for `hello`.
    Connecting,
    /// `hello` arrived: frames flow, input (if allowed) is sent.
    Connected,
    /// The socket closed; the next attempt starts in `in_ms` milliseconds.
    Reconnecting {
        /// Delay before the next attempt.
        in_ms: u32,
    },
    /// The user signed out: no more attempts.
    SignedOut,
}

/// Everything the overlay line is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Connection state.
    pub state: ConnState,
    /// Role from `hello` or the latest `role` message.
    pub role: Option<Role>,
    /// Whether the source takes input at all (`hello.input`).
    pub input: bool,
    /// Frames drawn per second.
    pub fps: f64,
    /// Bytes received per second.
    pub bytes_per_second: f64,
    /// JPEG quality of the latest drawn frame.
    pub quality: Option<u8>,
    /// Round trip from the server sending a frame to its ack, ms (the server's `stats`).
    pub rtt_ms: Option<f64>,
    /// The latest click-to-photon time, ms.
    pub photon_ms: Option<f64>,
    /// The latest server error, while it is fresh.
    pub error: Option<String>,
    /// Why the source delivers no frames (the server's `source` message), while it is
    /// down.
    pub source_down: Option<String>,
    /// Who controls: this session (`hello.id`) and the controlling one.
    pub control: Control,
}

/// Who controls, as far as this page knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Control {
    /// This connection's session id.
    pub me: u64,
    /// Whether this connection may take control (the control token).
    pub may: bool,
    /// The controlling session, if any.
    pub holder: Option<u64>,
    /// The session that asked this one for control.
    pub asked_by: Option<u64>,
    /// This page asked for control and waits.
    pub asking: bool,
}

impl Control {
    /// The control button's label, or `None` when it has none to offer.
    pub fn button(&self, controlling: bool) -> Option<String> {
        match (controlling, self.asked_by) {
            (true, Some(by)) => Some(format!("give control to viewer {by}")),
            (true, None) => Some("give up control".into()),
            (false, _) if !self.may => None,
            (false, _) if self.asking => Some("asked for control…".into()),
            (false, _) => Some("take control".into()),
        }
    }
}

impl Status {
    /// Whether input must not be sent: view role, or a source that takes none.
    pub fn view_only(&self) -> bool {
        self.role == Some(Role::View) || !self.input
    }

    /// The overlay's text, one line.
    pub fn line(&self) -> String {
        let mut s = match self.state {
            ConnState::Connecting => "connecting…".to_string(),
            ConnState::Connected => "connected".to_string(),
            ConnState::Reconnecting { in_ms } => {
                format!(
                    "disconnected; retrying in {:.1} s",
                    f64::from(in_ms) / 1000.0
                )
            }
            ConnState::SignedOut => {
                "signed out; open the link deskcast printed to sign in again".to_string()
            }
        };
        if let Some(why) = &self.source_down {
            let _ = write!(s, " · NO SIGNAL: {why}");
        }
        if self.state == ConnState::Connected {
            match self.role {
                Some(Role::Control) if self.input => s.push_str(" · control"),
                Some(Role::Control) => s.push_str(" · control (source takes no input)"),
                Some(Role::View) => match self.control.holder {
                    Some(id) => {
                        let _ = write!(s, " · view (viewer {id} controls)");
                    }
                    None => s.push_str(" · view"),
                },
                None => {}
            }
            let _ = write!(
                s,
                " · {:.0} fps · {}",
                self.fps,
                format_bandwidth(self.bytes_per_second)
            );
            if let Some(q) = self.quality {
                let _ = write!(s, " · q{q}");
            }
            if let Some(ms) = self.rtt_ms {
                let _ = write!(s, " · rtt {ms:.0} ms");
            }
            if let Some(ms) = self.photon_ms {
                let _ = write!(s, " · click-to-photon {ms:.0} ms");
            }
        }
        if let Some(e) = &self.error {
            let _ = write!(s, " · error: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_sums_the_last_second_only() {
        let mut m = RateMeter::new();
        for i in 0..30 {
            m.record(f64::from(i) * 33.0, 1.0);
        }
        assert_eq!(m.per_second(990.0), 30.0);
        assert_eq!(m.per_second(1500.0), 14.0, "samples after t=500");
        assert_eq!(m.per_second(5000.0), 0.0);
        assert_eq!(
            format!("{:.0}", RateMeter::new().per_second(0.0)),
            "0",
            "not -0"
        );
    }

    #[test]
    fn bandwidth_reads_naturally() {
        assert_eq!(format_bandwidth(0.0), "0 kbit/s");
        assert_eq!(format_bandwidth(106_250.0), "850 kbit/s");
        assert_eq!(format_bandwidth(1_400_000.0), "1.4 MB/s");
    }

    fn status() -> Status {
        Status {
            state: ConnState::Connected,
            role: Some(Role::Control),
            input: true,
            fps: 29.6,
            bytes_per_second: 1_400_000.0,
            quality: Some(80),
            rtt_ms: Some(21.4),
            photon_ms: Some(38.6),
            error: None,
            source_down: None,
            control: Control::default(),
        }
    }

    #[test]
    fn status_line_shows_everything_while_connected() {
        assert_eq!(
            status().line(),
            "connected · control · 30 fps · 1.4 MB/s · q80 · rtt 21 ms · click-to-photon 39 ms"
        );
        let s = Status {
            error: Some("input refused; view only".into()),
            ..status()
        };
        assert!(
            s.line().ends_with(" · error: input refused; view only"),
            "{}",
            s.line()
        );
        let s = Status {
            state: ConnState::Reconnecting { in_ms: 2000 },
            ..status()
        };
        assert_eq!(s.line(), "disconnected; retrying in 2.0 s");
        let s = Status {
            source_down: Some("the X display :5 is gone".into()),
            ..status()
        };
        assert!(
            s.line()
                .starts_with("connected · NO SIGNAL: the X display :5 is gone · control"),
            "{}",
            s.line()
        );
        let s = Status {
            role: Some(Role::View),
            control: Control {
                holder: Some(3),
                ..Control::default()
            },
            ..status()
        };
        assert!(
            s.line()
                .starts_with("connected · view (viewer 3 controls) ·"),
            "{}",
            s.line()
        );
        let s = Status {
            state: ConnState::SignedOut,
            ..status()
        };
        assert!(s.line().starts_with("signed out;"), "{}", s.line());
    }

    #[test]
    fn click_to_photon_runs_from_an_event_to_the_first_frame_that_shows_it() {
        let mut p = Photon::new();
        p.sent(1, 1000.0);
        p.sent(2, 1010.0);
        p.sent(3, 1020.0);
        assert_eq!(p.drawn(0, 1030.0), None, "a frame from before any input");
        assert_eq!(p.drawn(2, 1050.0), Some(50.0), "from the oldest it shows");
        assert_eq!(p.drawn(2, 1060.0), None, "already measured");
        assert_eq!(p.drawn(3, 1070.0), Some(50.0));
        for i in 0..1000 {
            p.sent(100 + i, 0.0);
        }
        assert_eq!(p.sent.len(), Photon::KEEP, "bounded");
    }

    #[test]
    fn the_control_button_offers_what_this_page_can_do() {
        let mut c = Control {
            me: 2,
            may: true,
            ..Control::default()
        };
        assert_eq!(c.button(false).as_deref(), Some("take control"));
        c.asking = true;
        assert_eq!(c.button(false).as_deref(), Some("asked for control…"));
        assert_eq!(c.button(true).as_deref(), Some("give up control"));
        c.asked_by = Some(5);
        assert_eq!(c.button(true).as_deref(), Some("give control to viewer 5"));
        c.may = false;
        assert_eq!(c.button(false), None, "the view token cannot take control");
    }

    #[test]
    fn view_only_is_the_view_role_or_a_source_without_input() {
        assert!(!status().view_only());
        assert!(Status {
            role: Some(Role::View),
            ..status()
        }
        .view_only());
        assert!(Status {
            input: false,
            ..status()
        }
        .view_only());
    }
}
