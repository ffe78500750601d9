//! Client authentication by signed assertion (`private_key_jwt`, RFC 7523 2.2 and
//! OpenID Connect Core 9): a short-lived JWT signed with the client's private key,
//! sent instead of a shared secret.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::{self, FileError};

/// How long an assertion is valid: long enough for one request and clock skew,
/// short enough that a captured one is useless.
pub const ASSERTION_TTL: i64 = 60;
/// The `client_assertion_type` of RFC 7523.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const MAX_KEY_LEN: usize = 64 * 1024;

type ParsePem = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;

/// A client's private key, ready to sign. Debug shows only the file and algorithm.
#[derive(Clone)]
pub struct SigningKey {
    pub path: PathBuf,
    pub kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// 128 random bits from the kernel, as hex: a `jti` that never repeats.
fn random_jti() -> Result<String> {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::config(format!(
                "cannot get random bytes for a client assertion: {e}"
            )));
        }
        filled += n as usize;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl SigningKey {
    /// Read a PEM private key (RSA, EC P-256/P-384 or Ed25519; PKCS#8, or PKCS#1 for
    /// RSA). The file must be ours with no group or other bits, like the credential.
    pub fn load(path: &Path, kid: Option<String>) -> Result<SigningKey> {
        crate::jws::install();
        let data = match store::read_own(path, MAX_KEY_LEN) {
            Ok(Some(d)) => zeroize::Zeroizing::new(d),
            Ok(None) => {
                return Err(Error::config(format!(
                    "private key file {} does not exist",
                    path.display()
                )))
            }
            Err(e @ (FileError::ForeignOwner { .. } | FileError::Symlink(_))) => {
                return Err(Error::perm(format!(
                    "unsafe private key file: {}",
                    e.secret()
                )))
            }
            Err(e) => return Err(Error::config(format!("private key file: {e}"))),
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::config(format!("private key file {}: {e}", path.display())))?;
        store::check_private(path, &meta)
            .map_err(|e| Error::perm(format!("unsafe private key file: {e}")))?;
        let bad = || {
            Error::data(format!(
                "private key file {} holds no usable PEM private key (RSA, EC P-256/P-384 or Ed25519, unencrypted)",
                path.display()
            ))
        };
        let candidates: [(Algorithm, ParsePem); 4] = [
            (Algorithm::RS256, EncodingKey::from_rsa_pem),
            (Algorithm::ES256, EncodingKey::from_ec_pem),
            (Algorithm::ES384, EncodingKey::from_ec_pem),
            (Algorithm::EdDSA, EncodingKey::from_ed_pem),
        ];
        for (alg, parse) in candidates {
            let Ok(key) = parse(&data) else { continue };
            let k = SigningKey {
                path: path.to_path_buf(),
                kid: kid.clone(),
                alg,
                key,
            };
            // An EC key parses for both curves; signing tells which one it is.
            if k.sign_claims("probe", "probe").is_ok() {
                return Ok(k);
            }
        }
        Err(bad())
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn sign_claims(&self, client_id: &str, audience: &str) -> Result<Secret> {
        let now = crate::token::now();
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: audience,
            iat: now,
            exp: now.saturating_add(ASSERTION_TTL),
            jti: random_jti()?,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| {
                Error::data(format!(
                    "cannot sign a client assertion with {}: {e}",
                    self.path.display()
                ))
            })
    }

    /// A fresh assertion for one request to `audience` (the token endpoint).
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<Secret> {
        self.sign_claims(client_id, audience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jti_is_fresh() {
        let a = random_jti().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_jti().unwrap());
    }

    fn key(name: &str, kid: Option<&str>) -> (tempfile::TempDir, SigningKey) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peer/keys")
            .join(name);
        let p = dir.path().join(name);
        std::fs::copy(&src, &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = SigningKey::load(&p, kid.map(str::to_string)).unwrap();
        (dir, k)
    }

    fn verify(k: &SigningKey, pub_pem: &str, jwt: &str) -> serde_json::Value {
        use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
        let pem = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/peer/keys")
                .join(pub_pem),
        )
        .unwrap();
        let dk = match k.algorithm() {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem).unwrap(),
            _ => DecodingKey::from_ec_pem(&pem).unwrap(),
        };
        let mut v = Validation::new(k.algorithm());
        v.set_audience(&["https://iam.example.org/token"]);
        v.set_issuer(&["robot"]);
        assert_eq!(decode_header(jwt).unwrap().kid, k.kid);
        decode::<serde_json::Value>(jwt, &dk, &v).unwrap().claims
    }

    #[test]
    fn assertions_are_signed_short_lived_and_unique() {
        for (name, pub_pem, alg) in [
            ("client-rsa.key.pem", "client-rsa.pub.pem", Algorithm::RS256),
            ("client-ec.key.pem", "client-ec.pub.pem", Algorithm::ES256),
        ] {
            let (_d, k) = key(name, Some("kid-1"));
            assert_eq!(k.algorithm(), alg);
            let a = k
                .assertion("robot", "https://iam.example.org/token")
                .unwrap();
            let b = k
                .assertion("robot", "https://iam.example.org/token")
                .unwrap();
            let ca = verify(&k, pub_pem, a.expose());
            let cb = verify(&k, pub_pem, b.expose());
            assert_eq!(ca["sub"], "robot");
            assert_eq!(
                ca["exp"].as_i64().unwrap() - ca["iat"].as_i64().unwrap(),
                ASSERTION_TTL
            );
            assert_ne!(ca["jti"], cb["jti"], "a fresh jti each time");
            assert!(!format!("{k:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn unsafe_or_unusable_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/keys/client-rsa.key.pem"),
            &p,
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            SigningKey::load(&p, None).unwrap_err().exit(),
            crate::error::Exit::NoPerm
        );
        std::fs::write(&p, "not a key").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            SigningKey::load(&p, None).unwrap_err().exit(),
            crate::error::Exit::Data
        );
        let missing = dir.path().join("nope.pem");
        assert_eq!(
            SigningKey::load(&missing, None).unwrap_err().exit(),
            crate::error::Exit::Config
        );
    }
}
