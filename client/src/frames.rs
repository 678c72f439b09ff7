//! Newest-frame-only scheduling between the socket, the JPEG decoder and the canvas.
//!
//! Frames can arrive faster than the browser decodes or paints them. This keeps the
//! work bounded and the picture current:
//! - at most one decode runs at a time (so decodes finish in arrival order);
//! - while it runs, only the newest undecoded frame waits; an older waiting one is
//!   dropped without ever being decoded;
//! - a decoded frame waits for the next animation frame; if a newer one finishes
//!   decoding first, the older decoded one is handed back to be released
//!   (`ImageBitmap.close()`) and never drawn.
//!
//! Generic over the undecoded frame `J` and the decoded frame `B`, so it is tested
//! natively with plain values.

/// What to do with a frame that just arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival<J> {
    /// No decode is running: start decoding this frame now.
    Decode(J),
    /// A decode is running: the frame waits. `dropped` is an older waiting frame it replaced.
    Queued {
        /// The frame that waited before and is now dropped undecoded.
        dropped: Option<J>,
    },
}

/// What to do after a decode finished.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<J, B> {
    /// An older decoded frame that was never drawn: release it.
    pub release: Option<B>,
    /// The waiting frame to decode next, if any.
    pub next: Option<J>,
}

/// The frame pipeline's state between socket and canvas.
#[derive(Debug)]
pub struct LatestFrame<J, B> {
    decoding: bool,
    waiting: Option<J>,
    ready: Option<B>,
}

impl<J, B> Default for LatestFrame<J, B> {
    fn default() -> Self {
        LatestFrame {
            decoding: false,
            waiting: None,
            ready: None,
        }
    }
}

impl<J, B> LatestFrame<J, B> {
    /// Nothing decoding, waiting or ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frame arrived from the socket.
    pub fn arrived(&mut self, job: J) -> Arrival<J> {
        if self.decoding {
            Arrival::Queued {
                dropped: self.waiting.replace(job),
            }
        } else {
            self.decoding = true;
            Arrival::Decode(job)
        }
    }

    /// The running decode finished with `frame`.
    pub fn decoded(&mut self, frame: B) -> Decoded<J, B> {
        let release = self.ready.replace(frame);
        Decoded {
            release,
            next: self.start_next(),
        }
    }

    /// The running decode failed (a corrupt JPEG). Returns the waiting frame to decode next.
    pub fn failed(&mut self) -> Option<J> {
        self.start_next()
    }

    /// The decoded frame to draw now, if any (call on each animation frame).
    pub fn take_ready(&mut self) -> Option<B> {
        self.ready.take()
    }

    /// Whether a decoded frame waits to be drawn.
    pub fn has_ready(&self) -> bool {
        self.ready.is_some()
    }

    /// Drops the waiting and the ready frame (the connection was replaced), returning
    /// the ready one to be released. A running decode still reports back as usual.
    pub fn clear(&mut self) -> Option<B> {
        self.waiting = None;
        self.ready.take()
    }

    fn start_next(&mut self) -> Option<J> {
        let next = self.waiting.take();
        self.decoding = next.is_some();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arriving_while_idle_are_decoded_and_drawn() {
        let mut f: LatestFrame<u32, &str> = LatestFrame::new();
        assert_eq!(f.arrived(1), Arrival::Decode(1));
        assert!(!f.has_ready());
        assert_eq!(
            f.decoded("one"),
            Decoded {
                release: None,
                next: None
            }
        );
        assert_eq!(f.take_ready(), Some("one"));
        assert_eq!(f.take_ready(), None);
        assert_eq!(f.arrived(2), Arrival::Decode(2));
    }

    #[test]
    fn only_the_newest_frame_waits_for_a_running_decode() {
        let mut f: LatestFrame<u32, &str> = LatestFrame::new();
        assert_eq!(f.arrived(1), Arrival::Decode(1));
        assert_eq!(f.arrived(2), Arrival::Queued { dropped: None });
        assert_eq!(f.arrived(3), Arrival::Queued { dropped: Some(2) });
        assert_eq!(
            f.decoded("one"),
            Decoded {
                release: None,
                next: Some(3)
            }
        );
        assert_eq!(f.arrived(4), Arrival::Queued { dropped: None });
    }

    #[test]
    fn an_undrawn_decoded_frame_is_released_when_a_newer_one_is_ready() {
        let mut f: LatestFrame<u32, &str> = LatestFrame::new();
        f.arrived(1);
        f.arrived(2);
        assert_eq!(f.decoded("one").next, Some(2));
        // No animation frame in between (a hidden tab, a slow paint).
        assert_eq!(
            f.decoded("two"),
            Decoded {
                release: Some("one"),
                next: None
            }
        );
        assert_eq!(f.take_ready(), Some("two"));
    }

    #[test]
    fn a_failed_decode_moves_on_to_the_waiting_frame() {
        let mut f: LatestFrame<u32, &str> = LatestFrame::new();
        f.arrived(1);
        assert_eq!(f.failed(), None);
        assert_eq!(f.arrived(2), Arrival::Decode(2));
        f.arrived(3);
        assert_eq!(f.failed(), Some(3));
        assert_eq!(f.decoded("three").next, None);
    }

    #[test]
    fn clear_drops_waiting_and_ready_frames() {
        let mut f: LatestFrame<u32, &str> = LatestFrame::new();
        f.arrived(1);
        f.decoded("one");
        f.arrived(2);
        f.arrived(3);
        assert_eq!(f.clear(), Some("one"));
        assert_eq!(f.decoded("two").next, None, "the waiting frame was dropped");
    }
}
