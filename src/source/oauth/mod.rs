//! OAuth2 at the token endpoint: the token request for each grant, and turning every
//! kind of answer into a token or an error with the right exit code. The issuer's
//! discovery document is `crate::issuer`'s.
//!
//! Beside it: `client` (how the client authenticates), `assertion` (RFC 7523 signed
//! assertions), `exchange` (RFC 8693 subject tokens), `device` (RFC 8628, for `init`)
//! and `revocation` (RFC 7009, for `revoke`).

pub mod assertion;
mod client;
mod device;
pub mod exchange;
mod revocation;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Exit, Result, Tag};
use crate::http::{check_url, Failure, Http, Reply, Retry};
use crate::issuer::{busy_answer, describe_body, discover, retry_hint};
use crate::secret::{untrusted_text, Secret, Untrusted};

use self::client::post_authenticated;
pub use self::client::{auth_name, Client, ClientAuth};
pub use self::device::{
    device_authorization, parse_device_authorization, poll_device, DeviceAuthorization, Poll,
};
pub use self::revocation::revoke_refresh_token;

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
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
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
pub(super) struct OAuthError {
    error: Untrusted,
    error_description: Option<Untrusted>,
}

/// Turn a non-200 answer into an error with the right exit code and advice.
pub(super) fn error_reply(reply: &Reply, endpoint: &str, grant: &Grant) -> Error {
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
        429 | 500..=599 => Error::temp(busy_answer(reply, endpoint)),
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
pub(super) fn send_token_request(http: &Http, req: &TokenRequest) -> Result<Reply> {
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

/// Send the token request and parse the answer.
pub fn request_token(http: &Http, req: &TokenRequest) -> Result<TokenResponse> {
    let reply = send_token_request(http, req)?;
    token_reply(&reply, req)
}

pub(super) fn token_reply(reply: &Reply, req: &TokenRequest) -> Result<TokenResponse> {
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

#[cfg(test)]
mod tests;
