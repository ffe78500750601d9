use std::path::Path;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::secret::Secret;
use crate::source::oauth::exchange::Subject;
use crate::source::oauth::ClientAuth;

use super::*;

fn parse(s: &str) -> Result<Credential> {
    Credential::parse(s.as_bytes(), Path::new("cred.json"))
}

#[test]
fn full_example() {
    let c = parse(
        r#"{"version":1,"issuer":"https://iam.example.org/","client_id":"robot",
           "client_secret":"s","client_auth":"post","refresh_token":"r",
           "scope":"storage.read:/ compute.create","audience":["https://a","b"],
           "x-site":{"keep":true}}"#,
    )
    .unwrap();
    assert_eq!(c.client_auth, Some(ClientAuth::Post));
    assert_eq!(c.scope, vec!["storage.read:/", "compute.create"]);
    assert_eq!(c.audience, vec!["https://a", "b"]);
    let out = String::from_utf8(
        c.render_with_refresh_token(&Secret::new("r2"))
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(out.contains("\"x-site\""), "{out}");
    assert!(out.contains("\"r2\""));
    // Field order survives.
    assert!(out.find("\"version\"").unwrap() < out.find("\"x-site\"").unwrap());
}

#[test]
fn errors_name_the_field() {
    let e = parse(r#"{"version":1,"issuer":"https://x","client_id":5}"#).unwrap_err();
    assert!(e.message().contains("client_id"), "{e}");
    let e = parse(r#"{"version":1,"issuer":"https://x","client_id":"a","scope":7}"#).unwrap_err();
    assert!(e.message().contains("scope"), "{e}");
    let e = parse(r#"{"version":2}"#).unwrap_err();
    assert!(e.message().contains("version"), "{e}");
    let e = parse(r#"{"version":1,"client_id":"a"}"#).unwrap_err();
    assert!(e.message().contains("issuer"), "{e}");
    assert!(parse("[").is_err());
    assert!(parse("").is_err());
}

#[test]
fn exchange_and_private_key_fields() {
    let c = Credential::parse(
        br#"{"version":1,"issuer":"https://x","client_id":"a","grant":"token_exchange",
            "subject_token_file":"sub.jwt","subject_token_type":"urn:t","requested_token_type":"urn:r",
            "client_auth":"private_key_jwt","private_key_file":"keys/k.pem","kid":"k1"}"#,
        Path::new("/etc/robot/cred.json"),
    )
    .unwrap();
    assert_eq!(c.grant, Some(CredGrant::TokenExchange));
    assert_eq!(c.subject, Some(Subject::File("/etc/robot/sub.jwt".into())));
    assert_eq!(c.private_key_file, Some("/etc/robot/keys/k.pem".into()));
    assert_eq!(c.client_auth, Some(ClientAuth::PrivateKeyJwt));
    assert_eq!(c.kid.as_deref(), Some("k1"));
    assert_eq!(c.subject_token_type.as_deref(), Some("urn:t"));
    let c = parse(
        r#"{"version":1,"issuer":"https://x","client_id":"a","subject_token_env":"ID_TOKEN"}"#,
    )
    .unwrap();
    assert_eq!(c.subject, Some(Subject::Env("ID_TOKEN".into())));
    for bad in [
        r#"{"version":1,"issuer":"https://x","client_id":"a","grant":"magic"}"#,
        r#"{"version":1,"issuer":"https://x","client_id":"a","subject_token_file":"f","subject_token_env":"E"}"#,
        r#"{"version":1,"issuer":"https://x","client_id":"a","client_auth":"private_key_jwt"}"#,
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Data, "{bad}");
    }
}

#[test]
fn near_misses_of_known_fields_are_errors_other_fields_are_kept() {
    for (typo, meant) in [
        ("refresh_tokn", "refresh_token"),
        ("client_secert", "client_secret"),
        ("scopes", "scope"),
        ("Audience", "audience"),
    ] {
        let e = parse(&format!(
            r#"{{"version":1,"issuer":"https://x","client_id":"a","{typo}":"v"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Config, "{typo}");
        assert!(
            e.message().contains(&format!("did you mean \"{meant}\"?")),
            "{e}"
        );
        assert!(
            !e.message().contains("\"v\""),
            "no value in the message: {e}"
        );
    }
    // Distant names, and near misses of fields that are there, are kept.
    let c = parse(
        r#"{"version":1,"issuer":"https://x","client_id":"a","comment":"robot for storage",
           "x-site":1,"scope":"a","scopes_note":"b","refresh_token":"r","refresh_tokn":"old"}"#,
    )
    .unwrap();
    let out = c.render_with_refresh_token(&Secret::new("r2")).unwrap();
    let out = String::from_utf8(out.to_vec()).unwrap();
    for kept in ["comment", "x-site", "scopes_note", "refresh_tokn"] {
        assert!(out.contains(kept), "{kept}: {out}");
    }
}

#[test]
fn rewrites_keep_every_other_byte() {
    let text = "{\"version\":1, \"issuer\":\"https://x\",\n \"client_id\":\"a\", \"n\": 1e3,\n \"refresh_token\": \"old\", \"client_secret\": \"s\"}\n";
    let mut c = parse(text).unwrap();
    let out = c.render_with_refresh_token(&Secret::new("n\"w")).unwrap();
    assert_eq!(&*out, text.replace("\"old\"", "\"n\\\"w\"").as_bytes());
    // Retiring: the refresh token goes, the client secret stays, revoked_at is added.
    let out = c.render_revoked("2025-01-02T03:04:05Z").unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "{\"version\":1, \"issuer\":\"https://x\",\n \"client_id\":\"a\", \"n\": 1e3,\n \"client_secret\": \"s\",\n \"revoked_at\": \"2025-01-02T03:04:05Z\"}\n"
    );
    // On disk, atomically; the credential then holds no refresh token.
    let d = tempfile::tempdir().unwrap();
    c.path = d.path().join("cred.json");
    std::fs::write(&c.path, text).unwrap();
    let p = c.prepare_rewrite().unwrap();
    c.store_refresh_token(p, Secret::new("r2")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&c.path).unwrap(),
        text.replace("\"old\"", "\"r2\"")
    );
    c.store_revoked("2025-01-02T03:04:05Z").unwrap();
    assert!(c.refresh_token.is_none());
    let back = Credential::load(&c.path).unwrap();
    assert!(back.refresh_token.is_none());
    assert_eq!(back.client_secret.unwrap().expose(), "s");
}

#[test]
fn owned_fields_may_appear_once() {
    for key in ["refresh_token", "refresh\\u005ftoken", "revoked_at"] {
        let plain = key.replace("\\u005f", "_");
        let text = format!(
            r#"{{"version":1,"issuer":"https://x","client_id":"a","{plain}":"1","{key}":"2"}}"#
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Data, "{text}");
        assert!(e.message().contains("appears 2 times"), "{e}");
    }
    // Other duplicates (a `"//"` comment key used twice) are the user's business.
    parse(r#"{"version":1,"issuer":"https://x","client_id":"a","//":"x","//":"y"}"#).unwrap();
}

#[test]
fn a_failed_edit_still_saves_the_rotated_token() {
    let d = tempfile::tempdir().unwrap();
    let mut c = parse(r#"{"version":1,"issuer":"https://x","client_id":"a","n":1e3}"#).unwrap();
    c.path = d.path().join("cred.json");
    // Text the scanner cannot follow (it never is: parse scanned it).
    c.text = Zeroizing::new(br#"{"version":1,"issuer":"https://x","client_id":"a","n":1e3,"refresh_token":"a","refresh_token":"b"}"#.to_vec());
    let p = c.prepare_rewrite().unwrap();
    c.store_refresh_token(p, Secret::new("r2")).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&c.path).unwrap()).unwrap();
    assert_eq!(v["refresh_token"], "r2");
    assert_eq!(v["client_id"], "a");
}

#[test]
fn secrets_do_not_print() {
    let c = parse(
        r#"{"version":1,"issuer":"https://x","client_id":"a","client_secret":"TOPSECRET","refresh_token":"REFRESHME"}"#,
    )
    .unwrap();
    let dbg = format!("{:?}", c.client_secret);
    assert!(!dbg.contains("TOPSECRET"));
    let dbg = format!("{:?}", c.refresh_token);
    assert!(!dbg.contains("REFRESHME"));
}
