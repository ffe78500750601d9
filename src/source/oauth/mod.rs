//! OAuth2 at the token endpoint: OpenID discovery, the token request for each grant,
//! and turning every kind of answer into a token or an error with the right exit code.

pub mod assertion;
pub mod exchange;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Exit, Result, Tag};
use crate::http::{check_url, Failure, Http, Reply, Retry};
use crate::issuer::{describe_body, discover, retry_hint};
use crate::secret::{untrusted_text, Secret, Untrusted};
use crate::source::oauth::assertion::{SigningKey, ASSERTION_TYPE};

/// What the client sends to prove who it is.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
    /// The private key for `private_key_jwt`.
    pub key: Option<SigningKey>,
}

/// The default `subject_token_type` of a token exchange.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grant to redeem.
#[derive(Clone, Debug)]
pub enum Grant {
    RefreshToken(Secret),
    ClientCredentials,
    /// RFC 8628 3.4: the device code of an approved device authorization.
    DeviceCode(Secret),
    /// RFC 8693 2.1: exchange a subject token for an access token.
    TokenExchange {
        subject_token: Secret,
        subject_token_type: String,
        requested_token_type: Option<String>,
    },
}

impl Grant {
    pub fn name(&self) -> &'static str {
        match self {
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
            Grant::DeviceCode(_) => GRANT_DEVICE_CODE,
            Grant::TokenExchange { .. } => GRANT_TOKEN_EXCHANGE,
        }
    }

    /// Short name for messages.
    fn short(&self) -> &'static str {
        match self {
            Grant::DeviceCode(_) => "device_code",
            Grant::TokenExchange { .. } => "token_exchange",
            g => g.name(),
        }
    }
}

/// What a client adds to a request to authenticate: a header, form fields, or both.
struct Auth {
    header: Option<Secret>,
    fields: Vec<(&'static str, Secret)>,
}

/// Authentication for a request to `aud_endpoint`, the URL being called: a
/// `private_key_jwt` assertion's `aud` is that URL (the token endpoint for token
/// requests, the device authorization endpoint in `init`). RFC 7523 allows "the token
/// endpoint URL" for the token endpoint; issuers that check strictly accept for any
/// endpoint only its own URL, and lenient ones (oidc-provider, Keycloak) accept it too.
fn client_auth(client: &Client, aud_endpoint: &str) -> Result<Auth> {
    let id = || Secret::new(client.id.clone());
    Ok(match (client.auth, &client.secret, &client.key) {
        (ClientAuth::PrivateKeyJwt, _, Some(key)) => Auth {
            header: None,
            fields: vec![
                ("client_id", id()),
                ("client_assertion_type", Secret::new(ASSERTION_TYPE)),
                ("client_assertion", key.assertion(&client.id, aud_endpoint)?),
            ],
        },
        (ClientAuth::PrivateKeyJwt, _, None) => {
            return Err(Error::config(
                "client_auth private_key_jwt needs a private key: set \"private_key_file\" (or --private-key-file)",
            ))
        }
        (ClientAuth::Basic, Some(secret), _) => Auth {
            header: Some(basic_auth(&client.id, secret.expose())),
            fields: vec![],
        },
        (ClientAuth::Post, Some(secret), _) => Auth {
            header: None,
            fields: vec![("client_id", id()), ("client_secret", secret.clone())],
        },
        _ => Auth {
            header: None,
            fields: vec![("client_id", id())],
        },
    })
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

/// An OAuth2 error answer (RFC 6749 5.2). Both fields are the issuer's words: they
/// print only cleaned and redacted ([`Untrusted`]), wherever they go.
#[derive(Deserialize)]
struct OAuthError {
    error: Untrusted,
    error_description: Option<Untrusted>,
}

/// Turn a non-200 answer into an error with the right exit code and advice.
fn error_reply(reply: &Reply, endpoint: &str, grant: &Grant) -> Error {
    let oauth: Option<OAuthError> = serde_json::from_slice(&reply.body).ok();
    if let Some(e) = oauth {
        let desc = e
            .error_description
            .filter(|d| !d.is_empty())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let what = format!("{} ({}{desc})", endpoint, e.error);
        return match e.error.raw() {
            "invalid_grant" => match grant {
                Grant::RefreshToken(_) => Error::perm(format!(
                    "refresh token rejected by {what}: bootstrap a new credential (robot-token init)"
                ))
                .tagged(Tag::RefreshRejected),
                Grant::TokenExchange { .. } => Error::perm(format!(
                    "subject token rejected by {what}: check that it is unexpired and from an issuer this one trusts"
                )),
                Grant::DeviceCode(_) => Error::perm(format!(
                    "device code rejected by {what}: run robot-token init again"
                )),
                _ => Error::perm(format!("grant rejected by {what}")),
            },
            "invalid_client" | "unauthorized_client" => Error::perm(format!(
                "client rejected by {what}: check client_id, the client secret or private key, and client_auth"
            )),
            "access_denied" => Error::perm(format!("access denied by {what}")),
            "temporarily_unavailable" | "slow_down" => {
                Error::temp(format!("{what}{}", retry_hint(reply)))
            }
            "invalid_scope" | "invalid_target" => Error::config(format!(
                "the issuer refused the requested scope or audience: {what}: ask only for \
                 scopes and audiences this client is allowed (--scope/--audience, the \
                 credential's \"scope\"/\"audience\"), or ask the issuer's admins for them"
            )),
            // Non-standard spellings (`scope_invalid`, `insufficient_scope`): the
            // issuer names a scope problem, whatever the code.
            code if code.contains("scope") => Error::config(format!(
                "the issuer refused the requested scope: {what}: ask only for scopes this \
                 client is allowed (--scope, the credential's \"scope\"), or ask the issuer's \
                 admins for them"
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
                .map(|l| format!(" to {}", untrusted_text(l)))
                .unwrap_or_default()
        )),
        // A refresh token refused without a reason (some issuers answer a used,
        // revoked or expired one with a bare 400): the credential is gone.
        400 if matches!(grant, Grant::RefreshToken(_)) => Error::perm(format!(
            "refresh token refused by {endpoint} (HTTP 400 with {}; the issuer gave no reason): \
             it was probably used, revoked or has expired: bootstrap a new credential (robot-token init)",
            describe_body(&reply.body)
        ))
        .tagged(Tag::RefreshRejected),
        // Some issuers refuse a client_credentials request with a bare 403 both when
        // the secret is wrong and when a scope they require is missing.
        401 | 403 if matches!(grant, Grant::ClientCredentials) => Error::perm(format!(
            "{endpoint} refused the client_credentials request (HTTP {} with {}; the issuer gave \
             no reason): either the client secret or key is wrong (check client_id, the secret \
             and client_auth), or the issuer requires a scope this request does not ask for \
             (--scope, the credential's \"scope\")",
            reply.status,
            describe_body(&reply.body)
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

/// Send the token request and return the raw reply. A refresh token and a device
/// code are sent at most once.
fn send_token_request(http: &Http, req: &TokenRequest) -> Result<Reply> {
    let scope = req.scope.join(" ");
    let audience = req.audience.join(" ");
    let mut pairs: Vec<(&str, &str)> = vec![("grant_type", req.grant.name())];
    match req.grant {
        Grant::RefreshToken(rt) => pairs.push(("refresh_token", rt.expose())),
        Grant::DeviceCode(dc) => pairs.push(("device_code", dc.expose())),
        Grant::TokenExchange {
            subject_token,
            subject_token_type,
            requested_token_type,
        } => {
            pairs.push(("subject_token", subject_token.expose()));
            pairs.push(("subject_token_type", subject_token_type));
            if let Some(t) = requested_token_type {
                pairs.push(("requested_token_type", t));
            }
        }
        Grant::ClientCredentials => {}
    }
    // A device-code poll repeats the scope of the authorization request only when
    // asked to; the grant already carries it.
    if !scope.is_empty() && !matches!(req.grant, Grant::DeviceCode(_)) {
        pairs.push(("scope", &scope));
    }
    if !audience.is_empty() && !matches!(req.grant, Grant::DeviceCode(_)) {
        pairs.push(("audience", &audience));
    }
    // A refresh token may be dead once redeemed, and a device code is redeemed once
    // (some issuers revoke the grant when a used code is polled again). An exchange
    // or client_credentials request only asks for a new token: repeating it is safe.
    let retry = match req.grant {
        Grant::RefreshToken(_) | Grant::DeviceCode(_) => Retry::AtMostOnce,
        Grant::ClientCredentials | Grant::TokenExchange { .. } => Retry::Idempotent,
    };
    tracing::info!(
        "requesting a token from {} (grant {}{}, client {} by {})",
        req.endpoint,
        req.grant.short(),
        match req.grant {
            Grant::RefreshToken(rt) => format!(", refresh token {rt}"),
            Grant::TokenExchange { subject_token, .. } =>
                format!(", subject token {subject_token}"),
            _ => String::new(),
        },
        req.client.id,
        auth_name(req.client.auth),
    );
    post_authenticated(http, req.endpoint, req.client, req.endpoint, &pairs, retry)?
        .map_err(|f| transport_error(f, req))
}

/// POST `pairs` as a form with the client's authentication (RFC 6749 2.3; RFC 7523 with
/// `assertion_aud` as the assertion's audience: the URL called, see `client_auth`).
/// The secrets live only for the call.
fn post_authenticated(
    http: &Http,
    endpoint: &str,
    client: &Client,
    assertion_aud: &str,
    pairs: &[(&str, &str)],
    retry: Retry,
) -> Result<std::result::Result<Reply, Failure>> {
    let auth = client_auth(client, assertion_aud)?;
    let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
    if let Some(h) = &auth.header {
        headers.push(("Authorization", h.expose()));
    }
    let mut all = pairs.to_vec();
    for (k, v) in &auth.fields {
        all.push((k, v.expose()));
    }
    let body = zeroize::Zeroizing::new(form(&all));
    drop(all);
    Ok(http.send(endpoint, &headers, Some(&body), retry))
}

/// The RFC 7591 name of a client authentication method, for messages.
pub fn auth_name(a: ClientAuth) -> &'static str {
    match a {
        ClientAuth::Basic => "client_secret_basic",
        ClientAuth::Post => "client_secret_post",
        ClientAuth::None => "client_id only",
        ClientAuth::PrivateKeyJwt => "private_key_jwt",
    }
}

/// Send the token request and parse the answer.
pub fn request_token(http: &Http, req: &TokenRequest) -> Result<TokenResponse> {
    let reply = send_token_request(http, req)?;
    token_reply(&reply, req)
}

fn token_reply(reply: &Reply, req: &TokenRequest) -> Result<TokenResponse> {
    if reply.status != 200 {
        return Err(error_reply(reply, req.endpoint, req.grant));
    }
    parse_token_response(&reply.body).map_err(|what| {
        Error::data(format!(
            "{} answered HTTP 200 with {what}, not a token response; the old token is kept",
            req.endpoint
        ))
    })
}

/// Revoke a refresh token (RFC 7009 2.1) at `endpoint` with the client's
/// authentication (`assertion_aud`: the token endpoint, the audience every issuer
/// accepts for a client assertion). A 200 answer means the token is dead, also when the
/// issuer no longer knew it (RFC 7009 2.2), so repeating the request is safe.
pub fn revoke_refresh_token(
    http: &Http,
    endpoint: &str,
    client: &Client,
    assertion_aud: &str,
    refresh_token: &Secret,
) -> Result<()> {
    check_url(endpoint, "revocation endpoint")?;
    tracing::info!(
        "revoking the refresh token {refresh_token} at {endpoint} (client {} by {})",
        client.id,
        auth_name(client.auth)
    );
    let pairs = [
        ("token", refresh_token.expose()),
        ("token_type_hint", "refresh_token"),
    ];
    let reply = post_authenticated(
        http,
        endpoint,
        client,
        assertion_aud,
        &pairs,
        Retry::Idempotent,
    )?
    .map_err(|f| {
        f.into_error("cannot reach the revocation endpoint", endpoint)
            .context("nothing was revoked and no file was changed")
    })?;
    if reply.status == 200 {
        return Ok(());
    }
    Err(revocation_error(&reply, endpoint))
}

/// A refused revocation: what the issuer said and what to do. Local files stay, so the
/// operator can run revoke again.
fn revocation_error(reply: &Reply, endpoint: &str) -> Error {
    let kept = "the refresh token may still be valid; no file was changed";
    if let Ok(e) = serde_json::from_slice::<OAuthError>(&reply.body) {
        let desc = e
            .error_description
            .filter(|d| !d.is_empty())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let what = format!("{endpoint} ({}{desc})", e.error);
        return match e.error.raw() {
            "invalid_client" | "unauthorized_client" => Error::perm(format!(
                "the issuer refused the client at {what}; {kept}: check client_id, the client \
                 secret or private key, and client_auth, then run revoke again"
            )),
            "unsupported_token_type" => Error::perm(format!(
                "the issuer does not revoke refresh tokens at {what}; {kept}: ask the issuer's \
                 administrators to revoke it (or delete the client), then remove the files"
            )),
            "temporarily_unavailable" => Error::temp(format!(
                "{what}{}; {kept}: run revoke again",
                retry_hint(reply)
            )),
            _ if reply.status >= 500 || reply.status == 429 => Error::temp(format!(
                "{what}{}; {kept}: run revoke again",
                retry_hint(reply)
            )),
            _ => Error::perm(format!(
                "the issuer refused the revocation at {what}; {kept}"
            )),
        };
    }
    match reply.status {
        429 | 500..=599 => Error::temp(format!(
            "{endpoint} answered HTTP {} with {}{}; {kept}: run revoke again",
            reply.status,
            describe_body(&reply.body),
            retry_hint(reply)
        )),
        300..=399 | 404 | 405 => Error::config(format!(
            "{endpoint} answered HTTP {}: it is not a revocation endpoint; {kept}: check the \
             issuer's discovery document",
            reply.status
        )),
        s => Error::perm(format!(
            "the issuer refused the revocation at {endpoint} (HTTP {s} with {}); {kept}",
            describe_body(&reply.body)
        )),
    }
}

/// The answer to one device-code poll (RFC 8628 3.5).
#[derive(Debug)]
pub enum Poll {
    Token(TokenResponse),
    /// `authorization_pending`, or a 5xx/429 that redeemed nothing: ask again later.
    Pending(Option<std::time::Duration>),
    /// `slow_down`: add 5 s to the interval.
    SlowDown,
}

/// Poll the token endpoint once with a device code.
pub fn poll_device(http: &Http, req: &TokenRequest) -> Result<Poll> {
    let reply = send_token_request(http, req)?;
    classify_poll(&reply, req)
}

fn classify_poll(reply: &Reply, req: &TokenRequest) -> Result<Poll> {
    if reply.status == 200 {
        return token_reply(reply, req).map(Poll::Token);
    }
    let code = serde_json::from_slice::<OAuthError>(&reply.body)
        .ok()
        .map(|e| e.error);
    match code.as_ref().map(Untrusted::raw) {
        Some("authorization_pending") => Ok(Poll::Pending(None)),
        Some("slow_down") => Ok(Poll::SlowDown),
        Some("access_denied") => Err(Error::perm(
            "the login was denied at the issuer (access_denied): nothing was written; run robot-token init again to retry",
        )),
        Some("expired_token") => Err(Error::temp(
            "the device code expired before the login was approved (expired_token): nothing was written; run robot-token init again",
        )),
        _ if reply.status == 429 || reply.status >= 500 => Ok(Poll::Pending(reply.retry_after)),
        _ => Err(error_reply(reply, req.endpoint, req.grant)),
    }
}

/// A device authorization response (RFC 8628 3.2).
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: Option<u64>,
    pub interval: Option<u64>,
}

/// Parse a device authorization response. Never panics, never quotes the body.
pub fn parse_device_authorization(body: &[u8]) -> std::result::Result<DeviceAuthorization, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| describe_body(body))?;
    let Value::Object(mut m) = v else {
        return Err("JSON that is not an object".into());
    };
    let mut text = |k: &str| match m.remove(k) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(format!("\"{k}\" is not a string")),
    };
    let device_code = text("device_code")?.ok_or("no device_code")?;
    let user_code = text("user_code")?.ok_or("no user_code")?;
    // Some issuers (Google) spell it verification_url.
    let verification_uri = match text("verification_uri")? {
        Some(u) => u,
        None => text("verification_url")?.ok_or("no verification_uri")?,
    };
    let verification_uri_complete = text("verification_uri_complete")?;
    let secs = |k: &str| -> std::result::Result<Option<u64>, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or_else(|| format!("\"{k}\" is not a non-negative number")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("\"{k}\" is not a number")),
            Some(_) => Err(format!("\"{k}\" is not a number")),
        }
    };
    Ok(DeviceAuthorization {
        device_code: Secret::new(device_code),
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: secs("expires_in")?,
        interval: secs("interval")?,
    })
}

/// Start a device authorization (RFC 8628 3.1). Asking is idempotent: a lost answer
/// only leaves an unused code at the issuer.
pub fn device_authorization(
    http: &Http,
    endpoint: &str,
    client: &Client,
    scope: &[String],
    audience: &[String],
) -> Result<DeviceAuthorization> {
    check_url(endpoint, "device authorization endpoint")?;
    let scope = scope.join(" ");
    let audience = audience.join(" ");
    let mut pairs: Vec<(&str, &str)> = vec![];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    if !audience.is_empty() {
        pairs.push(("audience", &audience));
    }
    tracing::info!("starting a device authorization at {endpoint}");
    let reply = post_authenticated(http, endpoint, client, endpoint, &pairs, Retry::Idempotent)?
        .map_err(|f| f.into_error("cannot reach", endpoint))?;
    if reply.status != 200 {
        let grant = Grant::DeviceCode(Secret::new(""));
        return Err(error_reply(&reply, endpoint, &grant));
    }
    parse_device_authorization(&reply.body).map_err(|what| {
        Error::data(format!(
            "{endpoint} answered HTTP 200 with {what}, not a device authorization response"
        ))
    })
}

fn transport_error(f: Failure, req: &TokenRequest) -> Error {
    match req.grant {
        Grant::DeviceCode(_) if f.maybe_sent => Error::temp(format!(
            "the answer to the device-code poll at {} was lost ({}); the code is not polled \
             again (a used code may revoke the login): nothing was written, run robot-token init again",
            req.endpoint, f.reason
        )),
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

/// How the client proves its identity at the token endpoint (RFC 6749 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client_id and client_secret.
    Basic,
    /// client_id and client_secret in the form body.
    Post,
    /// A public client: client_id only.
    None,
    /// A JWT signed with the client's private key (RFC 7523 client assertion).
    PrivateKeyJwt,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "basic" | "client_secret_basic" => Some(ClientAuth::Basic),
            "post" | "client_secret_post" => Some(ClientAuth::Post),
            "none" => Some(ClientAuth::None),
            "private_key_jwt" => Some(ClientAuth::PrivateKeyJwt),
            _ => None,
        }
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

    /// An answer of the issuer with this status and body.
    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            content_type: None,
            retry_after: None,
            location: None,
            date: None,
        }
    }

    #[test]
    fn errors_map_to_exit_codes() {
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

    #[test]
    fn device_polls_are_classified_per_rfc8628() {
        let client = Client {
            id: "c".into(),
            secret: None,
            auth: ClientAuth::None,
            key: None,
        };
        let grant = Grant::DeviceCode(Secret::new("dc"));
        let req = TokenRequest {
            endpoint: "https://x/token",
            client: &client,
            grant: &grant,
            scope: &[],
            audience: &[],
        };
        let poll = |r: Reply| classify_poll(&r, &req);
        assert!(matches!(
            poll(reply(400, r#"{"error":"authorization_pending"}"#)),
            Ok(Poll::Pending(None))
        ));
        assert!(matches!(
            poll(reply(400, r#"{"error":"slow_down"}"#)),
            Ok(Poll::SlowDown)
        ));
        assert!(matches!(poll(reply(503, "<html>")), Ok(Poll::Pending(_))));
        let denied = poll(reply(400, r#"{"error":"access_denied"}"#)).unwrap_err();
        assert_eq!(denied.exit(), Exit::NoPerm);
        assert!(denied.message().contains("denied"), "{denied}");
        let expired = poll(reply(400, r#"{"error":"expired_token"}"#)).unwrap_err();
        assert_eq!(expired.exit(), Exit::TempFail);
        assert!(expired.message().contains("init again"), "{expired}");
        let used = poll(reply(400, r#"{"error":"invalid_grant"}"#)).unwrap_err();
        assert_eq!(used.exit(), Exit::NoPerm);
        assert!(matches!(
            poll(reply(
                200,
                r#"{"access_token":"a.b.c","refresh_token":"r"}"#
            )),
            Ok(Poll::Token(_))
        ));
        assert_eq!(poll(reply(200, "{")).unwrap_err().exit(), Exit::Data);
    }

    #[test]
    fn device_authorization_parsing() {
        let d = parse_device_authorization(
            br#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://x/device",
                "verification_uri_complete":"https://x/device?user_code=ABCD-EFGH","expires_in":600,"interval":5}"#,
        )
        .unwrap();
        assert_eq!(d.user_code, "ABCD-EFGH");
        assert_eq!((d.expires_in, d.interval), (Some(600), Some(5)));
        // Google's spelling, numbers as strings, no interval.
        let d = parse_device_authorization(
            br#"{"device_code":"dc","user_code":"U","verification_url":"https://g/device","expires_in":"1800"}"#,
        )
        .unwrap();
        assert_eq!(d.verification_uri, "https://g/device");
        assert_eq!((d.expires_in, d.interval), (Some(1800), None));
        for bad in [
            &b""[..],
            b"<html>",
            br#"{"user_code":"U","verification_uri":"v"}"#,
            br#"{"device_code":"d","verification_uri":"v"}"#,
            br#"{"device_code":"d","user_code":"U"}"#,
            br#"{"device_code":"d","user_code":"U","verification_uri":"v","interval":-1}"#,
            br#"[1]"#,
        ] {
            assert!(parse_device_authorization(bad).is_err(), "{bad:?}");
        }
        // The device code never shows in Debug.
        let d = parse_device_authorization(
            br#"{"device_code":"SECRET-DEVICE-CODE","user_code":"U","verification_uri":"v"}"#,
        )
        .unwrap();
        assert!(!format!("{d:?}").contains("SECRET-DEVICE-CODE"));
    }
}
