//! Secrets (tokens, refresh tokens, client secrets) live in a type that never prints
//! its value and wipes its memory on drop. Logs show a short fingerprint instead.

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself. Call sites are few and easy to audit: request bodies,
    /// headers and the files the secret belongs in.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 8 hex digits of SHA-256: enough to tell tokens apart in logs,
    /// useless for replay.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(sha256:{})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("super-secret-refresh-token");
        let shown = format!("{s:?} {s}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(&s.fingerprint()));
        assert_eq!(s.fingerprint().len(), 8);
    }
}
