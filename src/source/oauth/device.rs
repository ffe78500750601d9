//! The device authorization grant (RFC 8628) that `init` runs: ask for a code, then
//! poll the token endpoint until the user has approved.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{check_url, Http, Reply, Retry};
use crate::issuer::describe_body;
use crate::secret::{Secret, Untrusted};

use super::client::{post_authenticated, Client};
use super::{
    error_reply, send_token_request, token_reply, Grant, OAuthError, TokenRequest, TokenResponse,
};

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

pub(super) fn classify_poll(reply: &Reply, req: &TokenRequest) -> Result<Poll> {
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
