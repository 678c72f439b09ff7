//! Composing region updates into whole frames, between the socket, the JPEG decoder
//! and the canvas.
//!
//! A frame arrives as one or more rectangles (same `seq`, the last one flagged). They
//! must all be drawn, in order, onto the persistent picture: a rectangle left out
//! would leave a stale tile. So:
//! - rectangles are decoded one at a time, in arrival order (so results come back in
//!   order to the one decode callback);
//! - a frame is handed out for drawing only once all its rectangles are decoded and
//!   its last one has arrived, so the page never shows half a frame;
//! - when a keyframe (a frame that covers the whole screen) starts arriving, older
//!   rectangles still waiting to be decoded are dropped undecoded: the keyframe paints
//!   over them. This is how a page that falls behind catches up.
//!
//! Generic over the undecoded rectangle `J` and the decoded one `B`, so it is tested
//! natively with plain values.

use std::collections::VecDeque;

/// What to do after a decode finished.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<J, B> {
    /// A decoded rectangle nobody waits for any more (the connection was replaced):
    /// release it.
    pub release: Option<B>,
    /// The waiting rectangle to decode next, if any.
    pub next: Option<J>,
}

#[derive(Debug)]
enum Stage<J, B> {
    Waiting(J),
    Decoding,
    Done(B),
    /// Not drawn: it failed to decode, or a keyframe paints over it.
    Skipped,
}

#[derive(Debug)]
struct Slot<J, B> {
    seq: u64,
    last: bool,
    stage: Stage<J, B>,
}

/// Rectangles between socket and canvas, in arrival order.
#[derive(Debug)]
pub struct Composer<J, B> {
    slots: VecDeque<Slot<J, B>>,
    decoding: bool,
    /// The newest frame handed out by [`Composer::take_ready`], drawn or not.
    completed: Option<u64>,
}

impl<J, B> Default for Composer<J, B> {
    fn default() -> Self {
        Composer {
            slots: VecDeque::new(),
            decoding: false,
            completed: None,
        }
    }
}

impl<J, B> Composer<J, B> {
    /// Nothing waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// A rectangle of frame `seq` arrived (`last`: the frame's last rectangle; `key`:
    /// the frame covers the whole screen). Returns the rectangle to decode now, if no
    /// decode is running.
    pub fn arrived(&mut self, seq: u64, last: bool, key: bool, job: J) -> Option<J> {
        if key {
            for slot in self.slots.iter_mut().filter(|s| s.seq != seq) {
                if matches!(slot.stage, Stage::Waiting(_)) {
                    slot.stage = Stage::Skipped;
                }
            }
        }
        self.slots.push_back(Slot {
            seq,
            last,
            stage: Stage::Waiting(job),
        });
        if self.decoding {
            None
        } else {
            self.start_next()
        }
    }

    /// The running decode finished with `rect`.
    pub fn decoded(&mut self, rect: B) -> Decoded<J, B> {
        let release = match self.running() {
            Some(slot) => {
                slot.stage = Stage::Done(rect);
                None
            }
            None => Some(rect),
        };
        Decoded {
            release,
            next: self.start_next(),
        }
    }

    /// The running decode failed (a corrupt JPEG). Returns the rectangle to decode next.
    pub fn failed(&mut self) -> Option<J> {
        if let Some(slot) = self.running() {
            slot.stage = Stage::Skipped;
        }
        self.start_next()
    }

    /// The decoded rectangles of every complete frame at the front, in order, to draw
    /// now (call on each animation frame). Empty when the oldest frame is not complete.
    pub fn take_ready(&mut self) -> Vec<B> {
        let mut out = Vec::new();
        while let Some(end) = self.complete_front() {
            self.completed = self.slots.front().map(|s| s.seq);
            for slot in self.slots.drain(..end) {
                if let Stage::Done(b) = slot.stage {
                    out.push(b);
                }
            }
        }
        out
    }

    /// The newest frame [`Composer::take_ready`] handed out, even one with nothing to
    /// draw (every rectangle failed to decode): what to acknowledge.
    pub fn completed(&self) -> Option<u64> {
        self.completed
    }

    /// Whether a complete frame waits to be drawn.
    pub fn has_ready(&self) -> bool {
        self.complete_front().is_some()
    }

    /// Rectangles waiting, decoding or decoded but not yet drawn.
    pub fn pending(&self) -> usize {
        self.slots.len()
    }

    /// Drops everything (the connection was replaced), returning the decoded
    /// rectangles to release. A running decode still reports back and is released.
    pub fn clear(&mut self) -> Vec<B> {
        self.completed = None;
        self.slots
            .drain(..)
            .filter_map(|s| match s.stage {
                Stage::Done(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    fn running(&mut self) -> Option<&mut Slot<J, B>> {
        self.slots
            .iter_mut()
            .find(|s| matches!(s.stage, Stage::Decoding))
    }

    /// How many slots the first frame spans, if it is complete: all its rectangles are
    /// done and its last one arrived (or the next frame began).
    fn complete_front(&self) -> Option<usize> {
        let seq = self.slots.front()?.seq;
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.seq != seq {
                return Some(i);
            }
            if matches!(slot.stage, Stage::Waiting(_) | Stage::Decoding) {
                return None;
            }
            if slot.last {
                return Some(i + 1);
            }
        }
        None
    }

    fn start_next(&mut self) -> Option<J> {
        for slot in self.slots.iter_mut() {
            if matches!(slot.stage, Stage::Waiting(_)) {
                if let Stage::Waiting(job) = std::mem::replace(&mut slot.stage, Stage::Decoding) {
                    self.decoding = true;
                    return Some(job);
                }
            }
        }
        self.decoding = false;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_drawn_only_once_all_its_rectangles_are_decoded() {
        let mut c: Composer<&str, &str> = Composer::new();
        assert_eq!(c.arrived(1, false, false, "1a"), Some("1a"));
        assert_eq!(
            c.arrived(1, true, false, "1b"),
            None,
            "one decode at a time"
        );
        assert_eq!(c.decoded("A").next, Some("1b"));
        assert!(c.take_ready().is_empty(), "half a frame is not drawn");
        assert_eq!(c.decoded("B").next, None);
        assert_eq!(c.take_ready(), vec!["A", "B"], "both, in order");
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn a_frame_whose_last_rectangle_has_not_arrived_waits() {
        let mut c: Composer<&str, &str> = Composer::new();
        c.arrived(1, false, false, "1a");
        c.decoded("A");
        assert!(!c.has_ready());
        // The next frame beginning also ends the previous one (a sender without flags).
        c.arrived(2, true, false, "2a");
        assert_eq!(c.take_ready(), vec!["A"]);
    }

    #[test]
    fn region_frames_are_never_dropped_and_come_out_in_order() {
        let mut c: Composer<u32, u32> = Composer::new();
        assert_eq!(c.arrived(1, true, false, 1), Some(1));
        for seq in 2..6 {
            assert_eq!(c.arrived(seq, true, false, seq as u32), None);
        }
        let mut next = c.decoded(10).next;
        while let Some(j) = next {
            next = c.decoded(j * 10).next;
        }
        assert_eq!(c.take_ready(), vec![10, 20, 30, 40, 50]);
    }

    #[test]
    fn a_keyframe_drops_older_rectangles_still_waiting() {
        let mut c: Composer<u32, u32> = Composer::new();
        c.arrived(1, true, false, 1);
        c.arrived(2, true, false, 2);
        c.arrived(3, true, false, 3);
        // The keyframe paints over frames 2 and 3: they are never decoded.
        assert_eq!(c.arrived(4, false, true, 41), None);
        c.arrived(4, true, true, 42);
        assert_eq!(c.decoded(10).next, Some(41));
        assert_eq!(c.decoded(410).next, Some(42));
        assert_eq!(c.decoded(420).next, None);
        assert_eq!(c.take_ready(), vec![10, 410, 420]);
    }

    #[test]
    fn a_failed_rectangle_is_skipped_and_its_frame_still_completes() {
        let mut c: Composer<u32, u32> = Composer::new();
        c.arrived(1, false, false, 1);
        c.arrived(1, true, false, 2);
        assert_eq!(c.failed(), Some(2));
        c.decoded(20);
        assert_eq!(c.take_ready(), vec![20]);
        assert_eq!(c.completed(), Some(1));
        // A frame whose only rectangle fails still completes: it is acknowledged, so
        // the server's window does not stay shut.
        c.arrived(2, true, false, 3);
        assert_eq!(c.failed(), None);
        assert!(c.take_ready().is_empty());
        assert_eq!(c.completed(), Some(2));
    }

    #[test]
    fn clear_returns_decoded_rectangles_and_a_late_decode_is_released() {
        let mut c: Composer<u32, u32> = Composer::new();
        c.arrived(1, true, false, 1);
        c.decoded(10);
        c.arrived(2, true, false, 2);
        assert_eq!(c.clear(), vec![10]);
        assert_eq!(
            c.decoded(20),
            Decoded {
                release: Some(20),
                next: None
            }
        );
        assert_eq!(c.arrived(3, true, false, 3), Some(3), "decoding again");
    }
}
