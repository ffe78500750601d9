//! `robot-token inspect --verify`: what `scitokens-verify` and `scitokens-list-access`
//! users expect. Fetch the discovery document and JWKS of the issuer named in the
//! token's `iss` (https; plain http only for loopback test issuers), check the
//! signature with the `jsonwebtoken` crate (ring underneath, see `jws`), then `iss`, `exp`/`nbf` (with a small
//! leeway), and optionally the audience and WLCG scopes.
//!
//! Only `inspect --verify` reaches this module: `get` never fetches keys.

use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{check_url, Failure, FailureKind, Http, Retry};
use crate::issuer::parse_metadata;
use crate::scope;
use crate::token::{numeric_date, Jwt};

/// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: i64 = 30;

/// The WLCG audience every WLCG service accepts.
pub const ANY_AUDIENCE: &str = "https://wlcg.cern.ch/jwt/v1/any";

/// What to require beyond a good signature and `iss`.
#[derive(Debug, Default, Clone)]
pub struct Expect {
    /// `iss` must be this issuer (trailing slash ignored).
    pub issuer: Option<String>,
    /// `aud` must hold one of these (or the WLCG "any" audience).
    pub audience: Vec<String>,
    /// Every one of these must be allowed by the token's scopes (WLCG matching).
    pub scopes: Vec<String>,
}

/// The result of a verification that could be carried out.
#[derive(Debug)]
pub struct Verdict {
    /// The key that verified the signature.
    pub kid: Option<String>,
    pub alg: String,
    pub jwks_uri: String,
    /// Checks that failed, each naming itself ("aud: …"). Empty when valid.
    pub failed: Vec<String>,
    /// Seconds past `exp` (beyond the leeway) when the token has expired.
    pub expired_for: Option<i64>,
    /// Informational notes (e.g. accepted through the WLCG "any" audience).
    pub notes: Vec<String>,
}

/// Asymmetric JWS algorithms only: `none` and HMAC cannot be verified with a JWKS.
fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA" => {
            Algorithm::from_str(name).ok()
        }
        _ => None,
    }
}

fn fetch_failure(f: Failure, what: &str, url: &str) -> Error {
    match f.kind {
        FailureKind::Network => Error::temp(format!(
            "cannot fetch the {what} {url}: {}; the token could not be verified",
            f.reason
        )),
        _ => f.into_error(&format!("cannot fetch the {what}"), url),
    }
}

/// GET a JSON document with the idempotent retry policy.
fn get_json(http: &Http, url: &str, what: &str) -> Result<(u16, Vec<u8>)> {
    let reply = http
        .send(
            url,
            &[("Accept", "application/json")],
            None,
            Retry::Idempotent,
        )
        .map_err(|f| fetch_failure(f, what, url))?;
    Ok((reply.status, reply.body))
}

/// The JWKS URI from the issuer's discovery document. A missing or foreign
/// discovery document is a failed `iss` check (77); an unreachable one is 75.
fn jwks_uri(http: &Http, iss: &str) -> Result<String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    );
    let (status, body) = get_json(http, &url, "discovery document")?;
    match status {
        200 => {}
        429 | 500..=599 => {
            return Err(Error::temp(format!(
                "the discovery document {url} answered HTTP {status}; try again later"
            )))
        }
        s => {
            return Err(Error::perm(format!(
                "iss check failed: {iss} has no discovery document ({url} answered HTTP {s})"
            )))
        }
    }
    let meta = parse_metadata(&body).map_err(|e| {
        Error::perm(format!(
            "iss check failed: the discovery document {url} is unusable ({e})"
        ))
    })?;
    match meta.issuer.as_deref() {
        Some(i) if i == iss => {}
        Some(i) => {
            return Err(Error::perm(format!(
                "iss check failed: the token says iss {iss:?} but its discovery document names issuer {i:?}"
            )))
        }
        None => {
            return Err(Error::perm(format!(
                "iss check failed: the discovery document {url} names no issuer"
            )))
        }
    }
    let uri = meta.jwks_uri.ok_or_else(|| {
        Error::perm(format!(
            "the discovery document {url} names no jwks_uri: the signature cannot be checked"
        ))
    })?;
    check_url(&uri, "jwks_uri")?;
    Ok(uri)
}

/// The keys of a JWKS that jsonwebtoken understands; others (encryption keys,
/// unknown types) are skipped, not fatal.
fn parse_jwks(body: &[u8], url: &str) -> Result<Vec<Jwk>> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        Error::temp(format!(
            "the JWKS {url} is not JSON; the token could not be verified"
        ))
    })?;
    let Some(keys) = v.get("keys").and_then(Value::as_array) else {
        return Err(Error::temp(format!(
            "the JWKS {url} has no \"keys\" array; the token could not be verified"
        )));
    };
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| k.common.public_key_use != Some(PublicKeyUse::Encryption))
        // Public keys only: a shared secret in a JWKS is never a verification key.
        .filter(|k| {
            matches!(
                k.algorithm,
                AlgorithmParameters::RSA(_)
                    | AlgorithmParameters::EllipticCurve(_)
                    | AlgorithmParameters::OctetKeyPair(_)
            )
        })
        .collect())
}

fn fetch_jwks(http: &Http, url: &str) -> Result<Vec<Jwk>> {
    let (status, body) = get_json(http, url, "JWKS")?;
    if status != 200 {
        return Err(Error::temp(format!(
            "the JWKS {url} answered HTTP {status}; the token could not be verified"
        )));
    }
    parse_jwks(&body, url)
}

/// Check the signature of `token` against the keys; returns the kid that verified it.
fn check_signature(
    token: &str,
    alg: Algorithm,
    kid: Option<&str>,
    keys: &[Jwk],
    url: &str,
) -> std::result::Result<Option<String>, String> {
    let Some((message, signature)) = token.rsplit_once('.') else {
        return Err("not a compact JWS".into());
    };
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(match kid {
            Some(k) => format!(
                "the issuer's JWKS {url} has no key with kid {k:?}: the token was signed by another key"
            ),
            None => format!("the issuer's JWKS {url} has no usable key"),
        });
    }
    for k in candidates {
        // A key that declares its algorithm is used only for that algorithm.
        if let Some(ka) = k.common.key_algorithm {
            if ka.to_string() != format!("{alg:?}") {
                continue;
            }
        }
        let Ok(dk) = DecodingKey::from_jwk(k) else {
            continue;
        };
        if let Ok(true) = jsonwebtoken::crypto::verify(signature, message.as_bytes(), &dk, alg) {
            return Ok(k.common.key_id.clone());
        }
    }
    Err(format!(
        "the signature does not verify with {} of the issuer's JWKS {url}: the token was altered or signed by another key",
        match kid {
            Some(k) => format!("key {k:?}"),
            None => "any key".into(),
        }
    ))
}

/// Verify `token` (already decoded as `jwt`). `Ok` carries the verdict of a
/// verification that ran; `Err` is a token that cannot be checked at all (no
/// `iss`, a refused algorithm: 77) or keys that cannot be fetched (75).
pub fn verify(http: &Http, token: &str, jwt: &Jwt, expect: &Expect, now: i64) -> Result<Verdict> {
    crate::jws::install();
    let alg_name = jwt
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let alg = algorithm(&alg_name).ok_or_else(|| {
        Error::perm(format!(
            "signature check failed: algorithm {alg_name:?} is not accepted (only RS*, PS*, ES256, ES384, EdDSA)"
        ))
    })?;
    let iss = jwt
        .str_claim("iss")
        .ok_or_else(|| Error::perm("iss check failed: the token has no iss claim"))?
        .to_string();
    if let Some(want) = &expect.issuer {
        if iss.trim_end_matches('/') != want.trim_end_matches('/') {
            return Err(Error::perm(format!(
                "iss check failed: the token was issued by {iss:?}, not {want:?}"
            )));
        }
    }
    check_url(&iss, "the token's iss")
        .map_err(|e| Error::perm(format!("iss check failed: {e}")))?;
    let kid = jwt.header.get("kid").and_then(Value::as_str);

    let uri = jwks_uri(http, &iss)?;
    let keys = fetch_jwks(http, &uri)?;
    let verified_kid = check_signature(token, alg, kid, &keys, &uri)
        .map_err(|e| Error::perm(format!("signature check failed: {e}")))?;

    let mut v = Verdict {
        kid: verified_kid,
        alg: alg_name,
        jwks_uri: uri,
        failed: Vec::new(),
        expired_for: None,
        notes: Vec::new(),
    };
    let time = |name: &str| jwt.claims.get(name).map(numeric_date);
    // Saturating: iat and nbf are not bounded like exp (`token::exp_of`).
    match jwt.expiry() {
        Ok(exp) if exp.saturating_add(LEEWAY) <= now => {
            v.expired_for = Some(crate::token::until(now, exp))
        }
        Ok(_) => {}
        Err(e) => v.failed.push(format!("exp: {e}")),
    }
    match time("nbf") {
        Some(Some(nbf)) if nbf > now.saturating_add(LEEWAY) => v.failed.push(format!(
            "nbf: not valid before {} s from now",
            nbf.saturating_sub(now)
        )),
        Some(None) => v.failed.push("nbf: not a number".into()),
        _ => {}
    }
    if let Some(Some(iat)) = time("iat") {
        if iat > now.saturating_add(LEEWAY) {
            v.failed.push(format!(
                "iat: issued {} s in the future",
                iat.saturating_sub(now)
            ));
        }
    }
    if !expect.audience.is_empty() {
        let auds = jwt.audiences();
        if auds.iter().any(|a| expect.audience.contains(a)) {
        } else if auds.iter().any(|a| a == ANY_AUDIENCE) {
            v.notes.push(format!(
                "aud: accepted through the WLCG audience {ANY_AUDIENCE}"
            ));
        } else {
            v.failed.push(format!(
                "aud: the token is for {}, not {}",
                if auds.is_empty() {
                    "no audience".to_string()
                } else {
                    auds.join(" ")
                },
                expect.audience.join(" or ")
            ));
        }
    }
    if !expect.scopes.is_empty() {
        let granted = jwt.scopes();
        let missing = scope::missing(&granted, &expect.scopes);
        if !missing.is_empty() {
            v.failed.push(format!(
                "scope: {} not granted (the token has {})",
                missing.join(" "),
                if granted.is_empty() {
                    "no scope".to_string()
                } else {
                    granted.join(" ")
                }
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms() {
        assert!(algorithm("RS256").is_some());
        assert!(algorithm("ES256").is_some());
        assert!(algorithm("EdDSA").is_some());
        for bad in ["none", "HS256", "", "rs256", "RS1"] {
            assert!(algorithm(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn jwks_skips_keys_it_cannot_use() {
        let body = br#"{"keys":[
            {"kty":"RSA","use":"enc","kid":"e","n":"sXch","e":"AQAB"},
            {"kty":"weird","kid":"w"},
            {"kty":"RSA","kid":"s","alg":"RS256","n":"sXch","e":"AQAB"}]}"#;
        let keys = parse_jwks(body, "https://x/jwks").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("s"));
        assert!(parse_jwks(b"<html>", "u").is_err());
        assert!(parse_jwks(b"{}", "u").is_err());
    }
}
