//! One profile table as a `get` command line: each key a long option (`--long=value`,
//! `--flag`), each value checked for its shape first, so that an error names the key
//! and its place in the file. clap then parses the list as it parses a real one.

use std::collections::HashMap;
use std::ffi::OsString;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{Entry, OptionInfo};

/// The entries of one table; an error is (where, what).
pub(super) fn entries(
    t: &DeTable<'_>,
    by_long: &HashMap<&str, &OptionInfo>,
) -> std::result::Result<Vec<Entry>, (Range<usize>, String)> {
    let mut out = Vec::with_capacity(t.len());
    for (key, value) in t {
        let k = key.get_ref().as_ref();
        let mut long = k.replace('_', "-");
        // `outputs = [...]` reads better than `outfile = [...]` for several files.
        if long == "outputs" {
            long = "outfile".into();
        }
        let Some(opt) = by_long.get(long.as_str()) else {
            return Err((
                key.span(),
                format!("unknown key {k:?}: not an option of `robot-token get` (see robot-token get --help)"),
            ));
        };
        let argv =
            to_argv(opt, value).map_err(|what| (value.span(), format!("key {k}: {what}")))?;
        out.push(Entry {
            key: k.to_string(),
            id: opt.id.clone(),
            argv,
            span: key.span(),
        });
    }
    Ok(out)
}

fn scalar(v: &DeValue<'_>) -> Option<String> {
    match v {
        // `{path = "/tmp/t", owner = "alice", mode = "0640"}`: the `-o PATH:key=value,...`
        // form of a token file for another user.
        DeValue::Table(t) => {
            let path = t.get("path").and_then(|p| scalar_only(p.get_ref()))?;
            let mut opts = Vec::new();
            for (k, v) in t {
                if k.get_ref() != "path" {
                    opts.push(format!("{}={}", k.get_ref(), scalar_only(v.get_ref())?));
                }
            }
            Some(if opts.is_empty() {
                path
            } else {
                format!("{path}:{}", opts.join(","))
            })
        }
        other => scalar_only(other),
    }
}

fn scalar_only(v: &DeValue<'_>) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(f) => Some(f.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The command-line form of one value: `--long=value` for each value, `--long` for a
/// flag set to true. `--long=value` keeps a value that starts with '-' a value.
fn to_argv(
    opt: &OptionInfo,
    v: &Spanned<DeValue<'_>>,
) -> std::result::Result<Vec<OsString>, String> {
    let arg = |s: &str| OsString::from(format!("--{}={s}", opt.long));
    // A token file table's keys are checked here, where the error can name them: a
    // misspelt `onwer` must not become part of a file name.
    let tables: Vec<&DeTable<'_>> = match v.get_ref() {
        DeValue::Table(t) => vec![t],
        DeValue::Array(items) => items
            .iter()
            .filter_map(|i| match i.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for t in tables {
        if let Some(k) = t
            .keys()
            .map(|k| k.get_ref().as_ref())
            .find(|k| !crate::output::target::TABLE_KEYS.contains(k))
        {
            return Err(format!(
                "{} in a token file table",
                crate::output::target::unknown_key(k, &crate::output::target::TABLE_KEYS)
            ));
        }
    }
    if !opt.takes_value {
        return match v.get_ref() {
            DeValue::Boolean(true) => Ok(vec![OsString::from(format!("--{}", opt.long))]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            _ => Err("must be true or false".into()),
        };
    }
    match v.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .map(|i| {
                scalar(i.get_ref()).map(|s| arg(&s)).ok_or_else(|| {
                    "array items must be strings, numbers or {path = ...} tables".to_string()
                })
            })
            .collect(),
        other => scalar(other).map(|s| vec![arg(&s)]).ok_or_else(|| {
            "must be a string, a number, a boolean, an array or a {path = ...} table".into()
        }),
    }
}
