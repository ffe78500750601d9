//! One error type for the whole program. Each error knows its exit code (a public,
//! documented interface, sysexits(3) style) and a single-line message for stderr.

use std::fmt;

/// The exit-code table of `--help` and the README, as a literal so that `cli` can
/// `concat!` it into the long help.
#[macro_export]
macro_rules! exit_table {
    () => {
        "\
Exit codes:
   0  the token file holds a token with enough time left (--minsecs, or the default)
   1  (inspect, status) a token has expired; status: or is missing or unusable
  64  usage error, a duration longer than 10 years included
  65  unusable data: malformed credential file, a response that is not a token,
      a token whose exp is missing, not a number, negative or in the year 9999
      or later (get never installs it; inspect names the problem)
  73  cannot write the token file or the credential file
  75  temporary failure: network, timeout, HTTP 5xx or 429, a failed deploy hook;
      a later run may succeed
  77  a person must act: the issuer rejected the credential, a login was denied,
      a --require-scope scope was not granted, or unsafe permissions
  78  configuration error: bad configuration file, no token endpoint, unreadable CA path, ..."
    };
}

/// Exit codes. Scripts and monitoring depend on these numbers: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Exit {
    /// The token file holds a token with enough time left (`--minsecs`, or the default).
    Ok = 0,
    /// `inspect`: the token has expired.
    Expired = 1,
    /// Usage error: bad or missing options.
    Usage = 64,
    /// Unusable data: malformed credential file, a response that is not a token.
    Data = 65,
    /// Cannot write the token file or the credential file.
    CantWrite = 73,
    /// Temporary failure: network, timeout, HTTP 5xx or 429. A later run may succeed.
    TempFail = 75,
    /// A person must act: credential rejected, or unsafe permissions.
    NoPerm = 77,
    /// Configuration error: no token endpoint, unreadable CA path, ...
    Config = 78,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The most severe of several results (`--all`), `Ok` when there are none.
    pub fn worst(exits: impl IntoIterator<Item = Exit>) -> Exit {
        exits
            .into_iter()
            .max_by_key(|e| e.severity())
            .unwrap_or(Exit::Ok)
    }

    /// Rank for "most severe wins" when several results are combined. A person
    /// must act (77) outranks configuration (78), which outranks everything else.
    pub fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Expired => 1,
            Exit::TempFail => 2,
            Exit::Data => 3,
            Exit::CantWrite => 4,
            Exit::Usage => 5,
            Exit::Config => 6,
            Exit::NoPerm => 7,
        }
    }

    /// The table printed in `--help` and the README.
    pub const TABLE: &'static str = exit_table!();
}

/// An error that ends the run: an exit code and one line that says what failed
/// and what to do. Messages must never contain secrets.
#[derive(Debug)]
pub struct Error {
    exit: Exit,
    message: String,
    tag: Option<Tag>,
}

/// Errors that later code reacts to, beyond their exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A refresh request may have reached the issuer, but no answer arrived.
    LostResponse,
    /// The issuer refused the refresh token (`invalid_grant`).
    RefreshRejected,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(exit: Exit, message: impl Into<String>) -> Error {
        Error {
            exit,
            message: one_line(&message.into()),
            tag: None,
        }
    }
    pub fn usage(m: impl Into<String>) -> Error {
        Error::new(Exit::Usage, m)
    }
    pub fn data(m: impl Into<String>) -> Error {
        Error::new(Exit::Data, m)
    }
    pub fn write(m: impl Into<String>) -> Error {
        Error::new(Exit::CantWrite, m)
    }
    pub fn temp(m: impl Into<String>) -> Error {
        Error::new(Exit::TempFail, m)
    }
    pub fn perm(m: impl Into<String>) -> Error {
        Error::new(Exit::NoPerm, m)
    }
    pub fn config(m: impl Into<String>) -> Error {
        Error::new(Exit::Config, m)
    }

    pub fn tagged(mut self, tag: Tag) -> Error {
        self.tag = Some(tag);
        self
    }
    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }

    pub fn exit(&self) -> Exit {
        self.exit
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with context, keeping the exit code.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            message: one_line(&format!("{what}: {}", self.message)),
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Errors go to cron mail, terminals and the state file: one line, no control or bidi
/// characters, no secret this run sent (even one an issuer echoed into the text that
/// a message quotes), bounded.
pub fn one_line(s: &str) -> String {
    const MAX: usize = 600;
    let clean = crate::secret::scrub(s);
    let mut out = String::with_capacity(clean.len().min(MAX));
    for c in clean.chars() {
        if out.len() >= MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// The known name that `word` is most likely a misspelling of, for "did you mean …?":
/// the same name in another case or with `-` for `_`, else one at most one edit away
/// (two for names of 10 characters or more; a swap of neighbours counts as one).
/// Short or distant words get no suggestion: a field meant to be new must not be
/// taken for a typo.
pub fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if let Some(k) = known.iter().find(|k| norm(k) == w) {
        return Some(k);
    }
    if w.len() < 4 {
        return None;
    }
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&w, k), *k))
        .filter(|(d, k)| *d <= if k.len() >= 10 { 2 } else { 1 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Describe an I/O error without the "(os error N)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Exit::Usage.code(), 64);
        assert_eq!(Exit::Data.code(), 65);
        assert_eq!(Exit::CantWrite.code(), 73);
        assert_eq!(Exit::TempFail.code(), 75);
        assert_eq!(Exit::NoPerm.code(), 77);
        assert_eq!(Exit::Config.code(), 78);
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::data("a\nb\r\tc");
        assert_eq!(e.message(), "a b  c");
        let long = "x".repeat(5000);
        assert!(Error::data(long).message().chars().count() < 700);
    }

    #[test]
    fn suggestions_are_for_typos_only() {
        let known = [
            "refresh_token",
            "client_secret",
            "scope",
            "command",
            "owner",
        ];
        assert_eq!(suggest("refresh_tokn", &known), Some("refresh_token"));
        assert_eq!(suggest("client_secert", &known), Some("client_secret"));
        assert_eq!(suggest("Client-Secret", &known), Some("client_secret"));
        assert_eq!(suggest("scopes", &known), Some("scope"));
        assert_eq!(suggest("ownr", &known), Some("owner"));
        // New fields a user may add are not typos.
        for other in ["comment", "x-site", "note", "color", "refresh_token_2024"] {
            assert_eq!(suggest(other, &known), None, "{other}");
        }
    }

    #[test]
    fn severity_orders_person_first() {
        assert!(Exit::NoPerm.severity() > Exit::Config.severity());
        assert!(Exit::Config.severity() > Exit::TempFail.severity());
        assert!(Exit::TempFail.severity() > Exit::Ok.severity());
    }
}
