//! A small state file beside the credential: when its refresh token last rotated and
//! how the last renewal attempt of each token file ended. "Stateless" means no daemon,
//! not no memory: `status` and `check` read it.
//!
//! ```json
//! {"version":1,"rotated_at":1764581020,
//!  "runs":{"/tmp/bt_u1000":{"at":1764581020,"result":"renewed","exit":0,
//!                            "message":null,"profile":"storage","expires":1764584620}}}
//! ```
//!
//! It is written only when a run did work (renewed, or failed), never on the fresh path,
//! atomically through `store`, under its own lock. It holds no secret. Losing it loses
//! nothing but history, so failures to write it are warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::store::{self, WriteMode};
use crate::token;

const MAX_STATE_LEN: usize = 1024 * 1024;

/// The state file of a credential: `.NAME.state` beside it (or in the per-user cache
/// when its directory is shared, as for locks).
pub fn path(credential: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(credential).unwrap_or_else(|_| credential.to_path_buf());
    store::sidecar_path(&real, "state").ok()
}

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
    runs: Map<String, Value>,
}

impl State {
    pub fn last_run(&self, token_file: &Path) -> Option<LastRun> {
        let v = self.runs.get(&key(token_file))?;
        Some(LastRun {
            at: v["at"].as_i64()?,
            exit: v["exit"].as_u64().and_then(|e| u8::try_from(e).ok())?,
            message: v["message"].as_str().map(str::to_string),
            expires: v["expires"].as_i64(),
        })
    }
}

fn key(token_file: &Path) -> String {
    store::absolute(token_file).to_string_lossy().into_owned()
}

fn load(p: &Path) -> Map<String, Value> {
    match store::read_own(p, MAX_STATE_LEN) {
        Ok(Some(d)) => match serde_json::from_slice(&d) {
            Ok(Value::Object(m)) if m.get("version").and_then(Value::as_u64) == Some(1) => m,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// Read the state of a credential; empty when there is none.
pub fn read(credential: &Path) -> State {
    let Some(p) = path(credential) else {
        return State::default();
    };
    let m = load(&p);
    State {
        rotated_at: m.get("rotated_at").and_then(Value::as_i64),
        runs: m
            .get("runs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

/// Read, change and atomically replace the state file, under its lock.
fn update(credential: &Path, change: impl FnOnce(&mut Map<String, Value>)) {
    let Some(p) = path(credential) else {
        tracing::debug!("no place for the state file of {}", credential.display());
        return;
    };
    let result = (|| {
        let lock_path = store::sidecar_path(&p, "lock")?;
        let _lock = store::lock(&lock_path, crate::clock::from_now(Duration::from_secs(10)))?;
        // A run killed while writing the state left its temp file: ours to remove.
        store::remove_stale_temps(&p);
        let mut m = load(&p);
        m.insert("version".into(), json!(1));
        change(&mut m);
        let mut bytes = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
        bytes.push(b'\n');
        store::atomic_write(&p, &bytes, WriteMode::default())
    })();
    if let Err(e) = result {
        tracing::warn!("cannot record the run in the state file: {e}");
    }
}

/// Record how a renewal attempt ended, and when the credential was rewritten (a
/// rotated refresh token) if that happened during it.
pub fn record_run(
    credential: &Path,
    token_file: &Path,
    profile: Option<&str>,
    result: std::result::Result<i64, &Error>,
    rotated_at: Option<i64>,
) {
    let (exit, message, expires) = match result {
        Ok(exp) => (0, None, Some(exp)),
        Err(e) => (e.exit().code(), Some(e.message().to_string()), None),
    };
    update(credential, |m| {
        if let Some(t) = rotated_at {
            m.insert("rotated_at".into(), json!(t));
        }
        let runs = m.entry("runs").or_insert_with(|| Value::Object(Map::new()));
        if !runs.is_object() {
            *runs = Value::Object(Map::new());
        }
        runs[key(token_file)] = json!({
            "at": token::now(),
            "result": if exit == 0 { "renewed" } else { "failed" },
            "exit": exit,
            "message": message,
            "profile": profile,
            "expires": expires,
        });
    });
}
