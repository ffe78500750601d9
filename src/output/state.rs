//! What `status` and `check` know beyond the token file itself: how the last renewal
//! attempt of a token file ended, and when it rotated the refresh token. "Stateless"
//! means no daemon, not no memory.
//!
//! It lives in the record of the token file's lock (`store::Lock::set_record`), so a
//! token file has one sidecar, not a lock plus a state file plus their temp files:
//!
//! ```json
//! {"last_run":{"at":1764581020,"result":"renewed","exit":0,"message":null,
//!              "profile":"storage","expires":1764584620},"rotated_at":1764581020}
//! ```
//!
//! Written only when a run did work (renewed, or failed after taking the lock), never
//! on the fresh path and never by a run that failed before it took the lock: such a
//! run creates no file. It holds no secret. Losing it loses nothing but history, so
//! failures to write it are warnings.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::store;
use crate::token;

/// Longest error message kept (the record has a fixed size).
const MAX_MESSAGE: usize = 2048;

/// The last renewal attempt of one token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub at: i64,
    /// 0 when it renewed; else the exit code it failed with.
    pub exit: u8,
    pub message: Option<String>,
    pub expires: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub rotated_at: Option<i64>,
    pub last_run: Option<LastRun>,
}

fn parse(m: &Map<String, Value>) -> State {
    let v = &m.get("last_run").cloned().unwrap_or(Value::Null);
    let last_run = (|| {
        Some(LastRun {
            at: v["at"].as_i64()?,
            exit: v["exit"].as_u64().and_then(|e| u8::try_from(e).ok())?,
            message: v["message"].as_str().map(str::to_string),
            expires: v["expires"].as_i64(),
        })
    })();
    State {
        rotated_at: m.get("rotated_at").and_then(Value::as_i64),
        last_run,
    }
}

/// Read the state of a token file; empty when there is none. Creates nothing.
pub fn read(token_file: &Path) -> State {
    parse(&store::read_record(token_file))
}

/// Record how a renewal attempt of `token_file` ended, and when the credential was
/// rewritten (a rotated refresh token) if that happened during it.
pub fn record_run(
    token_file: &Path,
    profile: Option<&str>,
    result: std::result::Result<i64, &Error>,
    rotated_at: Option<i64>,
) {
    let Some(lock) =
        store::lock_existing(token_file, crate::clock::from_now(Duration::from_secs(10)))
    else {
        return;
    };
    let (exit, message, expires) = match result {
        Ok(exp) => (0, None, Some(exp)),
        Err(e) => {
            let mut m = e.message().to_string();
            if m.len() > MAX_MESSAGE {
                let mut end = MAX_MESSAGE;
                while !m.is_char_boundary(end) {
                    end -= 1;
                }
                m.truncate(end);
                m.push('…');
            }
            (e.exit().code(), Some(m), None)
        }
    };
    let mut m = lock.record();
    if let Some(t) = rotated_at {
        m.insert("rotated_at".into(), json!(t));
    }
    m.insert(
        "last_run".into(),
        json!({
            "at": token::now(),
            "result": if exit == 0 { "renewed" } else { "failed" },
            "exit": exit,
            "message": message,
            "profile": profile,
            "expires": expires,
        }),
    );
    if let Err(e) = lock.set_record(&m) {
        tracing::warn!("cannot record the run: {e}");
    }
}
