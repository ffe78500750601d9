//! Token revocation (RFC 7009), for `robot-token revoke`.

use crate::error::{Error, Result};
use crate::http::{check_url, Http, Reply, Retry};
use crate::issuer::{busy_answer, describe_body, retry_hint};
use crate::secret::Secret;

use super::client::{auth_name, post_authenticated, Client};
use super::OAuthError;

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
            "{}; {kept}: run revoke again",
            busy_answer(reply, endpoint)
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
