//! How the client proves who it is at the token endpoint (RFC 6749 2.3): HTTP Basic,
//! the form body, a public client, or a signed assertion (RFC 7523, `assertion`).

use crate::error::{Error, Result};
use crate::http::{Failure, Http, Reply, Retry};
use crate::secret::Secret;
use crate::source::oauth::assertion::{SigningKey, ASSERTION_TYPE};

use super::form;

/// What the client sends to prove who it is.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
    /// The private key for `private_key_jwt`.
    pub key: Option<SigningKey>,
}

/// What a client adds to a request to authenticate: a header, form fields, or both.
pub(super) struct Auth {
    pub(super) header: Option<Secret>,
    pub(super) fields: Vec<(&'static str, Secret)>,
}

/// Authentication for a request to `aud_endpoint`, the URL being called: a
/// `private_key_jwt` assertion's `aud` is that URL (the token endpoint for token
/// requests, the device authorization endpoint in `init`). RFC 7523 allows "the token
/// endpoint URL" for the token endpoint; issuers that check strictly accept for any
/// endpoint only its own URL, and lenient ones (oidc-provider, Keycloak) accept it too.
pub(super) fn client_auth(client: &Client, aud_endpoint: &str) -> Result<Auth> {
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

/// RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
pub(super) fn basic_auth(id: &str, secret: &str) -> Secret {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ))
}

/// POST `pairs` as a form with the client's authentication (RFC 6749 2.3; RFC 7523 with
/// `assertion_aud` as the assertion's audience: the URL called, see `client_auth`).
/// The secrets live only for the call.
pub(super) fn post_authenticated(
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
