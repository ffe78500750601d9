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
//!
//! One concern, the scanner and the splicing together: the scanner exists only to
//! give the edits their spans. The tests, mostly generators of odd but valid
//! files, are in `json_edit/tests.rs`.

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
mod tests;
