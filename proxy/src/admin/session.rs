//! Dashboard sessions. The admin token is exchanged once, at sign-in, for a random session
//! id held in an `HttpOnly; SameSite=Strict` cookie, so the token itself never stays in the
//! browser where a script could read it. Each session has its own CSRF token, which the
//! page must echo in `X-CSRF-Token` on every state-changing call.
//!
//! Sessions live in this process only: an instance's dashboard is signed in to that
//! instance. A session also remembers which admin token made it, so changing
//! `admin.token_sha256` (and reloading) ends every session made with the old token.

use crate::keys::random_hex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie that carries the session id.
pub const COOKIE: &str = "sluice_session";

/// Most sessions held at once; signing in past it ends the session closest to expiring,
/// so a loop of sign-ins cannot grow memory.
const MAX_SESSIONS: usize = 1000;

struct Session {
    csrf: String,
    token_sha256: [u8; 32],
    expires: Instant,
}

/// A new session, as the sign-in answers it.
pub struct Issued {
    /// The cookie's value.
    pub id: String,
    /// The CSRF token the page sends back on state-changing calls.
    pub csrf: String,
}

/// What a valid session cookie proves.
pub struct Valid {
    /// Its CSRF token.
    pub csrf: String,
    /// Seconds until it expires.
    pub expires_in: Duration,
}

/// The sessions of this process, keyed by the SHA-256 of their id (a lookup by the hash
/// leaks nothing about the id through timing).
#[derive(Default)]
pub struct Sessions {
    by_id_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn id_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session made with the admin token whose hash is `token_sha256`, lasting
    /// `ttl`.
    pub fn issue(&self, token_sha256: [u8; 32], ttl: Duration) -> Result<Issued, getrandom::Error> {
        let issued = Issued {
            id: random_hex(32)?,
            csrf: random_hex(32)?,
        };
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            id_hash(&issued.id),
            Session {
                csrf: issued.csrf.clone(),
                token_sha256,
                expires: now + ttl,
            },
        );
        Ok(issued)
    }

    /// The session `id` names, if it exists, has not expired and was made with the admin
    /// token that is configured now (`current`).
    pub fn check(&self, id: &str, current: &[u8; 32]) -> Option<Valid> {
        let now = Instant::now();
        let mut map = self.lock();
        let key = id_hash(id);
        let session = map.get(&key)?;
        if session.expires <= now || !bool::from(session.token_sha256.ct_eq(current)) {
            map.remove(&key);
            return None;
        }
        Some(Valid {
            csrf: session.csrf.clone(),
            expires_in: session.expires - now,
        })
    }

    /// Ends the session `id` (sign-out).
    pub fn end(&self, id: &str) {
        self.lock().remove(&id_hash(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock cannot leave the map half-changed (each change
        // is one call), so a poisoned lock is still a usable map.
        self.by_id_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `true` when `presented` equals `expected`, compared in constant time.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; 32] = [7; 32];

    #[test]
    fn a_session_holds_until_it_expires_or_the_admin_token_changes() {
        let sessions = Sessions::default();
        let s = sessions
            .issue(TOKEN, Duration::from_secs(60))
            .expect("random");
        let valid = sessions.check(&s.id, &TOKEN).expect("valid");
        assert_eq!(valid.csrf, s.csrf);
        assert!(sessions.check("not-a-session", &TOKEN).is_none());
        assert!(sessions.check(&s.id, &[8; 32]).is_none(), "token changed");
        assert!(
            sessions.check(&s.id, &TOKEN).is_none(),
            "ended with the old token"
        );

        let short = sessions
            .issue(TOKEN, Duration::from_millis(1))
            .expect("random");
        std::thread::sleep(Duration::from_millis(5));
        assert!(sessions.check(&short.id, &TOKEN).is_none(), "expired");

        let s = sessions
            .issue(TOKEN, Duration::from_secs(60))
            .expect("random");
        sessions.end(&s.id);
        assert!(sessions.check(&s.id, &TOKEN).is_none(), "signed out");
    }

    #[test]
    fn sign_ins_past_the_cap_end_the_oldest_sessions() {
        let sessions = Sessions::default();
        let first = sessions
            .issue(TOKEN, Duration::from_secs(60))
            .expect("random");
        for _ in 0..MAX_SESSIONS {
            sessions
                .issue(TOKEN, Duration::from_secs(120))
                .expect("random");
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(sessions.check(&first.id, &TOKEN).is_none());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = "a=1; sluice_session_x=2; sluice_session=abc ;b=3";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie("x=1", COOKIE), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
