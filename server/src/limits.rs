//! Resource limits: how many viewers at once, and how fast one client may send input.

use std::sync::Arc;
use std::time::Instant;

use deskcast_shared::Role;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seats: `--max-clients` for viewers (view-token WebSocket sessions and every MJPEG
/// stream), and apart from them [`CONTROL_SEATS`] for control-token sessions, so
/// viewers can never take the seat the owner needs to get in. A seat is held as long
/// as its [`ViewerSlot`] lives.
#[derive(Clone)]
pub struct Viewers {
    view: Arc<Semaphore>,
    control: Arc<Semaphore>,
}

/// Control-token WebSocket sessions at once (one controls; the others are the owner's
/// other tabs and devices, waiting for control).
pub const CONTROL_SEATS: usize = 8;

/// One taken viewer seat; dropping it frees the seat.
pub struct ViewerSlot {
    _permit: OwnedSemaphorePermit,
}

impl Viewers {
    /// Room for `max` viewers, and [`CONTROL_SEATS`] control sessions.
    pub fn new(max: usize) -> Self {
        Viewers {
            view: Arc::new(Semaphore::new(max)),
            control: Arc::new(Semaphore::new(CONTROL_SEATS)),
        }
    }

    /// Takes a seat of the pool for `role` (a control-token WebSocket session asks
    /// for [`Role::Control`]; MJPEG readers always take a viewer seat), or `None` if
    /// all are taken.
    pub fn try_take(&self, role: Role) -> Option<ViewerSlot> {
        let pool = match role {
            Role::Control => &self.control,
            Role::View => &self.view,
        };
        pool.clone()
            .try_acquire_owned()
            .ok()
            .map(|p| ViewerSlot { _permit: p })
    }
}

/// What [`InputBudget::take`] decided about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: pass it on.
    Accept,
    /// Over the rate, first of this burst: drop it and tell the client once.
    DropAndTell,
    /// Over the rate again in the same burst: drop it silently.
    Drop,
}

/// Most keys one connection is taken to hold at once (a keyboard has about 110).
const MAX_HELD_KEYS: usize = 128;

/// What one connection's accepted input holds down: only the release of something it
/// holds may skip the input budget (so no key or button stays stuck); any other
/// release is input like the rest.
#[derive(Debug, Default)]
pub struct Held {
    keys: std::collections::HashSet<String>,
    buttons: std::collections::HashSet<deskcast_shared::Button>,
    drag: bool,
}

impl Held {
    /// Whether `msg` lets go of something this connection holds; if so, it no longer
    /// holds it.
    pub fn releases(&mut self, msg: &deskcast_shared::ClientMessage) -> bool {
        use deskcast_shared::{ClientMessage as M, DragPhase};
        match msg {
            M::Key {
                code, down: false, ..
            } => self.keys.remove(code),
            M::Button {
                button,
                down: false,
                ..
            } => self.buttons.remove(button),
            M::Drag {
                phase: DragPhase::End,
                ..
            } => std::mem::take(&mut self.drag),
            _ => false,
        }
    }

    /// `msg` was accepted: remember what it holds down.
    pub fn accepted(&mut self, msg: &deskcast_shared::ClientMessage) {
        use deskcast_shared::{ClientMessage as M, DragPhase};
        match msg {
            M::Key {
                code, down: true, ..
            } if self.keys.len() < MAX_HELD_KEYS => {
                self.keys.insert(code.clone());
            }
            M::Button {
                button, down: true, ..
            } => {
                self.buttons.insert(*button);
            }
            M::Drag {
                phase: DragPhase::Start,
                ..
            } => self.drag = true,
            _ => {}
        }
    }
}

/// A token bucket: `rate` events per second, bursts of up to one second's worth.
#[derive(Debug)]
pub struct InputBudget {
    rate: f64,
    tokens: f64,
    last: Instant,
    told: bool,
}

impl InputBudget {
    /// A full bucket for `rate` events per second.
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        InputBudget {
            rate,
            tokens: rate,
            last: now,
            told: false,
        }
    }

    /// Spends one event, if the bucket allows it.
    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.told = false;
            Verdict::Accept
        } else if self.told {
            Verdict::Drop
        } else {
            self.told = true;
            Verdict::DropAndTell
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_releases_of_what_is_held_count_as_releases() {
        use deskcast_shared::ClientMessage;
        let parse = |j: &str| ClientMessage::parse(j).expect("valid");
        let mut held = Held::default();
        let shift_up = parse(r#"{"type":"key","code":"ShiftLeft","down":false}"#);
        assert!(!held.releases(&shift_up), "nothing held: just input");
        held.accepted(&parse(r#"{"type":"key","code":"ShiftLeft","down":true}"#));
        assert!(held.releases(&shift_up), "a held key's release");
        assert!(!held.releases(&shift_up), "released once");
        let up = parse(r#"{"type":"button","x":0.5,"y":0.5,"down":false}"#);
        held.accepted(&parse(r#"{"type":"button","x":0.5,"y":0.5,"down":true}"#));
        assert!(held.releases(&up));
        assert!(!held.releases(&up));
        let end = parse(r#"{"type":"drag","phase":"end","x":0.5,"y":0.5}"#);
        assert!(!held.releases(&end));
        held.accepted(&parse(r#"{"type":"drag","phase":"start","x":0.5,"y":0.5}"#));
        assert!(held.releases(&end));
    }
    use std::time::Duration;

    #[test]
    fn a_burst_over_the_rate_is_dropped_and_told_once() {
        let t0 = Instant::now();
        let mut b = InputBudget::new(10, t0);
        let verdicts: Vec<_> = (0..25).map(|_| b.take(t0)).collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Accept).count(),
            10
        );
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| **v == Verdict::DropAndTell)
                .count(),
            1
        );
        // A tenth of a second later one more event fits, and a new burst is told again.
        assert_eq!(b.take(t0 + Duration::from_millis(100)), Verdict::Accept);
        assert_eq!(
            b.take(t0 + Duration::from_millis(100)),
            Verdict::DropAndTell
        );
    }

    #[test]
    fn viewer_seats_run_out_and_come_back_and_never_take_the_controls() {
        let v = Viewers::new(2);
        let a = v.try_take(Role::View).expect("first");
        let _b = v.try_take(Role::View).expect("second");
        assert!(v.try_take(Role::View).is_none());
        let _c = v
            .try_take(Role::Control)
            .expect("the controller still gets in");
        drop(a);
        assert!(v.try_take(Role::View).is_some());
        let controls: Vec<_> = (1..CONTROL_SEATS)
            .map(|_| v.try_take(Role::Control).expect("a control seat"))
            .collect();
        assert!(v.try_take(Role::Control).is_none(), "bounded too");
        drop(controls);
    }
}
