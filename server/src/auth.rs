//! Tokens and who presents them: random generation, constant-time matching, and the
//! per-address failure limit. No HTTP here; [`crate::http::guard`] applies it to requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deskcast_shared::Role;
use subtle::ConstantTimeEq as _;

use crate::config::Tokens;
use crate::error::StartError;

/// Wrong tokens one address may present before it is locked out.
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts, and how long a failure is remembered.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the stalest is forgotten first. Bounds memory.
const MAX_TRACKED: usize = 4096;

/// A fresh random 128-bit token, as 32 lowercase hex digits.
pub fn random_token() -> Result<String, StartError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StartError::Random(format!("cannot get random bytes for a token; {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// True if `given` equals `expected`, in time that depends only on their lengths.
pub fn token_eq(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// The role `token` gives, if any. Both tokens are always compared.
pub fn role_for(tokens: &Tokens, token: &str) -> Option<Role> {
    let control = token_eq(token, &tokens.control);
    let view = token_eq(token, &tokens.view);
    if control {
        Some(Role::Control)
    } else if view {
        Some(Role::View)
    } else {
        None
    }
}

/// The key failures are counted under: the IPv4 address, or the IPv6 /64 (one host
/// usually owns a whole /64, so counting single IPv6 addresses would be no limit).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    count: u32,
    last: Instant,
}

/// Counts wrong tokens per address; after [`MAX_FAILURES`] the address is locked out
/// for [`LOCKOUT`] after its last failure, whatever it presents.
#[derive(Debug, Default)]
pub struct Failures {
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl Failures {
    /// Whether `ip` is locked out now; `Some(seconds left)` if so.
    pub fn locked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let r = records.get(&key(ip))?;
        let until = r.last + LOCKOUT;
        (r.count >= MAX_FAILURES && now < until).then(|| (until - now).as_secs().max(1))
    }

    /// Records a wrong token from `ip`.
    pub fn fail(&self, ip: IpAddr, now: Instant) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_TRACKED && !records.contains_key(&key(ip)) {
            records.retain(|_, r| now.duration_since(r.last) < LOCKOUT);
            if records.len() >= MAX_TRACKED {
                let stalest = records.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k);
                if let Some(k) = stalest {
                    records.remove(&k);
                }
            }
        }
        let r = records.entry(key(ip)).or_insert(Record {
            count: 0,
            last: now,
        });
        if now.duration_since(r.last) >= LOCKOUT {
            r.count = 0; // an old failure is forgiven
        }
        r.count = r.count.saturating_add(1);
        r.last = now;
    }

    /// How many addresses are remembered (for tests).
    pub fn tracked(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        let t = Tokens {
            control: "control-token-0000".into(),
            view: "view-token-000000".into(),
        };
        assert_eq!(role_for(&t, "control-token-0000"), Some(Role::Control));
        assert_eq!(role_for(&t, "view-token-000000"), Some(Role::View));
        assert_eq!(role_for(&t, "control-token-000"), None);
        assert_eq!(role_for(&t, "control-token-00000"), None);
        assert_eq!(role_for(&t, ""), None);
        assert_ne!(
            random_token().expect("random"),
            random_token().expect("random")
        );
    }

    #[test]
    fn five_failures_lock_out_for_a_while() {
        let f = Failures::default();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            f.fail(ip, t0);
        }
        assert_eq!(f.locked(ip, t0), None);
        f.fail(ip, t0);
        assert!(f.locked(ip, t0).is_some());
        assert_eq!(f.locked(other, t0), None, "only that address");
        assert_eq!(f.locked(ip, t0 + LOCKOUT), None, "not for ever");
        f.fail(ip, t0 + LOCKOUT);
        assert_eq!(
            f.locked(ip, t0 + LOCKOUT),
            None,
            "old failures are forgiven"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_memory_is_bounded() {
        let f = Failures::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8::{i}").parse().expect("ip");
            f.fail(ip, t0);
        }
        let ip: IpAddr = "2001:db8::ffff".parse().expect("ip");
        assert!(f.locked(ip, t0).is_some(), "one /64 is one address");
        for i in 0..(MAX_TRACKED as u32 + 100) {
            f.fail(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(f.tracked() <= MAX_TRACKED);
    }
}
