//! Per-viewer flow control: a small window of frames in flight, sized from what the
//! acks measure, and the JPEG quality that keeps frames young on the link.
//!
//! A client that acks (`{"type":"ack","seq":N}` once it has drawn frame N; `seq` 0 at
//! once to say it will, so that not even its first frames pile up) gets a new
//! frame only while fewer than [`MAX_FRAMES_IN_FLIGHT`] are unacknowledged and their
//! bytes fit the window (about [`WINDOW_TIME`] of the measured throughput). Frames
//! that could not go meanwhile are not queued: the viewer catches up on what changed
//! ([`crate::pipeline::Viewer::next`]). A client that never acks is paced by its
//! socket alone (`TCP_NOTSENT_LOWAT` keeps the kernel from holding much); one that
//! acked and then stopped (a hidden tab draws nothing) gets nothing more until it acks
//! again, so no frames pile up in a page that does not draw them. The round
//! trip from send to ack drives the quality: it steps down while frames arrive late,
//! and back up once the link has been quick for a while (TigerVNC and Guacamole make
//! the same two choices: a window fenced by round trips, quality from lag).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most frames sent and not yet acknowledged.
pub const MAX_FRAMES_IN_FLIGHT: usize = 2;

/// The window holds about this much of the measured throughput.
pub const WINDOW_TIME: Duration = Duration::from_millis(100);

/// The window is never smaller than this (a link not measured yet, a slow start).
pub const MIN_WINDOW_BYTES: usize = 32 * 1024;

/// A frame acknowledged later than this after it was sent is late: quality steps down.
pub const LATE: Duration = Duration::from_millis(120);

/// Quality never goes below this.
pub const MIN_QUALITY: u8 = 30;

/// Quick for this long, quality steps back up (a step each [`SETTLE`] while it stays quick).
const QUICK_FOR: Duration = Duration::from_secs(2);

/// Shortest time between two quality changes.
const SETTLE: Duration = Duration::from_millis(300);

/// One viewer's link, as the server sees it.
#[derive(Debug)]
pub struct Flow {
    in_flight: VecDeque<(u64, usize, Instant)>,
    acking: bool,
    srtt: Option<Duration>,
    quality: u8,
    max_quality: u8,
    changed_at: Instant,
    quick_since: Option<Instant>,
    /// The current one-second measuring period: start, bytes acked, frames sent.
    period: (Instant, usize, u32),
    /// The last full period's rates: bytes acked per second, frames sent per second.
    rates: (f64, f64),
}

impl Flow {
    /// A new viewer at the stream's `quality`.
    pub fn new(quality: u8, now: Instant) -> Flow {
        Flow {
            in_flight: VecDeque::new(),
            acking: false,
            srtt: None,
            quality,
            max_quality: quality,
            changed_at: now,
            quick_since: None,
            period: (now, 0, 0),
            rates: (0.0, 0.0),
        }
    }

    /// Whether the client acks (it sent one, and not too long ago).
    pub fn is_acking(&self) -> bool {
        self.acking
    }

    /// The quality to encode this viewer's frames at.
    pub fn quality(&self) -> u8 {
        self.quality
    }

    /// Smoothed round trip from sending a frame to its ack.
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Bytes acknowledged per second, and frames sent per second, over the last second.
    pub fn rates(&self) -> (f64, f64) {
        self.rates
    }

    fn in_flight_bytes(&self) -> usize {
        self.in_flight.iter().map(|f| f.1).sum()
    }

    /// The window, in bytes.
    pub fn window(&self) -> usize {
        ((self.rates.0 * WINDOW_TIME.as_secs_f64()) as usize).max(MIN_WINDOW_BYTES)
    }

    /// Whether a new frame may go now.
    pub fn may_send(&self) -> bool {
        !self.acking
            || self.in_flight.is_empty()
            || (self.in_flight.len() < MAX_FRAMES_IN_FLIGHT
                && self.in_flight_bytes() < self.window())
    }

    /// Whether a frame that answers input may go now: one more than [`Flow::may_send`]
    /// allows, whatever the bytes in flight, so a click's result does not wait for an
    /// ack behind frames of a video.
    pub fn may_send_urgent(&self) -> bool {
        !self.acking || self.in_flight.len() <= MAX_FRAMES_IN_FLIGHT
    }

    /// Frame `seq` of `bytes` went out at `now`.
    pub fn sent(&mut self, seq: u64, bytes: usize, now: Instant) {
        self.roll(now);
        self.period.2 += 1;
        if self.acking {
            self.in_flight.push_back((seq, bytes, now));
        }
    }

    /// The client has drawn every frame up to `seq`.
    pub fn acked(&mut self, seq: u64, now: Instant) {
        self.roll(now);
        self.acking = true;
        let mut newest = None;
        while let Some(&(s, bytes, at)) = self.in_flight.front() {
            if s > seq {
                break;
            }
            self.in_flight.pop_front();
            self.period.1 += bytes;
            newest = Some(at);
        }
        let Some(sent_at) = newest else {
            return;
        };
        let sample = now.saturating_duration_since(sent_at);
        self.srtt = Some(match self.srtt {
            Some(s) => (s * 7 + sample) / 8,
            None => sample,
        });
        self.adapt(sample, now);
    }

    /// Steps the quality down when a frame came back late, up after a quick while.
    fn adapt(&mut self, sample: Duration, now: Instant) {
        let settled = now.saturating_duration_since(self.changed_at) >= SETTLE;
        if sample > LATE {
            self.quick_since = None;
            if settled && self.quality > MIN_QUALITY {
                self.quality = self.quality.saturating_sub(10).max(MIN_QUALITY);
                self.changed_at = now;
            }
        } else if sample < LATE / 3 {
            let since = *self.quick_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= QUICK_FOR
                && settled
                && self.quality < self.max_quality
            {
                self.quality = (self.quality + 5).min(self.max_quality);
                self.changed_at = now;
            }
        }
    }

    /// Called now and then, so the rates stay current on an idle link.
    pub fn tick(&mut self, now: Instant) {
        self.roll(now);
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.period.0);
        if elapsed >= Duration::from_secs(1) {
            let secs = elapsed.as_secs_f64();
            self.rates = (self.period.1 as f64 / secs, f64::from(self.period.2) / secs);
            self.period = (now, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn a_client_that_never_acks_is_never_held() {
        let t0 = Instant::now();
        let mut f = Flow::new(80, t0);
        for i in 1..100 {
            assert!(f.may_send());
            f.sent(i, 100_000, ms(t0, i));
        }
        assert!(!f.is_acking());
    }

    #[test]
    fn an_acking_client_gets_at_most_two_frames_ahead() {
        let t0 = Instant::now();
        let mut f = Flow::new(80, t0);
        f.acked(0, t0);
        assert!(f.is_acking());
        f.sent(1, 10_000, ms(t0, 1));
        assert!(f.may_send(), "one small frame in flight");
        f.sent(2, 10_000, ms(t0, 2));
        assert!(!f.may_send(), "two in flight: wait");
        f.acked(1, ms(t0, 30));
        assert!(f.may_send());
        assert_eq!(f.rtt(), Some(Duration::from_millis(29)));
        // A big frame fills the window by itself.
        f.acked(2, ms(t0, 31));
        f.sent(3, MIN_WINDOW_BYTES * 2, ms(t0, 40));
        assert!(!f.may_send(), "over the window");
        // Cumulative: acking 3 acks all before it.
        f.acked(3, ms(t0, 60));
        assert!(f.may_send());
    }

    #[test]
    fn late_acks_lower_quality_quick_ones_raise_it_back() {
        let t0 = Instant::now();
        let mut f = Flow::new(80, t0);
        f.acked(0, t0);
        let mut t = 400;
        for seq in 1..=3 {
            f.sent(seq, 20_000, ms(t0, t));
            t += 400;
            f.acked(seq, ms(t0, t));
        }
        assert_eq!(f.quality(), 50, "three late frames, three steps down");
        for _ in 0..10 {
            assert!(f.quality() >= MIN_QUALITY);
            f.sent(9, 20_000, ms(t0, t));
            t += 400;
            f.acked(9, ms(t0, t));
        }
        assert_eq!(f.quality(), MIN_QUALITY, "never below the floor");
        // Quick for long enough: back up, step by step, never above the stream's.
        for seq in 10..800 {
            f.sent(seq, 5_000, ms(t0, t));
            t += 10;
            f.acked(seq, ms(t0, t));
        }
        assert_eq!(f.quality(), 80);
    }

    #[test]
    fn a_client_that_stops_acking_gets_nothing_more_until_it_acks() {
        let t0 = Instant::now();
        let mut f = Flow::new(80, t0);
        f.acked(0, t0);
        f.sent(1, 1000, t0);
        f.sent(2, 1000, t0);
        // A hidden tab draws nothing for a minute: nothing piles up in it.
        f.tick(ms(t0, 60_000));
        assert!(f.is_acking());
        assert!(!f.may_send());
        f.acked(2, ms(t0, 60_100));
        assert!(f.may_send(), "visible again: frames flow");
    }

    #[test]
    fn rates_are_measured_over_a_second() {
        let t0 = Instant::now();
        let mut f = Flow::new(80, t0);
        f.acked(0, t0);
        for i in 1..=10u64 {
            f.sent(i, 1000, ms(t0, i * 90));
            f.acked(i, ms(t0, i * 90 + 5));
        }
        f.tick(ms(t0, 1000));
        let (bytes, fps) = f.rates();
        assert!((bytes - 10_000.0).abs() < 1.0, "{bytes}");
        assert!((fps - 10.0).abs() < 0.1, "{fps}");
        assert!(f.window() >= MIN_WINDOW_BYTES);
    }
}
