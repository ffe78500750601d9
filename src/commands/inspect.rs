//! `robot-token inspect`: the decoder htdecodetoken and httokendecode users expect.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::cli::InspectArgs;
use crate::clock;
use crate::clock::human_secs;
use crate::config::VerifyConfig;
use crate::error::{io_reason, Error, Exit, Result};
use crate::http::{self, Http};
use crate::output::discovery::{self, Found};
use crate::store::{self, FileError};
use crate::token::{self, numeric_date, MAX_TOKEN_LEN};
use crate::verify;

fn read_source(args: &InspectArgs) -> Result<(String, String)> {
    let (what, data) = match args.file.as_deref() {
        Some(p) if p == Path::new("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_TOKEN_LEN as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::data(format!("cannot read stdin: {}", io_reason(&e))))?;
            ("standard input".to_string(), buf)
        }
        Some(p) => (p.display().to_string(), read_file(p)?),
        None => match discovery::reader_location() {
            Found::Env => (
                "$BEARER_TOKEN".to_string(),
                std::env::var("BEARER_TOKEN")
                    .unwrap_or_default()
                    .into_bytes(),
            ),
            Found::File(p) => (p.display().to_string(), read_default(&p)?),
        },
    };
    if data.len() > MAX_TOKEN_LEN {
        return Err(Error::data(format!(
            "{what} is larger than 64 KiB: not a token"
        )));
    }
    let text = String::from_utf8(data)
        .map_err(|_| Error::data(format!("{what} is not text: not a token")))?;
    Ok((what, token::trim(&text).to_string()))
}

/// Read a token file named on the command line; a missing one is 78 with where else
/// to look.
fn read_file(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            ": check the name, or run robot-token inspect without a file for the WLCG default"
        } else {
            ""
        };
        Error::config(format!(
            "cannot read {}: {}{hint}",
            p.display(),
            io_reason(&e)
        ))
    })?;
    let mut buf = Vec::new();
    f.take(MAX_TOKEN_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::config(format!("cannot read {}: {}", p.display(), io_reason(&e))))?;
    Ok(buf)
}

/// The default location is a fixed name, often in world-writable /tmp: it gets
/// `get`'s checks (ours, a regular file, no symlink, never waited on), so another
/// user's planted token is not shown as ours. A file named on the command line is
/// read as given (`inspect <(cmd)` is a FIFO).
fn read_default(p: &Path) -> Result<Vec<u8>> {
    match store::read_own(p, MAX_TOKEN_LEN) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(Error::config(format!(
            "cannot read {}: no such file: no token there (found by WLCG discovery: \
             $BEARER_TOKEN, $BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>): \
             get one with robot-token get, or name the token file (robot-token inspect FILE)",
            p.display()
        ))),
        Err(FileError::TooLarge { .. }) => Err(Error::data(format!(
            "{} is larger than 64 KiB: not a token",
            p.display()
        ))),
        Err(e @ (FileError::ForeignOwner { .. } | FileError::Symlink(_))) => {
            Err(Error::perm(format!("token file: {e}")))
        }
        Err(e) => Err(Error::config(format!("token file: {e}"))),
    }
}

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

pub fn run(args: &InspectArgs) -> Result<Exit> {
    let verify_cfg = VerifyConfig::from_args(args)?;
    let (what, text) = read_source(args)?;
    let jwt = token::decode(&text).map_err(|e| Error::data(format!("{what}: {e}")))?;
    let now = token::now();
    // The decision `get`, `check` and `status` make too (`token::exp_of`).
    let usable = jwt.expiry();
    let expires_in = usable.as_ref().ok().map(|e| token::until(*e, now));
    // Verification first (it may take the network), then one write of everything.
    let verdict = verify_cfg.map(|c| {
        http::check_trust(&c.trust)?;
        let http = Http::new(
            c.trust.clone(),
            c.timeout,
            clock::from_now(c.timeout.saturating_mul(3)),
        );
        verify::verify(&http, &text, &jwt, &c.expect, now)
    });
    let mut out = std::io::stdout().lock();
    let mut body = String::new();
    if args.json {
        let mut v = json!({
            "header": Value::Object(jwt.header.clone()),
            "claims": Value::Object(jwt.claims.clone()),
            "expires_in": expires_in,
        });
        if let Err(e) = &usable {
            v["unusable"] = json!(e.to_string());
        }
        if let Some(r) = &verdict {
            v["verify"] = match r {
                Ok(d) => json!({
                    "valid": d.failed.is_empty() && d.expired_for.is_none(),
                    "alg": d.alg,
                    "kid": d.kid,
                    "jwks_uri": d.jwks_uri,
                    "expired": d.expired_for.is_some(),
                    "failed": d.failed,
                    "notes": d.notes,
                }),
                Err(e) => json!({"valid": false, "error": e.message()}),
            };
        }
        body.push_str(&serde_json::to_string_pretty(&v).unwrap_or_default());
        body.push('\n');
    } else {
        let pretty = |m: &Map<String, Value>| {
            serde_json::to_string_pretty(&Value::Object(m.clone())).unwrap_or_default()
        };
        body.push_str(&format!("header: {}\n", pretty(&jwt.header)));
        body.push_str(&format!("claims: {}\n", pretty(&jwt.claims)));
        for claim in ["iat", "nbf", "exp"] {
            if let Some(t) = jwt.claims.get(claim).and_then(numeric_date) {
                body.push_str(&format!("{claim}: {}\n", utc(t)));
            }
        }
        match (&usable, expires_in) {
            (Err(e), _) => body.push_str(&format!("unusable: {e}\n")),
            (_, Some(s)) if s > 0 => body.push_str(&format!("expires in {}\n", human_secs(s))),
            (_, s) => body.push_str(&format!(
                "expired {} ago\n",
                human_secs(s.unwrap_or(0).saturating_neg())
            )),
        }
        if let Some(Ok(d)) = &verdict {
            if d.failed.is_empty() {
                body.push_str(&format!(
                    "signature: valid ({}, key {} from {})\n",
                    d.alg,
                    d.kid.as_deref().unwrap_or("without kid"),
                    d.jwks_uri
                ));
                for n in &d.notes {
                    body.push_str(&format!("note: {n}\n"));
                }
                if d.expired_for.is_none() {
                    body.push_str("verified: signature, iss, exp, nbf");
                    if let Some(c) = verify_checks(args) {
                        body.push_str(&c);
                    }
                    body.push('\n');
                }
            }
        }
    }
    // A closed pipe (inspect | head) is not an error.
    let _ = out.write_all(body.as_bytes());
    drop(out);
    // An unusable token is that before anything else, verified or not (exit 65).
    if let Err(e) = usable {
        return Err(Error::data(format!("{what}: unusable token: {e}")));
    }
    match verdict {
        None => Ok(match expires_in {
            Some(s) if s <= 0 => Exit::Expired,
            _ => Exit::Ok,
        }),
        Some(Err(e)) => Err(e),
        Some(Ok(d)) if !d.failed.is_empty() => Err(Error::perm(format!(
            "{what}: token check failed: {}",
            d.failed.join("; ")
        ))),
        // The signature and every other check hold; only the time is up.
        Some(Ok(d)) if d.expired_for.is_some() => Ok(Exit::Expired),
        Some(Ok(_)) => Ok(Exit::Ok),
    }
}

fn verify_checks(args: &InspectArgs) -> Option<String> {
    let mut s = String::new();
    if !args.audience.is_empty() {
        s.push_str(", aud");
    }
    if !args.require_scope.is_empty() {
        s.push_str(", scope");
    }
    (!s.is_empty()).then_some(s)
}
