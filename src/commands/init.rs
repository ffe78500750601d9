//! `robot-token init`: a robot's first credential, approved once by a person through
//! the device authorization grant (RFC 8628). Afterwards `get -c FILE` renews alone.
//!
//! Order matters: nothing is written until the issuer has answered with tokens; then
//! the credential (the refresh token, the long-lived part) is written first and the
//! token file second, each atomically, with Ctrl-C held off while they are written.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cli::InitArgs;
use crate::clock;
use crate::clock::{human_secs, parse_duration};
use crate::commands::renew;
use crate::config::trust_options;
use crate::error::{Error, Result};
use crate::http::{self, check_url, Http};
use crate::output::discovery;
use crate::scope;
use crate::secret::Secret;
use crate::source::credential;
use crate::source::oauth::assertion::SigningKey;
use crate::source::oauth::{
    self, Client, ClientAuth, DeviceAuthorization, Grant, Poll, TokenRequest,
};
use crate::store::{self, FileError, WriteMode};
use crate::token;

/// RFC 8628 3.2: the polling interval when the issuer names none.
pub const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 3.5: what `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: u64 = 5;
/// An interval of 0 from the issuer must not make us spin.
const MIN_INTERVAL: u64 = 1;
/// When the answer has no `expires_in` (it is required), give up after this long.
const DEFAULT_EXPIRES_IN: u64 = 900;
/// The longest wait for a person that `init` accepts from an issuer: a day (the
/// requests' own deadline). A longer `expires_in` (up to 2^64-1 s) is cut to this.
const MAX_EXPIRES_IN: u64 = 24 * 3600;
/// The longest polling interval accepted from an issuer (or reached by `slow_down`):
/// beyond a minute, a person waits for nothing.
const MAX_INTERVAL: u64 = 60;

pub fn run(a: &InitArgs) -> Result<()> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !interactive && !a.no_tty {
        return Err(Error::usage(
            "init needs a terminal: a person must approve the login; run it interactively, or pass --no-tty to print the code for someone else",
        ));
    }
    let timeout =
        parse_duration(&a.timeout).map_err(|e| Error::usage(format!("--timeout: {e}")))?;
    if timeout.is_zero() {
        return Err(Error::usage("--timeout must be positive"));
    }
    if a.outfile.as_ref().is_some_and(|o| o.as_os_str().is_empty()) {
        return Err(Error::usage(
            "-o (or $ROBOT_TOKEN_OUTFILE) is empty: name a file, or leave it out for WLCG discovery",
        ));
    }
    let cred_path = store::absolute(&a.credential);
    let outfile = a.outfile.clone().unwrap_or_else(discovery::token_file);
    check_credential_target(&cred_path, a.force)?;
    check_url(&a.issuer, "issuer")?;
    // From here to the end, termination signals wait: a Ctrl-C while the person
    // approves ends the wait at once and removes the prepared files; one after
    // the code was redeemed takes effect once both files are written.
    let hold = crate::signals::Hold::new();
    // Redeeming the device code gives the only copy of the refresh token: both
    // files are prepared (directories checked, temp files made, space reserved)
    // before a person approves anything and before the code is redeemed.
    let cred_write = store::prepare(&cred_path, 64 * 1024, WriteMode::default()).map_err(|e| {
        let msg = format!(
            "cannot prepare credential file {} ({e}); nothing was sent: choose a directory you can write",
            cred_path.display()
        );
        match e {
            FileError::UntrustedDir { .. } => Error::perm(msg),
            _ => Error::write(msg),
        }
    })?;
    let token_write = store::prepare(&outfile, renew::TOKEN_RESERVE, WriteMode::default())
        .map_err(|e| {
            let e = renew::token_file_error(e);
            Error::new(e.exit(), format!("{}; nothing was sent", e.message()))
        })?;

    let secret = a
        .client_secret_file
        .as_deref()
        .map(credential::read_secret_file)
        .transpose()?;
    let key_file = a.private_key_file.as_deref().map(store::absolute);
    let key = key_file
        .as_deref()
        .map(|f| SigningKey::load(f, a.kid.clone()))
        .transpose()?;
    let auth = match a.client_auth.as_deref().and_then(ClientAuth::parse) {
        Some(ClientAuth::PrivateKeyJwt) if key.is_none() => {
            return Err(Error::usage(
                "--client-auth private_key_jwt needs --private-key-file",
            ))
        }
        Some(m @ (ClientAuth::Basic | ClientAuth::Post)) if secret.is_none() => {
            return Err(Error::usage(format!(
                "--client-auth {} needs --client-secret-file",
                if m == ClientAuth::Basic {
                    "basic"
                } else {
                    "post"
                }
            )))
        }
        Some(m) => m,
        None if key.is_some() => ClientAuth::PrivateKeyJwt,
        None if secret.is_some() => ClientAuth::Basic,
        None => ClientAuth::None,
    };
    let client = Client {
        id: a.client_id.clone(),
        secret,
        auth,
        key,
    };
    let mut scope = words(&a.scope);
    // Without offline_access there is no refresh token, and nothing for cron to renew.
    if !scope.iter().any(|s| s == "offline_access") {
        scope.push("offline_access".into());
    }
    let audience = words(&a.audience);

    let trust = trust_options(&a.trust.capath, &a.trust.cafile);
    http::check_trust(&trust)?;
    // The person may take minutes; each request still has --timeout.
    let http = Http::new(
        trust,
        timeout,
        clock::from_now(Duration::from_secs(MAX_EXPIRES_IN)),
    );
    let meta = crate::issuer::discover(&http, &a.issuer)?;
    let token_endpoint = meta.token_endpoint.clone().ok_or_else(|| {
        Error::config(format!(
            "the discovery document of {} names no token_endpoint",
            a.issuer
        ))
    })?;
    check_url(&token_endpoint, "token endpoint from discovery")?;
    let device_endpoint = meta.device_authorization_endpoint.clone().ok_or_else(|| {
        Error::config(format!(
            "{} offers no device flow (no device_authorization_endpoint in its discovery document)",
            a.issuer
        ))
    })?;

    let da = sane(oauth::device_authorization(
        &http,
        &device_endpoint,
        &client,
        &scope,
        &audience,
    )?)?;
    show_instructions(&da, std::io::stdout().is_terminal());

    let resp = poll(&http, &da, &token_endpoint, &client)?;
    let access = resp.access_token.ok_or_else(|| {
        Error::data(format!(
            "{token_endpoint} answered without an access_token; nothing was written"
        ))
    })?;
    let Some(refresh) = resp.refresh_token else {
        return Err(Error::config(format!(
            "{} granted no refresh token (offline_access was asked for but not granted); nothing was written: the client {} must be allowed offline_access",
            a.issuer, a.client_id
        )));
    };
    let granted = scope::granted_scopes(resp.scope.as_deref(), access.expose());
    scope::warn_narrowed(&scope, granted.as_deref());
    let required = words(&a.require_scope);
    let missing = crate::scope::missing(granted.as_deref().unwrap_or(&[]), &required);
    if !missing.is_empty() {
        return Err(Error::perm(format!(
            "{} did not grant the required scope {}; nothing was written: ask the issuer's admins for it, or drop --require-scope",
            a.issuer,
            missing.join(" ")
        )));
    }

    let cred = render_credential(a, &client, key_file.as_deref(), &scope, &audience, &refresh);
    let exp = token::expiry(access.expose()).map_err(|e| {
        Error::data(format!(
            "{token_endpoint} returned an access token that is unusable ({e}); nothing was written"
        ))
    })?;
    if exp <= token::now() {
        return Err(Error::data(format!(
            "{token_endpoint} returned a token that expired {} ago: check this host's clock; nothing was written",
            human_secs(token::until(token::now(), exp))
        )));
    }
    // In the order `get` takes them (token file, then credential), so the two never
    // wait on each other. A `get -c` of an old credential may be running: it finishes
    // first, so its rotation cannot overwrite the new file.
    let lock_wait = clock::from_now(Duration::from_secs(60));
    let lock = |target: &Path, what: &str| -> Result<store::Lock> {
        let p = store::lock_path(target).map_err(|e| Error::write(format!("{what} lock: {e}")))?;
        store::lock(&p, lock_wait).map_err(|e| match e {
            FileError::LockTimeout(_) => Error::temp(format!(
                "{e}; the login was approved but nothing was written: run robot-token init again"
            )),
            e => Error::write(format!("{what} lock: {e}")),
        })
    };
    let _token_lock = lock(&outfile, "token file")?;
    let _cred_lock = lock(&cred_path, "credential")?;
    {
        // Ctrl-C waits for both writes: never a credential without its token.
        write_credential(cred_write, &cred_path, &cred, a.force)?;
        write_token(token_write, &access)?;
        crate::logging::stdout(&format!(
            "Wrote {} and {} (token expires in {}); renew from cron with: robot-token get -c {}\n",
            cred_path.display(),
            outfile.display(),
            human_secs(token::until(exp, token::now())),
            cred_path.display()
        ));
    }
    drop(hold);
    Ok(())
}

fn words(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in v.iter().flat_map(|s| s.split_whitespace()) {
        if !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    }
    out
}

/// Refuse early, before a person spends time approving, when the write would fail.
fn check_credential_target(path: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) if !force => Err(Error::write(format!(
            "credential file {} already exists: give --force to replace it",
            path.display()
        ))),
        Ok(_) => {
            store::check_target(path).map_err(|e| Error::write(format!("credential file: {e}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("."));
            if dir.is_dir() {
                Ok(())
            } else {
                Err(Error::write(format!(
                    "cannot create credential file {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                )))
            }
        }
        Err(e) => Err(Error::write(format!(
            "cannot inspect credential file {}: {}",
            path.display(),
            crate::error::io_reason(&e)
        ))),
    }
}

fn show_instructions(da: &DeviceAuthorization, terminal: bool) {
    let mut out = String::new();
    out.push_str("To approve this robot, open this page and enter the code:\n\n");
    out.push_str(&format!(
        "    {}\n    Code: {}\n",
        da.verification_uri, da.user_code
    ));
    if let Some(complete) = &da.verification_uri_complete {
        out.push_str("\nor open this link, which carries the code:\n\n");
        out.push_str(&format!("    {complete}\n"));
    }
    // The link with the code when there is one, else the page: a phone opens either.
    let qr_target = da
        .verification_uri_complete
        .as_deref()
        .unwrap_or(&da.verification_uri);
    if terminal {
        if let Some(qr) = qr_code(qr_target) {
            out.push('\n');
            out.push_str(&qr);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\nWaiting for approval (the code expires in {})...\n",
        human_secs(clock::secs_u64(da.expires_in.unwrap_or(DEFAULT_EXPIRES_IN)))
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// The URI as a QR code of Unicode half blocks, light on dark so that it scans on
/// both dark and light terminals (the quiet zone is drawn).
pub fn qr_code(uri: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Poll until approval, denial or expiry. The device code is redeemed at most once:
/// the loop ends on the first answer that carries tokens, and a poll whose answer was
/// lost is not repeated.
fn poll(
    http: &Http,
    da: &DeviceAuthorization,
    endpoint: &str,
    client: &Client,
) -> Result<oauth::TokenResponse> {
    let mut interval = da.interval.unwrap_or(DEFAULT_INTERVAL);
    let expires_in = da.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    let lifetime = human_secs(clock::secs_u64(expires_in));
    let end = clock::from_now(Duration::from_secs(expires_in));
    tracing::info!("waiting for approval: polling every {interval} s for up to {lifetime}");
    let grant = Grant::DeviceCode(da.device_code.clone());
    let req = TokenRequest {
        endpoint,
        client,
        grant: &grant,
        scope: &[],
        audience: &[],
    };
    let mut wait = Duration::from_secs(interval);
    loop {
        if clock::from_now(wait) >= end {
            return Err(Error::temp(format!(
                "nobody approved the login within {lifetime} (the code expired): nothing was written; run robot-token init again"
            )));
        }
        sleep_unless_interrupted(wait)?;
        wait = Duration::from_secs(interval);
        match oauth::poll_device(http, &req)? {
            Poll::Token(t) => return Ok(t),
            Poll::Pending(retry_after) => {
                // A Retry-After (up to 2^64-1 s) past the code's end: no poll can follow.
                if let Some(ra) = retry_after {
                    if clock::from_now(ra) >= end {
                        return Err(Error::temp(format!(
                            "the issuer asked to wait {} before polling again, longer than its code lives: nothing was written; run robot-token init again",
                            human_secs(clock::secs(ra))
                        )));
                    }
                    wait = wait.max(ra);
                }
                tracing::debug!("authorization pending");
            }
            Poll::SlowDown => {
                interval = interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL);
                wait = Duration::from_secs(interval);
                tracing::info!("the issuer asked to slow down: polling every {interval} s");
            }
        }
    }
}

/// The longest user code shown: real ones are about 8 characters (RFC 8628 6.1).
const MAX_USER_CODE: usize = 64;
/// The longest verification URI shown.
const MAX_URI: usize = 2048;

/// A verification URI from the issuer as it may be shown (and put in a QR code): an
/// https (or loopback http) URL, serialized by the URL parser (which percent-encodes
/// controls, spaces and non-ASCII), redacted, bounded.
fn shown_uri(raw: &str, what: &str) -> Result<String> {
    let url = check_url(raw, what).map_err(|e| Error::data(e.message()))?;
    let shown = crate::secret::scrub(url.as_str());
    if shown.chars().count() > MAX_URI {
        return Err(Error::data(format!(
            "{what} is longer than {MAX_URI} characters: not a page a person can open"
        )));
    }
    Ok(shown)
}

/// The issuer's device authorization answer, made safe: its text cleaned (the user
/// code and the URIs are the issuer's words, shown to a person), and its `expires_in`
/// and `interval` within what a run can honour: any number an issuer sends (2^64-1
/// included) ends as a sane wait, with a warning.
fn sane(mut da: DeviceAuthorization) -> Result<DeviceAuthorization> {
    da.user_code = crate::secret::untrusted_text_max(&da.user_code, MAX_USER_CODE);
    da.verification_uri = shown_uri(&da.verification_uri, "the issuer's verification_uri")?;
    da.verification_uri_complete = match da.verification_uri_complete.take() {
        None => None,
        Some(u) => match shown_uri(&u, "the issuer's verification_uri_complete") {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!("{}: showing only the page and the code", e.message());
                None
            }
        },
    };
    if let Some(e) = da.expires_in.filter(|e| *e > MAX_EXPIRES_IN) {
        tracing::warn!(
            "the issuer says its device code lives {e} s; waiting at most {}",
            human_secs(clock::secs_u64(MAX_EXPIRES_IN))
        );
        da.expires_in = Some(MAX_EXPIRES_IN);
    }
    let interval = da.interval.unwrap_or(DEFAULT_INTERVAL);
    if interval > MAX_INTERVAL {
        tracing::warn!(
            "the issuer asks to poll every {interval} s; polling every {MAX_INTERVAL} s instead"
        );
    }
    // An interval of 0 from the issuer must not make us spin either.
    da.interval = Some(interval.clamp(MIN_INTERVAL, MAX_INTERVAL));
    Ok(da)
}

/// Sleep, in short steps, unless a held signal arrives.
fn sleep_unless_interrupted(d: Duration) -> Result<()> {
    let end = clock::from_now(d);
    loop {
        if crate::signals::pending() {
            return Err(Error::temp(
                "interrupted while waiting; nothing was written",
            ));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The version-1 credential that `get -c` renews from.
fn render_credential(
    a: &InitArgs,
    client: &Client,
    key_file: Option<&Path>,
    scope: &[String],
    audience: &[String],
    refresh: &Secret,
) -> zeroize::Zeroizing<Vec<u8>> {
    let mut m = Map::new();
    m.insert("version".into(), json!(1));
    m.insert("issuer".into(), json!(a.issuer));
    m.insert("client_id".into(), json!(client.id));
    if let Some(s) = &client.secret {
        m.insert("client_secret".into(), json!(s.expose()));
    }
    let auth = match client.auth {
        ClientAuth::Basic => "basic",
        ClientAuth::Post => "post",
        ClientAuth::None => "none",
        ClientAuth::PrivateKeyJwt => "private_key_jwt",
    };
    m.insert("client_auth".into(), json!(auth));
    if let Some(k) = key_file {
        m.insert("private_key_file".into(), json!(k.to_string_lossy()));
    }
    if let Some(kid) = &a.kid {
        m.insert("kid".into(), json!(kid));
    }
    m.insert("scope".into(), json!(scope.join(" ")));
    if !audience.is_empty() {
        m.insert("audience".into(), json!(audience.join(" ")));
    }
    m.insert("refresh_token".into(), json!(refresh.expose()));
    let mut out = zeroize::Zeroizing::new(serde_json::to_vec_pretty(&m).unwrap_or_default());
    out.push(b'\n');
    // The output is Zeroizing; wipe the map's copies of the secrets too.
    for key in ["client_secret", "refresh_token"] {
        if let Some(Value::String(v)) = m.get_mut(key) {
            zeroize::Zeroize::zeroize(v);
        }
    }
    out
}

fn write_credential(
    prepared: store::Prepared,
    path: &Path,
    data: &[u8],
    force: bool,
) -> Result<()> {
    let r = if force {
        prepared.commit(data)
    } else {
        prepared.commit_new(data)
    };
    r.map_err(|e| match e {
        FileError::Io { ref err, .. } if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Error::write(format!(
                "credential file {} appeared meanwhile; nothing was written: give --force to replace it",
                path.display()
            ))
        }
        e => Error::write(format!("cannot write the credential file: {e}")),
    })
}

/// Write the first access token.
fn write_token(prepared: store::Prepared, access: &Secret) -> Result<()> {
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(access.expose().len() + 1));
    bytes.extend_from_slice(access.expose().as_bytes());
    bytes.push(b'\n');
    prepared.commit(&bytes).map_err(renew::token_file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_access_and_dedup() {
        assert_eq!(words(&["a b".into(), "a".into()]), vec!["a", "b"]);
    }

    #[test]
    fn verification_uris_are_shown_encoded_and_redacted() {
        crate::secret::note_sent("init-unit-secret-Qw8eR7tY6uI5");
        let u = shown_uri(
            "https://iam.example.org/device?x=\u{202e}evil\u{2066}|init-unit-secret-Qw8eR7tY6uI5",
            "the issuer's verification_uri",
        )
        .unwrap();
        assert!(u.starts_with("https://iam.example.org/device?x="), "{u}");
        assert!(!u.contains('\u{202e}') && !u.contains('\u{2066}'), "{u}");
        assert!(!u.contains("init-unit-secret"), "{u}");
        for bad in [
            "https://iam.example.org/device\u{1b}[2J",
            "http://iam.example.org/device",
            "javascript:alert(1)",
        ] {
            assert!(shown_uri(bad, "uri").is_err(), "{bad}");
        }
        let long = format!("https://iam.example.org/{}", "a".repeat(3000));
        assert!(shown_uri(&long, "uri").is_err());
        let mut da = oauth::parse_device_authorization(
            br#"{"device_code":"d","user_code":"AB|CD\u001b[2J\u202e","verification_uri":"https://x/d","interval":18446744073709551615,"expires_in":1e300}"#,
        )
        .unwrap();
        da = sane(da).unwrap();
        assert_eq!(da.user_code, "AB/CD [2J");
        assert_eq!(
            (da.interval, da.expires_in),
            (Some(MAX_INTERVAL), Some(MAX_EXPIRES_IN))
        );
    }

    #[test]
    fn qr_renders_half_blocks() {
        let q = qr_code("https://iam.example.org/device?user_code=ABCD-EFGH").unwrap();
        assert!(q.lines().count() > 10);
        assert!(q.contains('█') || q.contains('▀') || q.contains('▄'));
    }
}
