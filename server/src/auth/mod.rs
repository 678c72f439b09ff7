//! Who may come in: the two tokens, the sessions a token is exchanged for, and what a
//! wrong token costs. No HTTP here; [`crate::http::guard`] applies it to requests.
//!
//! - [`Tokens`]: generated or given at start, compared in constant time.
//! - [`sessions`]: opening the printed URL trades the token for a random session id,
//!   and only that id goes into a cookie.
//! - [`lockout`]: wrong tokens slow the address that sends them; a right one is never
//!   refused.

pub mod lockout;
pub mod sessions;

use deskcast_shared::Role;
use subtle::ConstantTimeEq as _;

use crate::error::StartError;

pub use lockout::Penalties;
pub use sessions::Sessions;

/// The two tokens. Who presents `control` may take control; `view` only watches.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Gives the `control` role.
    pub control: String,
    /// Gives the `view` role.
    pub view: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    /// The role `token` gives, if any. Both tokens are always compared.
    pub fn role_for(&self, token: &str) -> Option<Role> {
        let control = token_eq(token, &self.control);
        let view = token_eq(token, &self.view);
        if control {
            Some(Role::Control)
        } else if view {
            Some(Role::View)
        } else {
            None
        }
    }
}

/// `N` fresh random bytes.
fn random_bytes<const N: usize>(what: &str) -> Result<[u8; N], StartError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| StartError::Random(format!("cannot get random bytes for {what}; {e}")))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random 128-bit token, as 32 lowercase hex digits.
pub fn random_token() -> Result<String, StartError> {
    Ok(hex(&random_bytes::<16>("a token")?))
}

/// True if `given` equals `expected`, in time that depends only on their lengths.
pub fn token_eq(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
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
        assert_eq!(t.role_for("control-token-0000"), Some(Role::Control));
        assert_eq!(t.role_for("view-token-000000"), Some(Role::View));
        assert_eq!(t.role_for("control-token-000"), None);
        assert_eq!(t.role_for("control-token-00000"), None);
        assert_eq!(t.role_for(""), None);
        assert_ne!(
            random_token().expect("random"),
            random_token().expect("random")
        );
    }
}
