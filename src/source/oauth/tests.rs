use crate::error::Exit;
use crate::http::Reply;
use crate::secret::Secret;

use super::client::basic_auth;
use super::device::classify_poll;
use super::*;

#[test]
fn token_response_parsing() {
    let r = parse_token_response(
        br#"{"access_token":"a.b.c","refresh_token":"r","expires_in":"60","scope":"x y"}"#,
    )
    .unwrap();
    assert_eq!(r.access_token.unwrap().expose(), "a.b.c");
    assert_eq!(r.expires_in, Some(60));
    assert!(parse_token_response(b"").unwrap_err().contains("empty"));
    assert!(parse_token_response(b"<html>")
        .unwrap_err()
        .contains("HTML"));
    assert!(parse_token_response(br#"{"access_token": "ey"#)
        .unwrap_err()
        .contains("truncated"));
    assert!(parse_token_response(br#"{"access_token": 5}"#).is_err());
    assert!(parse_token_response(br#"{"token_type":"Bearer"}"#)
        .unwrap()
        .access_token
        .is_none());
}

#[test]
fn basic_auth_encodes_per_rfc6749() {
    let h = basic_auth("a:b", "c d");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(h.expose().trim_start_matches("Basic "))
        .unwrap();
    assert_eq!(raw, b"a%3Ab:c+d");
}

/// An answer of the issuer with this status and body.
fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.as_bytes().to_vec(),
        content_type: None,
        retry_after: None,
        location: None,
        date: None,
    }
}

#[test]
fn errors_map_to_exit_codes() {
    let rt = Grant::RefreshToken(Secret::new("r"));
    let cc = Grant::ClientCredentials;
    let code = |r: Reply, g: &Grant| error_reply(&r, "https://x/token", g).exit();
    assert_eq!(
        code(reply(400, r#"{"error":"invalid_grant"}"#), &rt),
        Exit::NoPerm
    );
    assert_eq!(
        code(reply(401, r#"{"error":"invalid_client"}"#), &cc),
        Exit::NoPerm
    );
    assert_eq!(code(reply(503, "<html>down</html>"), &cc), Exit::TempFail);
    assert_eq!(code(reply(429, ""), &cc), Exit::TempFail);
    assert_eq!(code(reply(404, "nope"), &cc), Exit::Config);
    assert_eq!(
        code(reply(400, r#"{"error":"invalid_scope"}"#), &cc),
        Exit::Config
    );
    let m = error_reply(
        &reply(400, r#"{"error":"invalid_grant"}"#),
        "https://x/token",
        &rt,
    );
    assert!(m.message().contains("bootstrap"), "{m}");
}

#[test]
fn device_polls_are_classified_per_rfc8628() {
    let client = Client {
        id: "c".into(),
        secret: None,
        auth: ClientAuth::None,
        key: None,
    };
    let grant = Grant::DeviceCode(Secret::new("dc"));
    let req = TokenRequest {
        endpoint: "https://x/token",
        client: &client,
        grant: &grant,
        scope: &[],
        audience: &[],
    };
    let poll = |r: Reply| classify_poll(&r, &req);
    assert!(matches!(
        poll(reply(400, r#"{"error":"authorization_pending"}"#)),
        Ok(Poll::Pending(None))
    ));
    assert!(matches!(
        poll(reply(400, r#"{"error":"slow_down"}"#)),
        Ok(Poll::SlowDown)
    ));
    assert!(matches!(poll(reply(503, "<html>")), Ok(Poll::Pending(_))));
    let denied = poll(reply(400, r#"{"error":"access_denied"}"#)).unwrap_err();
    assert_eq!(denied.exit(), Exit::NoPerm);
    assert!(denied.message().contains("denied"), "{denied}");
    let expired = poll(reply(400, r#"{"error":"expired_token"}"#)).unwrap_err();
    assert_eq!(expired.exit(), Exit::TempFail);
    assert!(expired.message().contains("init again"), "{expired}");
    let used = poll(reply(400, r#"{"error":"invalid_grant"}"#)).unwrap_err();
    assert_eq!(used.exit(), Exit::NoPerm);
    assert!(matches!(
        poll(reply(
            200,
            r#"{"access_token":"a.b.c","refresh_token":"r"}"#
        )),
        Ok(Poll::Token(_))
    ));
    assert_eq!(poll(reply(200, "{")).unwrap_err().exit(), Exit::Data);
}

#[test]
fn device_authorization_parsing() {
    let d = parse_device_authorization(
        br#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://x/device",
            "verification_uri_complete":"https://x/device?user_code=ABCD-EFGH","expires_in":600,"interval":5}"#,
    )
    .unwrap();
    assert_eq!(d.user_code, "ABCD-EFGH");
    assert_eq!((d.expires_in, d.interval), (Some(600), Some(5)));
    // Google's spelling, numbers as strings, no interval.
    let d = parse_device_authorization(
        br#"{"device_code":"dc","user_code":"U","verification_url":"https://g/device","expires_in":"1800"}"#,
    )
    .unwrap();
    assert_eq!(d.verification_uri, "https://g/device");
    assert_eq!((d.expires_in, d.interval), (Some(1800), None));
    for bad in [
        &b""[..],
        b"<html>",
        br#"{"user_code":"U","verification_uri":"v"}"#,
        br#"{"device_code":"d","verification_uri":"v"}"#,
        br#"{"device_code":"d","user_code":"U"}"#,
        br#"{"device_code":"d","user_code":"U","verification_uri":"v","interval":-1}"#,
        br#"[1]"#,
    ] {
        assert!(parse_device_authorization(bad).is_err(), "{bad:?}");
    }
    // The device code never shows in Debug.
    let d = parse_device_authorization(
        br#"{"device_code":"SECRET-DEVICE-CODE","user_code":"U","verification_uri":"v"}"#,
    )
    .unwrap();
    assert!(!format!("{d:?}").contains("SECRET-DEVICE-CODE"));
}
