//! Tests of the JSON member edits: examples of each layout, and generated objects
//! (random layout, number spellings, escapes, nesting) whose bytes must survive
//! every edit. In a file of their own because the generators outweigh the code.

use proptest::prelude::*;

use super::*;

/// `apply` with one edit, on and to a string.
fn edited(text: &str, edit: Edit) -> String {
    String::from_utf8(apply(text.as_bytes(), &[edit]).unwrap().to_vec()).unwrap()
}

fn set_str(text: &str, key: &str, value: &str) -> String {
    edited(text, Edit::Set(key, &json_string(value)))
}

fn remove_str(text: &str, key: &str) -> String {
    edited(text, Edit::Remove(key))
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
    for (file, want) in [
        (
            "{\n    \"a\": 1,\n    \"b\" :2\n}\n",
            "{\n    \"a\": 1,\n    \"b\" :2,\n    \"refresh_token\" :\"r\"\n}\n",
        ),
        ("{\"a\":1}", "{\"a\":1,\"refresh_token\":\"r\"}"),
        (
            "{\n\t\"a\": 1\n}",
            "{\n\t\"a\": 1,\n\t\"refresh_token\": \"r\"\n}",
        ),
        ("{ }", "{\"refresh_token\": \"r\" }"),
    ] {
        assert_eq!(set_str(file, "refresh_token", "r"), want, "{file:?}");
    }
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
            (proptest::collection::vec((ws(), string_lit(), ws(), ws(), inner), 0..4)).prop_map(
                |v| {
                    let items: Vec<String> = v
                        .into_iter()
                        .map(|(a, k, b, c, x)| format!("{a}{k}{b}:{c}{x}"))
                        .collect();
                    format!("{{{}}}", items.join(","))
                }
            ),
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
