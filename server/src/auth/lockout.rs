//! What a wrong token costs: time, for the address that sent it.
//!
//! Refusing an address after some failures refuses its owner too whenever anything else
//! shares the address, and every local program is 127.0.0.1. So nothing is refused
//! here: past the first [`FREE_FAILURES`], each wrong token from an address is answered
//! later, the more so the more wrong tokens that address sent, up to [`MAX_DELAY`].
//! A right token is checked first and answered at once.
//!
//! Addresses are grouped as a guesser can change them: all of IPv4 loopback
//! (127.0.0.0/8) is one, an IPv6 /64 is one. The table is set-associative: bounded
//! memory, O(1) per update, the stalest entry of a set makes room for a new one. Its
//! hash is keyed per process, so nobody can aim collisions at one entry.

use std::hash::{BuildHasher as _, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens an address may send before they cost it time (typos happen).
pub const FREE_FAILURES: u32 = 3;
/// The delay of the first failure past the free ones; each further one doubles it.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest a wrong token's answer is held back.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// An address with no failure for this long starts from zero again.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

const SETS: usize = 1024;
const WAYS: usize = 4;

/// The group an address is counted under (see the module notes).
fn group(ip: IpAddr) -> u128 {
    const V4: u128 = 1 << 64;
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => V4 | 0x7f00_0000,
        IpAddr::V4(v4) => V4 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => group(IpAddr::V4(v4)),
            None => u128::from(v6) & !u128::from(u64::MAX),
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    group: u128,
    count: u32,
    last: Instant,
}

/// Counts wrong tokens per address group and says how long to hold each answer.
#[derive(Debug)]
pub struct Penalties {
    hasher: RandomState,
    table: Mutex<Vec<Option<Entry>>>,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            hasher: RandomState::new(),
            table: Mutex::new(vec![None; SETS * WAYS]),
        }
    }
}

/// How long the answer to an address's `count`th wrong token waits.
pub fn delay(count: u32) -> Duration {
    match count.checked_sub(FREE_FAILURES + 1) {
        None => Duration::ZERO,
        Some(doublings) => FIRST_DELAY
            .saturating_mul(1 << doublings.min(16))
            .min(MAX_DELAY),
    }
}

impl Penalties {
    fn set(&self, group: u128) -> std::ops::Range<usize> {
        let set = (self.hasher.hash_one(group) % SETS as u64) as usize;
        set * WAYS..(set + 1) * WAYS
    }

    /// Records a wrong token from `ip`; returns how long to wait before answering it.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Duration {
        let group = group(ip);
        let range = self.set(group);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let ways = &mut table[range];
        let slot = match ways
            .iter()
            .position(|e| e.is_some_and(|e| e.group == group))
        {
            Some(i) => i,
            // A free way, else the stalest one.
            None => (0..WAYS)
                .min_by_key(|&i| ways[i].map(|e| e.last))
                .unwrap_or(0),
        };
        let entry = match ways[slot] {
            Some(e) if e.group == group && now.duration_since(e.last) < FORGET_AFTER => e,
            _ => Entry {
                group,
                count: 0,
                last: now,
            },
        };
        let entry = Entry {
            count: entry.count.saturating_add(1),
            last: now,
            ..entry
        };
        ways[slot] = Some(entry);
        delay(entry.count)
    }

    /// Wrong tokens counted for `ip`'s group now.
    pub fn failures(&self, ip: IpAddr, now: Instant) -> u32 {
        let group = group(ip);
        let range = self.set(group);
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table[range]
            .iter()
            .flatten()
            .find(|e| e.group == group && now.duration_since(e.last) < FORGET_AFTER)
            .map_or(0, |e| e.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn the_delay_grows_from_zero_and_is_bounded() {
        assert_eq!(delay(1), Duration::ZERO);
        assert_eq!(delay(FREE_FAILURES), Duration::ZERO);
        assert_eq!(delay(FREE_FAILURES + 1), FIRST_DELAY);
        assert_eq!(delay(FREE_FAILURES + 2), FIRST_DELAY * 2);
        assert_eq!(delay(FREE_FAILURES + 100), MAX_DELAY);
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn loopback_is_one_address_and_ipv6_counts_per_64() {
        let p = Penalties::default();
        let t0 = Instant::now();
        for i in 1..=10 {
            p.fail(ip(&format!("127.0.{i}.{i}")), t0);
            p.fail(ip(&format!("2001:db8::{i}")), t0);
        }
        assert_eq!(p.failures(ip("127.0.0.1"), t0), 10);
        assert_eq!(p.failures(ip("::ffff:127.9.9.9"), t0), 10);
        assert_eq!(p.failures(ip("2001:db8::ffff"), t0), 10, "one /64");
        assert_eq!(p.failures(ip("2001:db8:0:1::1"), t0), 0, "another /64");
        assert_eq!(p.failures(ip("192.0.2.1"), t0), 0);
        assert_eq!(
            p.failures(ip("127.0.0.1"), t0 + FORGET_AFTER),
            0,
            "forgiven"
        );
        assert_eq!(p.fail(ip("127.0.0.1"), t0 + FORGET_AFTER), Duration::ZERO);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_what_is_fresh() {
        let p = Penalties::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            p.fail(ip("198.51.100.7"), t0 + Duration::from_secs(1));
        }
        for i in 0..(SETS * WAYS * 4) as u32 {
            p.fail(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), t0);
        }
        assert_eq!(p.table.lock().expect("lock").len(), SETS * WAYS);
        assert_eq!(
            p.failures(ip("198.51.100.7"), t0 + Duration::from_secs(1)),
            20,
            "the freshest entry of its set stays"
        );
    }
}
