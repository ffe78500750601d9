//! Bearer tokens as JWTs: split, decode (no signature check; that is `inspect --verify`),
//! and answer the one question the cron path asks: how long does this token live?

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
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

/// The latest `exp` a usable token may carry: 9998-12-31T23:59:59Z. A later one is
/// no real expiry time (and every accepted one can be shown as a date).
pub const MAX_EXP: i64 = 253_370_764_799;

/// The expiry time of a token, or why the token is unusable. The one question the
/// cron path asks, decided by [`exp_of`] like everywhere else.
pub fn expiry(token: &str) -> Result<i64, NotJwt> {
    times(token).map(|t| t.exp)
}

/// `exp` (decided by [`exp_of`]), and `iat` when the token has a numeric one: the
/// token's own lifetime (`exp - iat`) sets the default renewal margin
/// (`token::default_minsecs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub exp: i64,
    pub iat: Option<i64>,
}

/// [`Times`] of a token, or why it is unusable.
pub fn times(token: &str) -> Result<Times, NotJwt> {
    let jwt = decode(token)?;
    Ok(Times {
        exp: jwt.expiry()?,
        iat: jwt.iat(),
    })
}

/// THE decision, for `get`, `check`, `status`, `inspect` and a token just issued: a
/// token is usable only with an `exp` that is a NumericDate (a JSON number, RFC 7519
/// 2; a fraction is cut off) from 1970 up to [`MAX_EXP`]. Missing, not a number,
/// negative or later: unusable. Bounding it here keeps all later arithmetic on it
/// (`exp - now`) far from overflow.
pub fn exp_of(claim: Option<&Value>) -> Result<i64, NotJwt> {
    let v = match claim {
        None | Some(Value::Null) => return Err(NotJwt("the token has no exp claim")),
        Some(v) => v,
    };
    match numeric_date(v) {
        None => Err(NotJwt("the exp claim is not a number")),
        Some(e) if e < 0 => Err(NotJwt("the exp claim is negative")),
        Some(e) if e > MAX_EXP => Err(NotJwt("the exp claim is in the year 9999 or later")),
        Some(e) => Ok(e),
    }
}

/// RFC 7519 NumericDate: seconds, possibly fractional (rounded down). Numbers beyond
/// the i64 range saturate; anything but a finite number is `None`.
pub fn numeric_date(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    n.as_i64().or_else(|| {
        // `as` saturates: 1e300 and 2^64-1 become i64::MAX.
        n.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

/// Seconds from `now` until `t` (negative when past), without overflow.
pub fn until(t: i64, now: i64) -> i64 {
    t.saturating_sub(now)
}

impl Jwt {
    /// The expiry time, or why the token is unusable: see [`exp_of`].
    pub fn expiry(&self) -> Result<i64, NotJwt> {
        exp_of(self.claims.get("exp"))
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
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The renewal margin when `--minsecs` is not given: one hour, or half the token's own
/// lifetime (`exp - iat`) when that is shorter. A 1-hour token (INDIGO IAM's default)
/// is then renewed once per half hour, not on every cron run, and tokens of 2 hours
/// and more keep the classic hour (igwn-robot-get's `--minsecs 3600`). Without a
/// usable `iat` the lifetime is unknown: one hour.
pub fn default_minsecs(exp: i64, iat: Option<i64>) -> i64 {
    match iat {
        Some(iat) if iat < exp => DEFAULT_MINSECS.min(exp.saturating_sub(iat) / 2),
        _ => DEFAULT_MINSECS,
    }
}

/// The cap of [`default_minsecs`], and the margin when no token says more.
pub const DEFAULT_MINSECS: i64 = 3600;

/// The margin for this token: `--minsecs` exactly when given, else the default rule.
pub fn margin(minsecs: Option<i64>, t: &Times) -> i64 {
    minsecs.unwrap_or_else(|| default_minsecs(t.exp, t.iat))
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
    fn absurd_exps_are_unusable() {
        for (exp, why) in [
            ("-9223372036854775808", "negative"),
            ("-1", "negative"),
            ("-0.5", "negative"),
            ("9223372036854775807", "9999"),
            ("18446744073709551615", "9999"),
            ("1e300", "9999"),
            ("253370764800", "9999"),
            ("\"1700000000\"", "not a number"),
            ("true", "not a number"),
            ("[1]", "not a number"),
            ("null", "no exp"),
        ] {
            let e = expiry(&make(&format!(r#"{{"exp":{exp}}}"#))).unwrap_err();
            assert!(e.0.contains(why), "{exp}: {e}");
        }
        assert_eq!(expiry(&make(r#"{"exp":253370764799}"#)), Ok(MAX_EXP));
        assert_eq!(expiry(&make(r#"{"exp":0}"#)), Ok(0));
        assert_eq!(expiry(&make(r#"{"exp":1e9}"#)), Ok(1_000_000_000));
        // The full decode and the cron path agree, duplicate keys included.
        let dup = make(r#"{"exp":5,"exp":-5}"#);
        assert_eq!(expiry(&dup), decode(&dup).unwrap().expiry());
        assert_eq!(until(i64::MIN, i64::MAX), i64::MIN);
    }

    #[test]
    fn claims_accessors() {
        let t = decode(&make(
            r#"{"exp":5,"aud":["a","b"],"scope":"storage.read:/ compute.read"}"#,
        ))
        .unwrap();
        assert_eq!(t.expiry(), Ok(5));
        assert_eq!(t.audiences(), vec!["a", "b"]);
        assert_eq!(t.scopes(), vec!["storage.read:/", "compute.read"]);
    }

    #[test]
    fn trims_line_endings() {
        assert_eq!(trim("abc\r\n"), "abc");
        assert_eq!(trim("  abc\n"), "abc");
    }
}
