//! Sessions: what a cookie carries instead of the token.
//!
//! Cookies are not kept apart by port: every web server on the same host name receives
//! them. So the cookie never holds a token, only a random 128-bit session id made when
//! the printed URL is opened. A session has a role, ends after [`IDLE`] without use or
//! [`ABSOLUTE`] after it began, when it is revoked ("sign out"), and when the server
//! stops (sessions live in memory only). Ids are kept as their SHA-256, so a lookup's
//! timing tells nothing about a real id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deskcast_shared::Role;
use sha2::{Digest as _, Sha256};

use crate::error::StartError;

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after it began, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Sessions kept at most; the least recently used goes first. Only token holders make
/// sessions, so this only bounds a client that opens the URL in a loop.
const MAX_SESSIONS: usize = 1024;

#[derive(Debug)]
struct Session {
    role: Role,
    began: Instant,
    used: Instant,
    /// Dropped with the session: what was opened with it (a WebSocket) hears the end.
    ended: tokio::sync::watch::Sender<()>,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.used) < IDLE && now.duration_since(self.began) < ABSOLUTE
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session for `role`; returns its id (32 hex digits).
    pub fn create(&self, role: Role, now: Instant) -> Result<String, StartError> {
        let id = super::hex(&super::random_bytes::<16>("a session id")?);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.alive(now));
        }
        if live.len() >= MAX_SESSIONS {
            let stalest = live.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| *k);
            if let Some(k) = stalest {
                live.remove(&k);
            }
        }
        let session = Session {
            role,
            began: now,
            used: now,
            ended: tokio::sync::watch::channel(()).0,
        };
        live.insert(digest(&id), session);
        Ok(id)
    }

    /// The role of the live session `id`, which counts as used now.
    pub fn check(&self, id: &str, now: Instant) -> Option<Role> {
        let key = digest(id);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let session = live.get_mut(&key)?;
        if !session.alive(now) {
            live.remove(&key);
            return None;
        }
        session.used = now;
        Some(session.role)
    }

    /// A receiver whose `changed()` fails once session `id` has ended (signed out,
    /// expired, or the table made room), for what stays open after the check.
    pub fn end_of(&self, id: &str) -> Option<tokio::sync::watch::Receiver<()>> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&digest(id)).map(|s| s.ended.subscribe())
    }

    /// Ends session `id`; true if it was live.
    pub fn revoke(&self, id: &str) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.remove(&digest(id)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_have_roles_expire_and_can_be_revoked() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let c = s.create(Role::Control, t0).expect("id");
        let v = s.create(Role::View, t0).expect("id");
        assert_eq!(c.len(), 32);
        assert_ne!(c, v);
        assert_eq!(s.check(&c, t0), Some(Role::Control));
        assert_eq!(s.check(&v, t0), Some(Role::View));
        assert_eq!(s.check("0123456789abcdef0123456789abcdef", t0), None);
        // Used within IDLE keeps it alive, up to ABSOLUTE.
        let mut t = t0;
        while t + IDLE / 2 < t0 + ABSOLUTE {
            t += IDLE / 2;
            assert_eq!(s.check(&c, t), Some(Role::Control));
        }
        assert_eq!(s.check(&c, t0 + ABSOLUTE), None, "absolute limit");
        assert_eq!(s.check(&v, t0 + IDLE), None, "idle limit");
        let w = s.create(Role::View, t0).expect("id");
        assert!(s.revoke(&w));
        assert!(!s.revoke(&w));
        assert_eq!(s.check(&w, t0), None);
    }

    #[test]
    fn what_was_opened_with_a_session_hears_its_end() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let id = s.create(Role::Control, t0).expect("id");
        let end = s.end_of(&id).expect("live");
        assert!(end.has_changed().is_ok(), "still live");
        assert!(s.revoke(&id));
        assert!(end.has_changed().is_err(), "ended");
        assert!(s.end_of(&id).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let first = s.create(Role::View, t0).expect("id");
        for i in 0..MAX_SESSIONS as u64 + 10 {
            s.create(Role::View, t0 + Duration::from_millis(i + 1))
                .expect("id");
        }
        assert!(s.live.lock().expect("lock").len() <= MAX_SESSIONS);
        assert_eq!(s.check(&first, t0), None, "the least recently used went");
    }
}
