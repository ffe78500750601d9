//! What an OAuth2 issuer publishes and how its answers are described: the discovery
//! document (OpenID Connect Discovery 1.0 / RFC 8414), fetched by the OAuth source,
//! `init`, `revoke`, `get --dry-run` and `inspect --verify`.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{check_url, Http, Reply, Retry};
use crate::secret::untrusted_text;

/// The issuer's discovery document, as much of it as we use.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub issuer: Option<String>,
    pub token_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    /// RFC 7009 (RFC 8414 names it in the metadata).
    pub revocation_endpoint: Option<String>,
}

/// Parse a discovery document. Never panics.
pub fn parse_metadata(body: &[u8]) -> std::result::Result<Metadata, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| format!("unexpected field type: {e}"))
        }
        Ok(_) => Err("not a JSON object".into()),
        Err(_) => Err(format!("not JSON ({})", describe_body(body))),
    }
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, 4).
pub fn discover(http: &Http, issuer: &str) -> Result<Metadata> {
    discover_with_date(http, issuer).map(|(m, _)| m)
}

/// [`discover`], with the answer's `Date` header (the issuer's clock).
pub fn discover_with_date(http: &Http, issuer: &str) -> Result<(Metadata, Option<String>)> {
    check_url(issuer, "issuer")?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let reply = http
        .send(
            &url,
            &[("Accept", "application/json")],
            None,
            Retry::Idempotent,
        )
        .map_err(|f| f.into_error("cannot fetch discovery document", &url))?;
    match reply.status {
        200 => {}
        429 | 500..=599 => {
            return Err(Error::temp(format!(
                "discovery document {url}: the issuer answered HTTP {}{}",
                reply.status,
                retry_hint(&reply)
            )))
        }
        s => {
            return Err(Error::config(format!(
                "no discovery document at {url} (HTTP {s}): check the issuer URL, or set token_endpoint"
            )))
        }
    }
    let meta = parse_metadata(&reply.body)
        .map_err(|e| Error::config(format!("discovery document {url} is unusable: {e}")))?;
    if let Some(iss) = &meta.issuer {
        if !same_issuer(iss, issuer) {
            return Err(Error::config(format!(
                "discovery document {url} names issuer {}, not {issuer}: check the issuer URL",
                untrusted_text(iss)
            )));
        }
    }
    Ok((meta, reply.date))
}

pub fn retry_hint(r: &Reply) -> String {
    match r.retry_after {
        Some(d) => format!(" (Retry-After {} s); a later run will retry", d.as_secs()),
        None => "; a later run will retry".into(),
    }
}

/// Say what a body is without quoting it: it may be an HTML page, or hold a secret.
pub fn describe_body(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let t = t.trim_start();
    if body.is_empty() {
        "empty body".into()
    } else if t.starts_with('<') {
        "an HTML page".into()
    } else if t.starts_with('{') {
        "truncated or invalid JSON".into()
    } else {
        format!("{} bytes of non-JSON", body.len())
    }
}

/// An issuer that is busy or failing (HTTP 429 or 5xx): what it answered, and when
/// to try again.
pub fn busy_answer(reply: &Reply, endpoint: &str) -> String {
    format!(
        "{endpoint} answered HTTP {} with {}{}",
        reply.status,
        describe_body(&reply.body),
        retry_hint(reply)
    )
}
