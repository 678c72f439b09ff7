//! One controller at a time, and handing control over.
//!
//! The first control-token session takes the seat; the others view until it leaves,
//! or ask for it ([`Seat::request`]): granted at once when nobody controls or the
//! controller has been idle for the handoff time, else the controller is asked, and
//! it passes anyway once the controller stays idle that long. The controller can give
//! it up ([`Seat::release`]), to the one that asked if any. Every handover first
//! releases whatever the controller held down ([`Seat::new`]'s `on_handover`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Who controls and who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeatState {
    /// The controlling session.
    pub holder: Option<u64>,
    /// The session waiting for control.
    pub asked_by: Option<u64>,
}

/// What [`Seat::request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The asker controls now.
    Granted,
    /// The controller was asked; it passes after this long without input.
    Asked(Duration),
}

/// The control seat, shared by all sessions.
pub struct Seat {
    state: watch::Sender<SeatState>,
    next_id: AtomicU64,
    /// When the holder last sent input (or got the seat).
    active: Mutex<Instant>,
    idle: Duration,
    on_handover: Box<dyn Fn() + Send + Sync>,
}

impl Default for Seat {
    fn default() -> Self {
        Seat::new(DEFAULT_HANDOFF_IDLE, Box::new(|| {}))
    }
}

/// How long a controller may stay idle before a request takes control from it.
pub const DEFAULT_HANDOFF_IDLE: Duration = Duration::from_secs(60);

impl Seat {
    /// A free seat; a request takes it from a controller idle for `idle`;
    /// `on_handover` runs before control passes from one session to another.
    pub fn new(idle: Duration, on_handover: Box<dyn Fn() + Send + Sync>) -> Self {
        Seat {
            state: watch::channel(SeatState::default()).0,
            next_id: AtomicU64::new(1),
            active: Mutex::new(Instant::now()),
            idle,
            on_handover,
        }
    }

    /// A fresh session id.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn touch(&self) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How long the holder has sent no input.
    fn idle_for(&self) -> Duration {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Takes the seat if it is free; true if `id` now holds it.
    pub fn try_claim(&self, id: u64) -> bool {
        self.change(|s, _, _| match s.holder {
            None => {
                s.holder = Some(id);
                if s.asked_by == Some(id) {
                    s.asked_by = None;
                }
                true
            }
            Some(cur) => cur == id,
        })
    }

    /// Changes the seat with `decide`, which sees the state, the holder's idle time and
    /// the idle limit, and returns what it did; the change is one step, so no other
    /// session acts on a state that no longer holds. When the holder changes from one
    /// session to another (or to none), what the old one held is released first.
    fn change<T>(&self, decide: impl FnOnce(&mut SeatState, Duration, Duration) -> T) -> T {
        let (idle_for, limit) = (self.idle_for(), self.idle);
        let mut out = None;
        let mut handed = false;
        self.state.send_if_modified(|s| {
            let before = *s;
            out = Some(decide(s, idle_for, limit));
            if before.holder.is_some() && s.holder != before.holder {
                // Inside the change: no event of the new holder can come before it.
                (self.on_handover)();
            }
            handed = s.holder != before.holder && s.holder.is_some();
            *s != before
        });
        if handed {
            self.touch();
        }
        out.expect("decide ran")
    }

    /// `id` gives the seat up (or leaves): to the session that asked, if any.
    pub fn release(&self, id: u64) {
        self.change(|s, _, _| {
            if s.holder == Some(id) {
                s.holder = s.asked_by.take();
            }
        });
    }

    /// `id` asks for the seat (see the module notes).
    pub fn request(&self, id: u64) -> Requested {
        self.change(|s, idle_for, limit| {
            if s.holder.is_none() || s.holder == Some(id) || idle_for >= limit {
                s.holder = Some(id);
                s.asked_by = None;
                Requested::Granted
            } else {
                s.asked_by = Some(id);
                Requested::Asked(limit.saturating_sub(idle_for))
            }
        })
    }

    /// For a session that asked: takes the seat once the controller stayed idle long
    /// enough (or left); true if it did.
    pub fn grant_if_idle(&self, id: u64) -> bool {
        self.change(|s, idle_for, limit| {
            let due = s.asked_by == Some(id) && (s.holder.is_none() || idle_for >= limit);
            if due {
                s.holder = Some(id);
                s.asked_by = None;
            }
            due
        })
    }

    /// Runs `f` (queueing an input event) only while `id` holds the seat, with no
    /// handover in between: an event of the old controller is either queued before the
    /// handover releases what it held, or refused.
    pub fn if_holder<T>(&self, id: u64, f: impl FnOnce() -> T) -> Option<T> {
        let st = self.state.borrow();
        (st.holder == Some(id)).then(f)
    }

    /// `id` no longer waits for the seat (it left).
    pub fn withdraw(&self, id: u64) {
        self.state.send_if_modified(|s| {
            let was = s.asked_by == Some(id);
            if was {
                s.asked_by = None;
            }
            was
        });
    }

    /// The holder `id` sent input: it is not idle.
    pub fn touched(&self, id: u64) {
        if self.holds(id) {
            self.touch();
        }
    }

    /// How long until a pending request passes without an answer.
    pub fn grant_after(&self) -> Duration {
        self.idle.saturating_sub(self.idle_for())
    }

    /// Whether `id` holds the seat.
    pub fn holds(&self, id: u64) -> bool {
        self.state.borrow().holder == Some(id)
    }

    /// Watches who holds the seat and who asked.
    pub fn watch(&self) -> watch::Receiver<SeatState> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn first_claims_others_wait_and_the_seat_passes_on() {
        let seat = Seat::default();
        let (a, b) = (seat.new_id(), seat.new_id());
        assert!(seat.try_claim(a));
        assert!(!seat.try_claim(b));
        seat.release(b); // not the holder: no effect
        assert!(!seat.try_claim(b));
        seat.release(a);
        assert!(seat.try_claim(b));
    }

    #[test]
    fn a_request_is_asked_then_granted_by_release_or_idleness_and_each_handover_releases() {
        let released = Arc::new(AtomicUsize::new(0));
        let count = released.clone();
        let seat = Seat::new(
            Duration::from_millis(50),
            Box::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let (a, b) = (seat.new_id(), seat.new_id());
        assert_eq!(seat.request(a), Requested::Granted, "free: at once");
        seat.touched(a);
        assert!(matches!(seat.request(b), Requested::Asked(_)));
        assert_eq!(seat.watch().borrow().asked_by, Some(b));
        assert!(!seat.grant_if_idle(b), "a is active");
        // a gives it up: to b, releasing what a held.
        seat.release(a);
        assert!(seat.holds(b));
        assert_eq!(released.load(Ordering::SeqCst), 1);
        // a asks back; b stays idle; it passes without an answer.
        assert!(matches!(seat.request(a), Requested::Asked(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(seat.grant_if_idle(a));
        assert!(seat.holds(a));
        assert_eq!(released.load(Ordering::SeqCst), 2);
        // An idle controller is taken over at once; a leaver withdraws its request.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(seat.request(b), Requested::Granted);
        seat.touched(b);
        assert!(matches!(seat.request(a), Requested::Asked(_)));
        seat.withdraw(a);
        assert_eq!(seat.watch().borrow().asked_by, None);
    }
}
