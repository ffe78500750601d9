//! Surgical edits of a JSON object's top-level members: a credential file keeps every
//! byte the user wrote (number spellings, escapes, layout, unknown fields) except the
//! members robot-token owns.
//!
//! A small scanner finds the byte span of each top-level key and value; an edit
//! splices new bytes into those spans and copies everything else verbatim. It is not
//! a validator: callers hand it text that serde_json has already accepted, and every
//! edit is checked by parsing the result again. (jsonc-parser's CST could do the
//! splicing, but it accepts comments and trailing commas, copies every value —
//! secrets included — into a tree of unwiped strings, and re-indents what it
//! inserts.)

use std::ops::Range;

use serde_json::Value;
use zeroize::Zeroizing;

/// Why an edit cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The text is not a single JSON object (or not JSON at all).
    NotObject(String),
    /// The key occurs more than once at the top level: which one counts is ambiguous.
    Duplicate(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::NotObject(why) => write!(f, "not a JSON object: {why}"),
            EditError::Duplicate(k) => write!(f, "{k:?} appears more than once"),
        }
    }
}

/// One top-level member: where its key (quotes included) and value sit in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key, escapes decoded (`"refresh\u005ftoken"` is `refresh_token`).
    pub key: String,
    pub key_span: Range<usize>,
    pub value_span: Range<usize>,
}

/// The top-level object: its braces and its members, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub open: usize,
    pub close: usize,
    pub members: Vec<Member>,
}

impl Object {
    /// How many times `key` appears at the top level.
    pub fn count(&self, key: &str) -> usize {
        self.members.iter().filter(|m| m.key == key).count()
    }

    /// The only member named `key`; an error when there are several.
    fn find(&self, key: &str) -> Result<Option<usize>, EditError> {
        let mut found = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.key == key {
                if found.is_some() {
                    return Err(EditError::Duplicate(key.to_string()));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, EditError> {
        Err(EditError::NotObject(format!("{what} at byte {}", self.pos)))
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), EditError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(&format!("expected {:?}", b as char))
        }
    }

    /// A string from its opening quote to just past its closing one.
    fn string(&mut self) -> Result<Range<usize>, EditError> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(start..self.pos);
                }
                // The escaped byte is never a quote that ends the string; `\uXXXX`'s
                // hex digits are ordinary bytes.
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return self.fail("unterminated string"),
            }
        }
    }

    /// Any value: a string, a nested object or array (skipped whole), or a number or
    /// literal (up to the next delimiter).
    fn value(&mut self) -> Result<Range<usize>, EditError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.pos += 1;
                                return Ok(start..self.pos);
                            }
                        }
                        Some(_) => {}
                        None => return self.fail("unterminated object or array"),
                    }
                    self.pos += 1;
                }
            }
            Some(b) if !is_ws(b) && !matches!(b, b',' | b'}' | b']' | b':') => {
                while self
                    .peek()
                    .is_some_and(|b| !is_ws(b) && !matches!(b, b',' | b'}' | b']'))
                {
                    self.pos += 1;
                }
                Ok(start..self.pos)
            }
            _ => self.fail("expected a value"),
        }
    }
}

/// Find the top-level members of a JSON object. The text must be valid JSON
/// (callers parse it with serde_json first); anything this scanner cannot follow
/// is an error, never a guess.
pub fn scan(text: &[u8]) -> Result<Object, EditError> {
    let mut s = Scanner { text, pos: 0 };
    s.skip_ws();
    let open = s.pos;
    s.expect(b'{')?;
    let mut members = Vec::new();
    s.skip_ws();
    let close = if s.peek() == Some(b'}') {
        s.pos
    } else {
        loop {
            let key_span = s.string()?;
            let key: String = serde_json::from_slice(&text[key_span.clone()])
                .map_err(|e| EditError::NotObject(format!("bad key: {e}")))?;
            s.skip_ws();
            s.expect(b':')?;
            s.skip_ws();
            let value_span = s.value()?;
            members.push(Member {
                key,
                key_span,
                value_span,
            });
            s.skip_ws();
            match s.peek() {
                Some(b',') => {
                    s.pos += 1;
                    s.skip_ws();
                }
                Some(b'}') => break s.pos,
                _ => return s.fail("expected ',' or '}'"),
            }
        }
    };
    s.pos += 1;
    s.skip_ws();
    if s.pos != text.len() {
        return s.fail("text after the object");
    }
    Ok(Object {
        open,
        close,
        members,
    })
}

/// A string as JSON text (quoted, escaped), in memory that is wiped on drop.
pub fn json_string(s: &str) -> Zeroizing<Vec<u8>> {
    // Room for the worst case (every byte `\u00XX`), so the buffer never reallocates
    // and leaves an unwiped copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 6 + 2));
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
    out
}

/// One change to a top-level member.
pub enum Edit<'a> {
    /// Replace the member's value with this JSON text, or append the member when absent.
    Set(&'a str, &'a [u8]),
    /// Remove the member; nothing when absent.
    Remove(&'a str),
}

/// Apply `edits` in order. Every byte outside the edited members is kept; a new
/// member goes after the last one, in the file's own separator and colon style.
/// The result is checked: it must parse to the original's values with exactly these
/// changes, or the edit is refused.
pub fn apply(text: &[u8], edits: &[Edit]) -> Result<Zeroizing<Vec<u8>>, EditError> {
    let mut cur = Zeroizing::new(text.to_vec());
    for e in edits {
        cur = match e {
            Edit::Set(key, value) => set(&cur, key, value)?,
            Edit::Remove(key) => remove(&cur, key)?,
        };
    }
    let want = expected(text, edits)?;
    let got = parse_object(&cur)?;
    if got != want {
        return Err(EditError::NotObject(
            "the edited text does not hold the expected values".into(),
        ));
    }
    Ok(cur)
}

/// What `apply` must produce, computed the plain way on parsed values.
fn expected(text: &[u8], edits: &[Edit]) -> Result<Value, EditError> {
    let mut v = parse_object(text)?;
    if let Value::Object(m) = &mut v {
        for e in edits {
            match e {
                Edit::Set(key, value) => {
                    let value = serde_json::from_slice(value)
                        .map_err(|e| EditError::NotObject(format!("bad new value: {e}")))?;
                    m.insert(key.to_string(), value);
                }
                Edit::Remove(key) => {
                    m.shift_remove(*key);
                }
            }
        }
    }
    Ok(v)
}

fn parse_object(text: &[u8]) -> Result<Value, EditError> {
    match serde_json::from_slice(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(EditError::NotObject("not an object".into())),
        Err(e) => Err(EditError::NotObject(e.to_string())),
    }
}

fn splice(text: &[u8], span: Range<usize>, with: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let extra: usize = with.iter().map(|w| w.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() + extra));
    out.extend_from_slice(&text[..span.start]);
    for w in with {
        out.extend_from_slice(w);
    }
    out.extend_from_slice(&text[span.end..]);
    out
}

/// Set one member's value (JSON text), or append the member.
fn set(text: &[u8], key: &str, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, EditError> {
    let obj = scan(text)?;
    if let Some(i) = obj.find(key)? {
        return Ok(splice(text, obj.members[i].value_span.clone(), &[value]));
    }
    let key_json = json_string(key);
    let Some(last) = obj.members.last() else {
        return Ok(splice(
            text,
            obj.open + 1..obj.open + 1,
            &[&key_json, b": ", value],
        ));
    };
    // The whitespace that leads into the last member (after the previous comma, or
    // after the brace), and the spacing around its colon: the file's own style.
    let lead_start = match obj.members.len() {
        1 => obj.open + 1,
        n => {
            let prev_end = obj.members[n - 2].value_span.end;
            text[prev_end..last.key_span.start]
                .iter()
                .position(|&b| b == b',')
                .map_or(last.key_span.start, |p| prev_end + p + 1)
        }
    };
    let lead = &text[lead_start..last.key_span.start];
    let colon = &text[last.key_span.end..last.value_span.start];
    let at = last.value_span.end;
    Ok(splice(text, at..at, &[b",", lead, &key_json, colon, value]))
}

/// Remove one member with its comma, keeping the layout around it.
fn remove(text: &[u8], key: &str) -> Result<Zeroizing<Vec<u8>>, EditError> {
    let obj = scan(text)?;
    let Some(i) = obj.find(key)? else {
        return Ok(Zeroizing::new(text.to_vec()));
    };
    let m = &obj.members;
    let span = if i + 1 < m.len() {
        // `"k": v,<ws>` up to the next key: what led into this member now leads
        // into the next.
        m[i].key_span.start..m[i + 1].key_span.start
    } else if i > 0 {
        // The last one: from the end of the previous value, its comma included.
        m[i - 1].value_span.end..m[i].value_span.end
    } else {
        obj.open + 1..m[i].value_span.end
    };
    Ok(splice(text, span, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set_str(text: &str, key: &str, value: &str) -> String {
        let v = json_string(value);
        String::from_utf8(
            apply(text.as_bytes(), &[Edit::Set(key, &v)])
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn remove_str(text: &str, key: &str) -> String {
        String::from_utf8(
            apply(text.as_bytes(), &[Edit::Remove(key)])
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn replaces_only_the_value() {
        let orig = "{\"n\": 12345678901234567890123, \"e\":1e3,\"z\" : -0,\n  \"s\": \"\\u00e9\\/\",\r\n\t\"refresh_token\"  :  \"old\" , \"t\": [1.0, {\"refresh_token\": \"nested\"}]}\n\n";
        let got = set_str(orig, "refresh_token", "new\"\\\u{1}é");
        assert_eq!(got, orig.replace("\"old\"", "\"new\\\"\\\\\\u0001é\""));
    }

    #[test]
    fn finds_an_escaped_key() {
        let orig = r#"{"refresh\u005ftoken": "old", "x": 1}"#;
        assert_eq!(
            set_str(orig, "refresh_token", "new"),
            r#"{"refresh\u005ftoken": "new", "x": 1}"#
        );
    }

    #[test]
    fn inserts_in_the_file_style() {
        assert_eq!(
            set_str("{\n    \"a\": 1,\n    \"b\" :2\n}\n", "refresh_token", "r"),
            "{\n    \"a\": 1,\n    \"b\" :2,\n    \"refresh_token\" :\"r\"\n}\n"
        );
        assert_eq!(
            set_str("{\"a\":1}", "refresh_token", "r"),
            "{\"a\":1,\"refresh_token\":\"r\"}"
        );
        assert_eq!(
            set_str("{\n\t\"a\": 1\n}", "refresh_token", "r"),
            "{\n\t\"a\": 1,\n\t\"refresh_token\": \"r\"\n}"
        );
        assert_eq!(
            set_str("{ }", "refresh_token", "r"),
            "{\"refresh_token\": \"r\" }"
        );
    }

    #[test]
    fn removes_with_its_comma() {
        let f = "{\n  \"a\": 1,\n  \"refresh_token\": \"r\",\n  \"b\": 2\n}\n";
        assert_eq!(
            remove_str(f, "refresh_token"),
            "{\n  \"a\": 1,\n  \"b\": 2\n}\n"
        );
        let f = "{\n  \"a\": 1,\n  \"refresh_token\": \"r\"\n}\n";
        assert_eq!(remove_str(f, "refresh_token"), "{\n  \"a\": 1\n}\n");
        let f = "{\n  \"refresh_token\": \"r\",\n  \"a\": 1\n}";
        assert_eq!(remove_str(f, "refresh_token"), "{\n  \"a\": 1\n}");
        assert_eq!(
            remove_str("{\n  \"refresh_token\": 1\n}", "refresh_token"),
            "{\n}"
        );
        assert_eq!(remove_str("{\"a\": 1}", "refresh_token"), "{\"a\": 1}");
    }

    #[test]
    fn remove_then_set_is_a_revocation() {
        let f = "{\n  \"version\": 1,\n  \"refresh_token\": \"r\",\n  \"x\": 1.50\n}\n";
        let at = json_string("2025-01-02T03:04:05Z");
        let got = apply(
            f.as_bytes(),
            &[Edit::Remove("refresh_token"), Edit::Set("revoked_at", &at)],
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            "{\n  \"version\": 1,\n  \"x\": 1.50,\n  \"revoked_at\": \"2025-01-02T03:04:05Z\"\n}\n"
        );
    }

    #[test]
    fn duplicates_and_garbage_are_refused() {
        let v = json_string("x");
        let dup = br#"{"refresh_token": "a", "refresh_token": "b"}"#;
        assert_eq!(
            apply(dup, &[Edit::Set("refresh_token", &v)]).unwrap_err(),
            EditError::Duplicate("refresh_token".into())
        );
        assert!(apply(dup, &[Edit::Remove("refresh_token")]).is_err());
        for bad in [
            &b"[1]"[..],
            b"",
            b"{",
            b"{\"a\":1} x",
            b"\"s\"",
            b"{\"a\" 1}",
        ] {
            assert!(apply(bad, &[Edit::Set("k", &v)]).is_err(), "{bad:?}");
            assert!(scan(bad).is_err() || bad == b"[1]", "{bad:?}");
        }
    }

    // Generated objects: random layout, number spellings, escapes, nesting; the
    // refresh_token member anywhere (or absent), its key maybe spelled with escapes.

    fn ws() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just(" "), Just("\n"), Just("\t"), Just("\r\n")],
            0..3,
        )
        .prop_map(|v| v.concat())
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-0".to_string()),
            Just("1e3".to_string()),
            Just("12345678901234567890123".to_string()),
            Just("1.50".to_string()),
            Just("-2.5E-7".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
        ]
    }

    /// A JSON string literal: plain characters, or the same written with escapes.
    fn string_lit() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[a-z_:{}\\[\\],]".prop_map(|s| s),
                Just("\\\"".to_string()),
                Just("\\\\".to_string()),
                Just("\\/".to_string()),
                Just("\\n".to_string()),
                Just("\\u00e9".to_string()),
                Just("\\ud83d\\ude00".to_string()),
                Just("é".to_string()),
                Just("\\\"refresh_token\\\": \\\"".to_string()),
            ],
            0..6,
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat()))
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            number(),
            string_lit(),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("null".to_string()),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                (proptest::collection::vec((ws(), inner.clone(), ws()), 0..4)).prop_map(|v| {
                    let items: Vec<String> = v
                        .into_iter()
                        .map(|(a, x, b)| format!("{a}{x}{b}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                (proptest::collection::vec((ws(), string_lit(), ws(), ws(), inner), 0..4))
                    .prop_map(|v| {
                        let items: Vec<String> = v
                            .into_iter()
                            .map(|(a, k, b, c, x)| format!("{a}{k}{b}:{c}{x}"))
                            .collect();
                        format!("{{{}}}", items.join(","))
                    }),
            ]
        })
    }

    /// An object's text, and where its refresh_token value sits (if it has one) or
    /// where the last value ends (where a new member goes).
    #[derive(Debug)]
    struct Doc {
        text: String,
        rt_span: Option<Range<usize>>,
        last_end: Option<usize>,
    }

    fn doc() -> impl Strategy<Value = Doc> {
        let rt_key = prop_oneof![
            Just("\"refresh_token\""),
            Just("\"refresh\\u005ftoken\""),
            Just("\"\\u0072efresh_token\""),
        ];
        (
            proptest::collection::vec((ws(), ws(), ws(), value(), ws()), 0..6),
            proptest::option::of((rt_key, string_lit(), any::<prop::sample::Index>())),
            ws(),
            ws(),
        )
            .prop_map(|(members, rt, before, after)| {
                let mut parts: Vec<(String, String, String, String, String)> = members
                    .into_iter()
                    .enumerate()
                    // Unique keys: k0, k1, ... some written with an escape.
                    .map(|(i, (a, b, c, v, d))| {
                        let key = if i % 2 == 0 {
                            format!("\"k{i}\"")
                        } else {
                            format!("\"\\u006b{i}\"")
                        };
                        (a, key, format!("{b}:{c}"), v, d)
                    })
                    .collect();
                let rt_at = rt.map(|(key, v, idx)| {
                    let at = idx.index(parts.len() + 1);
                    parts.insert(
                        at,
                        (" ".into(), key.to_string(), ":".into(), v, String::new()),
                    );
                    at
                });
                let mut text = format!("{before}{{");
                let mut rt_span = None;
                let mut last_end = None;
                for (i, (a, k, colon, v, d)) in parts.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(a);
                    text.push_str(k);
                    text.push_str(colon);
                    let start = text.len();
                    text.push_str(v);
                    if Some(i) == rt_at {
                        rt_span = Some(start..text.len());
                    }
                    last_end = Some(text.len());
                    text.push_str(d);
                }
                text.push('}');
                text.push_str(&after);
                Doc {
                    text,
                    rt_span,
                    last_end,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn only_the_refresh_token_changes(d in doc(), new in "[ -~é\u{1}\n]{0,40}") {
            let orig = d.text.as_bytes();
            prop_assume!(serde_json::from_slice::<Value>(orig).is_ok());
            let v = json_string(&new);
            let got = apply(orig, &[Edit::Set("refresh_token", &v)]).unwrap();
            match (&d.rt_span, d.last_end) {
                (Some(span), _) => {
                    // Byte for byte the original, with just the value replaced.
                    let mut want = orig[..span.start].to_vec();
                    want.extend_from_slice(&v);
                    want.extend_from_slice(&orig[span.end..]);
                    prop_assert_eq!(&*got, &want[..]);
                }
                (None, Some(end)) => {
                    prop_assert_eq!(&got[..end], &orig[..end]);
                    let tail = &orig[end..];
                    prop_assert!(got.ends_with(tail));
                    let inserted = std::str::from_utf8(&got[end..got.len() - tail.len()]).unwrap();
                    prop_assert!(inserted.starts_with(','), "{}", inserted);
                    prop_assert!(inserted.ends_with(std::str::from_utf8(&v).unwrap()), "{}", inserted);
                }
                (None, None) => {}
            }
            // And it parses to the same values, with the new refresh token.
            let mut want: serde_json::Map<String, Value> = serde_json::from_slice(orig).unwrap();
            want.insert("refresh_token".into(), Value::String(new.clone()));
            let back: serde_json::Map<String, Value> = serde_json::from_slice(&got).unwrap();
            prop_assert_eq!(back, want);
        }

        #[test]
        fn removal_keeps_the_rest(d in doc()) {
            let orig = d.text.as_bytes();
            prop_assume!(serde_json::from_slice::<Value>(orig).is_ok());
            let got = apply(orig, &[Edit::Remove("refresh_token")]).unwrap();
            let mut want: serde_json::Map<String, Value> = serde_json::from_slice(orig).unwrap();
            want.shift_remove("refresh_token");
            let back: serde_json::Map<String, Value> = serde_json::from_slice(&got).unwrap();
            prop_assert_eq!(back, want);
            if d.rt_span.is_none() {
                prop_assert_eq!(&*got, orig);
            } else {
                // Only bytes went away, none changed: the result is a subsequence
                // made of a prefix and a suffix of the original.
                let p = orig.iter().zip(got.iter()).take_while(|(a, b)| a == b).count();
                prop_assert!(orig.ends_with(&got[p..]));
            }
        }

        #[test]
        fn scanner_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = scan(&bytes);
            let v = json_string("x");
            let _ = apply(&bytes, &[Edit::Set("refresh_token", &v), Edit::Remove("a")]);
        }
    }
}
