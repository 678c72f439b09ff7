//! One controller at a time: the first control session takes the seat; others view
//! until it leaves, then the next one that asks gets it.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// The control seat, shared by all sessions.
pub struct Seat {
    holder: watch::Sender<Option<u64>>,
    next_id: AtomicU64,
}

impl Default for Seat {
    fn default() -> Self {
        Seat {
            holder: watch::channel(None).0,
            next_id: AtomicU64::new(1),
        }
    }
}

impl Seat {
    /// A fresh session id.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the seat if it is free; true if `id` now holds it.
    pub fn try_claim(&self, id: u64) -> bool {
        let mut won = false;
        self.holder.send_if_modified(|h| match h {
            None => {
                *h = Some(id);
                won = true;
                true
            }
            Some(cur) => {
                won = *cur == id;
                false
            }
        });
        won
    }

    /// Frees the seat if `id` holds it.
    pub fn release(&self, id: u64) {
        self.holder.send_if_modified(|h| {
            if *h == Some(id) {
                *h = None;
                true
            } else {
                false
            }
        });
    }

    /// Whether `id` holds the seat.
    pub fn holds(&self, id: u64) -> bool {
        *self.holder.borrow() == Some(id)
    }

    /// Watches who holds the seat.
    pub fn watch(&self) -> watch::Receiver<Option<u64>> {
        self.holder.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
