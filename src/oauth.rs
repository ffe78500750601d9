//! OAuth2 at the token endpoint: OpenID discovery, the token request for each grant,
//! and turning every kind of answer into a token or an error with the right exit code.

use serde::Deserialize;
use serde_json::Value;

use crate::credential::ClientAuth;
use crate::error::{Error, Exit, Result, Tag};
use crate::http::{check_url, Failure, Http, Reply, Retry};
use crate::secret::Secret;

/// What the client sends to prove who it is.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
}

/// The grant to redeem.
#[derive(Clone, Debug)]
pub enum Grant {
    RefreshToken(Secret),
    ClientCredentials,
}

impl Grant {
    fn name(&self) -> &'static str {
        match self {
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// A successful token response (RFC 6749 5.1). Secrets stay wrapped.
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    pub token_type: Option<String>,
}

/// The issuer's discovery document, as much of it as we use.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub issuer: Option<String>,
    pub token_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
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
                "discovery document {url} names issuer {iss}, not {issuer}: check the issuer URL"
            )));
        }
    }
    Ok(meta)
}

/// The token endpoint: given explicitly, or from discovery.
pub fn token_endpoint(http: &Http, issuer: Option<&str>, explicit: Option<&str>) -> Result<String> {
    if let Some(ep) = explicit {
        check_url(ep, "token endpoint")?;
        return Ok(ep.to_string());
    }
    let Some(issuer) = issuer else {
        return Err(Error::config("no issuer and no token endpoint configured"));
    };
    let meta = discover(http, issuer)?;
    let ep = meta.token_endpoint.ok_or_else(|| {
        Error::config(format!(
            "the discovery document of {issuer} names no token_endpoint: set token_endpoint in the credential file"
        ))
    })?;
    check_url(&ep, "token endpoint from discovery")?;
    Ok(ep)
}

fn retry_hint(r: &Reply) -> String {
    match r.retry_after {
        Some(d) => format!(" (Retry-After {} s); a later run will retry", d.as_secs()),
        None => "; a later run will retry".into(),
    }
}

/// Say what a body is without quoting it: it may be an HTML page, or hold a secret.
fn describe_body(body: &[u8]) -> String {
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

/// application/x-www-form-urlencoded
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
fn basic_auth(id: &str, secret: &str) -> Secret {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ))
}

/// Parse a 200 token response. Never panics, never quotes the body.
pub fn parse_token_response(body: &[u8]) -> std::result::Result<TokenResponse, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| describe_body(body))?;
    let Value::Object(mut m) = v else {
        return Err("JSON that is not an object".into());
    };
    let mut secret = |k: &str| -> std::result::Result<Option<Secret>, String> {
        match m.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(Secret::new(s))),
            Some(_) => Err(format!("\"{k}\" is not a string")),
        }
    };
    let access_token = secret("access_token")?;
    let refresh_token = secret("refresh_token")?;
    let expires_in = match m.get("expires_in") {
        Some(Value::String(s)) => s.parse().ok(),
        Some(v) => crate::token::numeric_date(v),
        None => None,
    };
    Ok(TokenResponse {
        access_token,
        refresh_token,
        expires_in,
        scope: m.get("scope").and_then(Value::as_str).map(str::to_string),
        token_type: m
            .get("token_type")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// Turn a non-200 answer into an error with the right exit code and advice.
fn error_reply(reply: &Reply, endpoint: &str, grant: &Grant) -> Error {
    let oauth: Option<OAuthError> = serde_json::from_slice(&reply.body).ok();
    if let Some(e) = oauth {
        let desc = e
            .error_description
            .filter(|d| !d.is_empty())
            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        let what = format!("{} ({}{desc})", endpoint, e.error);
        return match e.error.as_str() {
            "invalid_grant" => match grant {
                Grant::RefreshToken(_) => Error::perm(format!(
                    "refresh token rejected by {what}: bootstrap a new credential (robot-token init)"
                ))
                .tagged(Tag::RefreshRejected),
                _ => Error::perm(format!("grant rejected by {what}")),
            },
            "invalid_client" | "unauthorized_client" => Error::perm(format!(
                "client rejected by {what}: check client_id, the client secret and client_auth"
            )),
            "access_denied" => Error::perm(format!("access denied by {what}")),
            "temporarily_unavailable" | "slow_down" => {
                Error::temp(format!("{what}{}", retry_hint(reply)))
            }
            "invalid_scope" | "invalid_target" => Error::config(format!(
                "the issuer refused the requested scope or audience: {what}"
            )),
            _ if reply.status >= 500 || reply.status == 429 => {
                Error::temp(format!("{what}{}", retry_hint(reply)))
            }
            _ => Error::config(format!("token request refused by {what}")),
        };
    }
    match reply.status {
        429 | 500..=599 => Error::temp(format!(
            "{endpoint} answered HTTP {} with {}{}",
            reply.status,
            describe_body(&reply.body),
            retry_hint(reply)
        )),
        300..=399 => Error::config(format!(
            "{endpoint} redirects (HTTP {}{}): configure the final token endpoint",
            reply.status,
            reply
                .location
                .as_deref()
                .map(|l| format!(" to {l}"))
                .unwrap_or_default()
        )),
        401 | 403 => Error::perm(format!(
            "{endpoint} refused the client (HTTP {}): check the client credentials",
            reply.status
        )),
        s => Error::config(format!(
            "{endpoint} answered HTTP {s} with {}: check the token endpoint",
            describe_body(&reply.body)
        )),
    }
}

/// Everything that goes into one token request.
pub struct TokenRequest<'a> {
    pub endpoint: &'a str,
    pub client: &'a Client,
    pub grant: &'a Grant,
    pub scope: &'a [String],
    pub audience: &'a [String],
}

/// Send the token request. A refresh token is sent at most once.
pub fn request_token(http: &Http, req: &TokenRequest) -> Result<TokenResponse> {
    let scope = req.scope.join(" ");
    let audience = req.audience.join(" ");
    let mut pairs: Vec<(&str, &str)> = vec![("grant_type", req.grant.name())];
    if let Grant::RefreshToken(rt) = req.grant {
        pairs.push(("refresh_token", rt.expose()));
    }
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    if !audience.is_empty() {
        pairs.push(("audience", &audience));
    }
    let auth_header;
    let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
    match (req.client.auth, &req.client.secret) {
        (ClientAuth::Basic, Some(secret)) => {
            auth_header = basic_auth(&req.client.id, secret.expose());
            headers.push(("Authorization", auth_header.expose()));
        }
        (ClientAuth::Post, Some(secret)) => {
            pairs.push(("client_id", &req.client.id));
            pairs.push(("client_secret", secret.expose()));
        }
        _ => pairs.push(("client_id", &req.client.id)),
    }
    let body = zeroize::Zeroizing::new(form(&pairs));
    drop(pairs);
    let retry = match req.grant {
        Grant::RefreshToken(_) => Retry::AtMostOnce,
        Grant::ClientCredentials => Retry::Idempotent,
    };
    tracing::info!(
        "requesting a token from {} (grant {}{})",
        req.endpoint,
        req.grant.name(),
        match req.grant {
            Grant::RefreshToken(rt) => format!(", refresh token {rt}"),
            _ => String::new(),
        }
    );
    let reply = http
        .send(req.endpoint, &headers, Some(&body), retry)
        .map_err(|f| transport_error(f, req))?;
    if reply.status != 200 {
        return Err(error_reply(&reply, req.endpoint, req.grant));
    }
    parse_token_response(&reply.body).map_err(|what| {
        Error::data(format!(
            "{} answered HTTP 200 with {what}, not a token response; the old token is kept",
            req.endpoint
        ))
    })
}

fn transport_error(f: Failure, req: &TokenRequest) -> Error {
    match req.grant {
        Grant::RefreshToken(rt) if f.maybe_sent => Error::new(
            Exit::TempFail,
            format!(
                "refresh request to {} may have reached the issuer but no answer arrived ({}); \
                 the refresh token {rt} is not resent in this run. If the issuer rotated it, \
                 the credential may need re-bootstrapping (robot-token init); the next run will tell",
                req.endpoint, f.reason
            ),
        )
        .tagged(Tag::LostResponse),
        _ => f.into_error("cannot reach", req.endpoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_parsing() {
        let r = parse_token_response(
            br#"{"access_token":"a.b.c","refresh_token":"r","expires_in":"60","scope":"x y"}"#,
        )
        .unwrap();
        assert_eq!(r.access_token.unwrap().expose(), "a.b.c");
        assert_eq!(r.expires_in, Some(60));
        assert!(parse_token_response(b"").unwrap_err().contains("empty"));
        assert!(parse_token_response(b"<html>")
            .unwrap_err()
            .contains("HTML"));
        assert!(parse_token_response(br#"{"access_token": "ey"#)
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_token_response(br#"{"access_token": 5}"#).is_err());
        assert!(parse_token_response(br#"{"token_type":"Bearer"}"#)
            .unwrap()
            .access_token
            .is_none());
    }

    #[test]
    fn basic_auth_encodes_per_rfc6749() {
        let h = basic_auth("a:b", "c d");
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.expose().trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(raw, b"a%3Ab:c+d");
    }

    #[test]
    fn errors_map_to_exit_codes() {
        let reply = |status, body: &str| Reply {
            status,
            body: body.as_bytes().to_vec(),
            content_type: None,
            retry_after: None,
            location: None,
        };
        let rt = Grant::RefreshToken(Secret::new("r"));
        let cc = Grant::ClientCredentials;
        let code = |r: Reply, g: &Grant| error_reply(&r, "https://x/token", g).exit();
        assert_eq!(
            code(reply(400, r#"{"error":"invalid_grant"}"#), &rt),
            Exit::NoPerm
        );
        assert_eq!(
            code(reply(401, r#"{"error":"invalid_client"}"#), &cc),
            Exit::NoPerm
        );
        assert_eq!(code(reply(503, "<html>down</html>"), &cc), Exit::TempFail);
        assert_eq!(code(reply(429, ""), &cc), Exit::TempFail);
        assert_eq!(code(reply(404, "nope"), &cc), Exit::Config);
        assert_eq!(
            code(reply(400, r#"{"error":"invalid_scope"}"#), &cc),
            Exit::Config
        );
        let m = error_reply(
            &reply(400, r#"{"error":"invalid_grant"}"#),
            "https://x/token",
            &rt,
        );
        assert!(m.message().contains("bootstrap"), "{m}");
    }
}
