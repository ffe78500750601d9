//! Bearer tokens as JWTs: split, decode (no signature check; that is `inspect --verify`),
//! and answer the one question the cron path asks: how long does this token live?

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

/// base64url, with or without padding: issuers differ.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest token we accept. WLCG tokens are 1-2 KB; 64 KiB leaves room for
/// anything real and bounds what a hostile file can make us allocate.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A decoded JWT. Holds no secret: header and claims are public by design, but the
/// raw token is not kept here.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Why a string is not a usable JWT. Messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJwt(pub &'static str);

impl std::fmt::Display for NotJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Strip what files and HTTP bodies add around a token: surrounding whitespace,
/// including a trailing LF or CRLF.
pub fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// The three base64url segments of a compact JWS.
pub fn split(token: &str) -> Result<[&str; 3], NotJwt> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(NotJwt("token is longer than 64 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(NotJwt("not a JWT (expected three dot-separated parts)"));
    };
    let b64 = |x: &str| {
        x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    if h.is_empty() || p.is_empty() || !b64(h) || !b64(p) || !b64(s) {
        return Err(NotJwt("not a JWT (parts are not base64url)"));
    }
    Ok([h, p, s])
}

fn json_object(segment: &str, what: &'static str) -> Result<Map<String, Value>, NotJwt> {
    let bytes = B64.decode(segment).map_err(|_| NotJwt(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(NotJwt(what)),
    }
}

/// Decode header and claims. Does not verify the signature.
pub fn decode(token: &str) -> Result<Jwt, NotJwt> {
    let [h, p, _] = split(token)?;
    let header = json_object(h, "not a JWT (header is not base64url JSON)")?;
    let claims = json_object(p, "not a JWT (claims are not base64url JSON)")?;
    Ok(Jwt { header, claims })
}

/// The `exp` claim of a token, with nothing else decoded: the cron path's only question.
pub fn expiry(token: &str) -> Result<i64, NotJwt> {
    times(token).map(|t| t.exp)
}

/// `exp`, and `iat` when the token has a numeric one: the token's own lifetime
/// (`exp - iat`) sets the default renewal margin (`renew::default_minsecs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub exp: i64,
    pub iat: Option<i64>,
}

/// [`Times`] of a token, with nothing else decoded.
pub fn times(token: &str) -> Result<Times, NotJwt> {
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<Value>,
        iat: Option<Value>,
    }
    let [_, p, _] = split(token)?;
    let bytes = B64
        .decode(p)
        .map_err(|_| NotJwt("not a JWT (claims are not base64url)"))?;
    // A derived struct also accepts a JSON array ([exp, iat]): claims are an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(NotJwt("not a JWT (claims are not a JSON object)"));
    }
    let claims: Claims =
        serde_json::from_slice(&bytes).map_err(|_| NotJwt("not a JWT (claims are not JSON)"))?;
    let exp = claims
        .exp
        .as_ref()
        .and_then(numeric_date)
        .ok_or(NotJwt("JWT has no numeric exp claim"))?;
    Ok(Times {
        exp,
        iat: claims.iat.as_ref().and_then(numeric_date),
    })
}

/// RFC 7519 NumericDate: seconds, possibly fractional.
pub fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

impl Jwt {
    pub fn exp(&self) -> Option<i64> {
        self.claims.get("exp").and_then(numeric_date)
    }
    pub fn iat(&self) -> Option<i64> {
        self.claims.get("iat").and_then(numeric_date)
    }
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
    /// `aud` as a list, whether the token has a string or an array.
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// Granted scopes: `scope` (space-separated, RFC 8693/9068) or `scp` (array).
    pub fn scopes(&self) -> Vec<String> {
        match (self.claims.get("scope"), self.claims.get("scp")) {
            (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_string).collect(),
            (_, Some(Value::Array(a))) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Seconds since the epoch. A clock before 1970 is treated as 0.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn make(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            B64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            B64.encode(claims)
        )
    }

    #[test]
    fn expiry_of_a_good_token() {
        assert_eq!(
            expiry(&make(r#"{"exp":1700000000,"sub":"x"}"#)),
            Ok(1700000000)
        );
        assert_eq!(expiry(&make(r#"{"exp":1700000000.5}"#)), Ok(1700000000));
    }

    #[test]
    fn rejects_non_jwts() {
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "<html>.x.y",
            "..",
            "opaque-abc123",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
            assert!(expiry(bad).is_err(), "{bad:?}");
        }
        assert!(expiry(&make(r#"{"sub":"x"}"#)).is_err());
        assert!(expiry(&make(r#"{"exp":"soon"}"#)).is_err());
        assert!(expiry(&make(r#"[1,2]"#)).is_err());
    }

    #[test]
    fn claims_accessors() {
        let t = decode(&make(
            r#"{"exp":5,"aud":["a","b"],"scope":"storage.read:/ compute.read"}"#,
        ))
        .unwrap();
        assert_eq!(t.exp(), Some(5));
        assert_eq!(t.audiences(), vec!["a", "b"]);
        assert_eq!(t.scopes(), vec!["storage.read:/", "compute.read"]);
    }

    #[test]
    fn trims_line_endings() {
        assert_eq!(trim("abc\r\n"), "abc");
        assert_eq!(trim("  abc\n"), "abc");
    }
}
