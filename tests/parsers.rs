//! Property tests of every parser that reads untrusted bytes: the JWT splitter and
//! decoder, the credential file, the token response, the discovery document and the
//! device authorization response.
//! None may panic, whatever the input. The default run tries 2,000 cases per parser;
//! `scripts/reliability.sh` runs 100,000 (PROPTEST_CASES).

use std::path::Path;

use proptest::prelude::*;
use robot_token::source::{credential::Credential, oauth};
use robot_token::token;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Inputs shaped like what the parsers expect, mutated: random bytes alone rarely
/// get past the first check.
fn jwt_like() -> impl Strategy<Value = String> {
    let seg = "[A-Za-z0-9_=-]{0,40}";
    prop_oneof![
        (seg, seg, seg).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        any::<String>(),
        (any::<Vec<u8>>(), any::<Vec<u8>>()).prop_map(|(h, p)| {
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("{}.{}.sig", e.encode(h), e.encode(p))
        }),
        json_value().prop_map(|v| {
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("e30.{}.sig", e.encode(v.to_string()))
        }),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("version".to_string()),
                    Just("exp".to_string()),
                    Just("issuer".to_string()),
                    Just("client_id".to_string()),
                    Just("refresh_token".to_string()),
                    Just("access_token".to_string()),
                    Just("scope".to_string()),
                    Just("audience".to_string()),
                    Just("token_endpoint".to_string()),
                    Just("expires_in".to_string()),
                    Just("device_code".to_string()),
                    Just("user_code".to_string()),
                    Just("verification_uri".to_string()),
                    Just("interval".to_string()),
                    Just("grant".to_string()),
                    Just("subject_token_file".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        any::<Vec<u8>>(),
        json_value().prop_flat_map(|v| {
            let s = v.to_string().into_bytes();
            let n = s.len();
            (Just(s), 0..=n).prop_map(|(s, cut)| s[..cut].to_vec())
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn jwt_decoding_never_panics(s in jwt_like()) {
        let _ = token::split(&s);
        let d = token::decode(&s);
        let e = token::expiry(&s);
        // One decision: the cron path's expiry is the full decoder's, always, and an
        // accepted exp is a real time (no arithmetic on it can overflow).
        match &d {
            Ok(jwt) => prop_assert_eq!(&jwt.expiry(), &e),
            Err(_) => prop_assert!(e.is_err()),
        }
        if let Ok(exp) = e {
            prop_assert!((0..=token::MAX_EXP).contains(&exp));
        }
        if let Ok(jwt) = d {
            let _ = (jwt.audiences(), jwt.scopes());
        }
    }

    #[test]
    fn credential_parsing_never_panics(b in json_bytes()) {
        if let Ok(c) = Credential::parse(&b, Path::new("fuzz.json")) {
            // A parsed credential renders back (surgically: parse refused what could
            // not be) to JSON that parses again.
            let out = c.render_with_refresh_token(&robot_token::secret::Secret::new("r"));
            prop_assert!(out.is_ok());
            let out = out.unwrap();
            prop_assert!(Credential::parse(&out, Path::new("fuzz.json")).is_ok());
        }
    }

    #[test]
    fn token_response_parsing_never_panics(b in json_bytes()) {
        let _ = oauth::parse_token_response(&b);
    }

    #[test]
    fn discovery_parsing_never_panics(b in json_bytes()) {
        let _ = robot_token::issuer::parse_metadata(&b);
    }

    #[test]
    fn device_authorization_parsing_never_panics(b in json_bytes()) {
        let _ = oauth::parse_device_authorization(&b);
    }

    #[test]
    fn untrusted_text_is_always_safe(s in any::<String>()) {
        let t = robot_token::secret::untrusted_text(&s);
        prop_assert!(t.chars().count() <= robot_token::secret::MAX_UNTRUSTED + 1);
        prop_assert!(!t.contains('|'));
        let bad = |c: char| {
            c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        };
        prop_assert!(!t.chars().any(bad), "{:?}", t);
    }

    #[test]
    fn durations_parse_bounded_and_never_panic(s in "[0-9]{0,30}[smhdw ]{0,3}[0-9]{0,6}") {
        if let Ok(d) = robot_token::clock::parse_duration(&s) {
            prop_assert!(d <= robot_token::clock::MAX_DURATION);
        }
    }
}
