//! Secrets (tokens, refresh tokens, client secrets) live in a type that never prints
//! its value and wipes its memory on drop. Logs show a short fingerprint instead.
//!
//! What comes back is untrusted: an issuer (or Vault) may echo a secret it was sent
//! into its error text, or fill that text with terminal escapes and bidi overrides.
//! So every value a request carries is noted here when the request is sent
//! ([`note_request`], called by `http` for every request, so no caller can forget),
//! and text from the other side is shown only through [`untrusted_text`] (or the
//! [`Untrusted`] type), which removes control and bidi characters, redacts every noted
//! secret, and caps the length. Error messages and log lines are redacted too
//! ([`scrub`]), as a second line of defence.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself. Call sites are few and easy to audit: request bodies,
    /// headers and the files the secret belongs in.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 8 hex digits of SHA-256: enough to tell tokens apart in logs,
    /// useless for replay.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(sha256:{})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.fingerprint())
    }
}

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Every secret this process sent (and the forms it may come back in), kept as what
/// redaction needs: the keyed hashes of its [`WINDOW`]-byte pieces (no secret bytes,
/// and a lookup that costs the same for one secret or for the thousand of a `get
/// --all` fleet), and, for the rare secret shorter than a window, the value itself.
struct Registry {
    hasher: RandomState,
    windows: HashSet<u64>,
    short: Vec<Zeroizing<String>>,
    seen: HashSet<u64>,
}

static SENT: Mutex<Option<Registry>> = Mutex::new(None);

/// Shorter values are not noted: redacting every "abc" would garble text, and no
/// credential is that short.
const MIN_SECRET: usize = 4;

/// A piece of a secret this long, found anywhere in a text, is redacted: an issuer may
/// cut or wrap what it echoes.
const WINDOW: usize = 12;

/// Header names whose values are not secret. Every other header a request carries
/// (Authorization, X-Vault-Token, ...) is.
const PUBLIC_HEADERS: &[&str] = &["accept", "content-type", "user-agent"];

/// Form and JSON fields whose values are not secret. Every other field (refresh_token,
/// client_secret, client_assertion, subject_token, device_code, ...) is: a new secret
/// field is redacted without anyone remembering to list it.
const PUBLIC_FIELDS: &[&str] = &[
    "grant_type",
    "scope",
    "audience",
    "resource",
    "client_id",
    "client_assertion_type",
    "subject_token_type",
    "requested_token_type",
    "ttl",
    "renewable",
];

fn sent() -> std::sync::MutexGuard<'static, Option<Registry>> {
    SENT.lock().unwrap_or_else(|e| e.into_inner())
}

fn note(reg: &mut Option<Registry>, v: &str) {
    let v = v.trim();
    if v.len() < MIN_SECRET {
        return;
    }
    let reg = reg.get_or_insert_with(|| Registry {
        hasher: RandomState::new(),
        windows: HashSet::new(),
        short: Vec::new(),
        seen: HashSet::new(),
    });
    if !reg.seen.insert(reg.hasher.hash_one(v.as_bytes())) {
        return;
    }
    let b = v.as_bytes();
    if b.len() >= WINDOW {
        for w in b.windows(WINDOW) {
            reg.windows.insert(reg.hasher.hash_one(w));
        }
    } else {
        reg.short.push(Zeroizing::new(v.to_string()));
    }
}

/// Note one secret value a request carries, with the forms an echo may take: its
/// form-urlencoding, the credentials of an `Authorization` value without the scheme,
/// and a Basic header's decoded secret.
pub fn note_sent(value: &str) {
    let mut reg = sent();
    note(&mut reg, value);
    let encoded: Zeroizing<String> =
        Zeroizing::new(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    note(&mut reg, &encoded);
    if let Some((scheme, cred)) = value.split_once(' ') {
        if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
            note(&mut reg, cred);
            if scheme.eq_ignore_ascii_case("basic") {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(cred.trim())
                    .map(Zeroizing::new);
                if let Ok(raw) = raw {
                    let text = Zeroizing::new(String::from_utf8_lossy(&raw).into_owned());
                    // RFC 6749 2.3.1: id:secret, each form-urlencoded. The id is public.
                    if let Some((_, secret)) = text.split_once(':') {
                        note(&mut reg, secret);
                        let decoded: Zeroizing<String> = Zeroizing::new(
                            url::form_urlencoded::parse(format!("x={secret}").as_bytes())
                                .map(|(_, v)| v.into_owned())
                                .next()
                                .unwrap_or_default(),
                        );
                        note(&mut reg, &decoded);
                    }
                }
            }
        }
    }
}

/// Note the secrets of a request about to be sent: every header value but the public
/// ones, and every field of a form or JSON object body but the public ones.
pub fn note_request(headers: &[(&str, &str)], form: Option<&str>, json: Option<&str>) {
    for (name, value) in headers {
        if !PUBLIC_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            note_sent(value);
        }
    }
    if let Some(body) = form {
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            if !PUBLIC_FIELDS.contains(&k.as_ref()) {
                note_sent(&Zeroizing::new(v.into_owned()));
            }
        }
    }
    if let Some(body) = json {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(body) {
            for (k, v) in m {
                if let (false, serde_json::Value::String(mut v)) =
                    (PUBLIC_FIELDS.contains(&k.as_str()), v)
                {
                    note_sent(&v);
                    zeroize::Zeroize::zeroize(&mut v);
                }
            }
        }
    }
}

/// Replace every piece of a noted secret in `text` (every run of at least [`WINDOW`]
/// bytes that occurs in one, and whole short secrets) with [`REDACTED`].
pub fn redact(text: &str) -> String {
    let guard = sent();
    let Some(reg) = guard.as_ref().filter(|_| !text.is_empty()) else {
        return text.to_string();
    };
    let bytes = text.as_bytes();
    let mut hit = vec![false; bytes.len()];
    for s in &reg.short {
        for (i, m) in text.match_indices(s.as_str()) {
            hit[i..i + m.len()].iter_mut().for_each(|h| *h = true);
        }
    }
    for (i, w) in bytes.windows(WINDOW).enumerate() {
        if reg.windows.contains(&reg.hasher.hash_one(w)) {
            hit[i..i + WINDOW].iter_mut().for_each(|h| *h = true);
        }
    }
    drop(guard);
    let mut out = String::with_capacity(text.len());
    let mut in_secret = false;
    for (i, c) in text.char_indices() {
        if hit[i..i + c.len_utf8()].iter().any(|h| *h) {
            if !in_secret {
                out.push_str(REDACTED);
            }
            in_secret = true;
        } else {
            in_secret = false;
            out.push(c);
        }
    }
    out
}

/// Characters that reorder or hide text on a terminal without being controls: bidi
/// embeddings, overrides and isolates, marks, zero-width and other invisible format
/// characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Redacted, control characters (and line or paragraph separators) made spaces, bidi
/// and invisible characters removed: what may reach a terminal, a log or a file.
pub fn scrub(text: &str) -> String {
    redact(text)
        .chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The longest untrusted text shown: an error description says what went wrong in a
/// sentence or two.
pub const MAX_UNTRUSTED: usize = 300;

/// Text from the other side (an issuer's `error`, `error_description`, a user code,
/// Vault's errors), made safe to print and store: [`scrub`]bed, `|` (the separator of
/// a monitoring plugin's perfdata) made `/`, whitespace runs collapsed, at most `max`
/// characters.
pub fn untrusted_text_max(text: &str, max: usize) -> String {
    // Bound the work first; a secret cut here is still caught by the windows.
    let head: String = text.chars().take(16 * 1024).collect();
    let clean = scrub(&head).replace('|', "/");
    let mut out = String::with_capacity(clean.len().min(max * 4));
    for (n, word) in clean.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > max {
        out = out.chars().take(max).collect::<String>() + "…";
    }
    out
}

/// [`untrusted_text_max`] with [`MAX_UNTRUSTED`].
pub fn untrusted_text(text: &str) -> String {
    untrusted_text_max(text, MAX_UNTRUSTED)
}

/// A string from the other side. It prints only cleaned ([`untrusted_text`]); the raw
/// value is for comparisons only.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Untrusted(String);

impl Untrusted {
    pub fn new(s: impl Into<String>) -> Untrusted {
        Untrusted(s.into())
    }
    /// The value as sent, to compare with (an error code); never to print.
    pub fn raw(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&untrusted_text(&self.0))
    }
}

impl fmt::Debug for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Untrusted({:?})", untrusted_text(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("super-secret-refresh-token");
        let shown = format!("{s:?} {s}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(&s.fingerprint()));
        assert_eq!(s.fingerprint().len(), 8);
    }

    #[test]
    fn echoed_secrets_are_redacted_and_text_cleaned() {
        // The registry is process-wide: these values are unique to this test.
        let rt = "rt-Zk3j9aQ2LmP0xY7wV5tR8sN1qq";
        note_request(
            &[
                ("Accept", "application/json"),
                (
                    "Authorization",
                    "Basic dW5pdC1jbGllbnQ6dW5pdC1zZWNyZXQlMjF4eXo=",
                ),
            ],
            Some(&format!(
                "grant_type=refresh_token&refresh_token={rt}&client_id=unit-client&scope=a+b"
            )),
            None,
        );
        let echo = format!(
            "bad \u{1b}[31m\u{202e}grant\r\n|x=1;2 you sent {rt} and {} then Basic \
             dW5pdC1jbGllbnQ6dW5pdC1zZWNyZXQlMjF4eXo= = unit-client:unit-secret!xyz \
             cut {} client unit-client scope a b",
            &rt[..20],
            &rt[5..]
        );
        let t = untrusted_text(&echo);
        for leak in [
            rt,
            &rt[..12],
            &rt[rt.len() - 12..],
            "unit-secret",
            "dW5pdC1",
        ] {
            assert!(!t.contains(leak), "{leak} in {t}");
        }
        assert!(t.contains("unit-client"), "the client id is public: {t}");
        assert!(t.contains("scope a b"), "{t}");
        assert!(t.contains(REDACTED), "{t}");
        assert!(!t.contains('|') && !t.contains('\u{202e}'), "{t}");
        assert!(!t.chars().any(char::is_control), "{t}");
        // Public values are not noted: "refresh_token", "application/json" stay.
        assert_eq!(
            untrusted_text("refresh_token application/json"),
            "refresh_token application/json"
        );
        // Capped.
        let long = untrusted_text(&"word ".repeat(1000));
        assert!(long.chars().count() <= MAX_UNTRUSTED + 1, "{}", long.len());
        // JSON bodies: every field but the public ones.
        note_request(
            &[("X-Vault-Token", "hvs.unit-vault-token-123")],
            None,
            Some(r#"{"ttl":"604800s","renewable":"false","password":"unit-pw-999"}"#),
        );
        let t = untrusted_text(
            "permission denied for hvs.unit-vault-token-123 unit-pw-999 604800s false",
        );
        assert!(
            !t.contains("unit-vault-token") && !t.contains("unit-pw-999"),
            "{t}"
        );
        assert!(t.contains("604800s false"), "{t}");
    }

    #[test]
    fn redaction_cost_does_not_grow_with_the_fleet() {
        // `get --all` over a thousand robots notes thousands of secrets; every error
        // and log line is redacted against all of them.
        for i in 0..3000 {
            note_sent(&format!(
                "fleet-refresh-token-{i:08}-Zk3j9aQ2LmP0xY7wV5tR8sN1"
            ));
        }
        let text = "an issuer's long error description ".repeat(400);
        let t = std::time::Instant::now();
        let out = untrusted_text(&text);
        assert!(
            t.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(!out.contains(REDACTED));
        let echo = untrusted_text("you sent fleet-refresh-token-00002999-Zk3j9aQ2LmP0xY7wV5tR8sN1");
        assert_eq!(echo, format!("you sent {REDACTED}"));
    }

    #[test]
    fn untrusted_prints_only_cleaned() {
        let u: Untrusted = serde_json::from_str(r#""a\u001b[2J\u202eb|c""#).unwrap();
        assert_eq!(u.to_string(), "a [2Jb/c");
        assert_eq!(u.raw(), "a\u{1b}[2J\u{202e}b|c");
        assert!(!format!("{u:?}").contains('\u{1b}'));
    }
}
