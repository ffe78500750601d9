use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn krb5_config_puts_ours_first() {
    let ours = Path::new("/home/r/.cache/robot-token/krb5/rdns.conf");
    assert_eq!(
        krb5_config_list(ours, None),
        "/home/r/.cache/robot-token/krb5/rdns.conf:/etc/krb5.conf"
    );
    assert_eq!(
        krb5_config_list(ours, Some(std::ffi::OsStr::new("/k/krb5.conf"))),
        "/home/r/.cache/robot-token/krb5/rdns.conf:/k/krb5.conf"
    );
}

#[test]
fn server_normalisation() {
    let n = normalize_server;
    assert_eq!(
        n("vault.ligo.org").unwrap(),
        (
            "https://vault.ligo.org:8200".into(),
            "vault.ligo.org".into()
        )
    );
    assert_eq!(
        n("vault.example.org:8443").unwrap().0,
        "https://vault.example.org:8443"
    );
    assert_eq!(
        n("https://vault.example.org/").unwrap().0,
        "https://vault.example.org:8200"
    );
    assert_eq!(
        n("https://vault.example.org:443").unwrap().0,
        "https://vault.example.org:443"
    );
    assert_eq!(n("http://localhost:8200").unwrap().1, "localhost");
    assert_eq!(n("[::1]").unwrap().0, "https://[::1]:8200");
    assert_eq!(n("[::1]").unwrap().1, "::1");
    assert!(
        n("http://vault.example.org").is_err(),
        "plain http off loopback"
    );
    assert!(n("vault.example.org/v1").is_err());
    assert!(n("").is_err());
}

#[test]
fn defaults_follow_igwn_robot_get() {
    assert_eq!(
        principal_defaults("robot/ci.example.org@ROBOT.TEST"),
        ("robot/ci.example.org".into(), "robot".into())
    );
    assert_eq!(
        principal_defaults("intruder@ROBOT.TEST"),
        ("intruder".into(), "intruder".into())
    );
    let opts = VaultOptions {
        server: Some("vault.example.org".into()),
        principal: Some("ligo-robot/host.example.org@LIGO.ORG".into()),
        token_file: Some("/run/vt".into()),
        ..VaultOptions::default()
    };
    let s = Settings::from_options(&opts, None).unwrap();
    assert_eq!(s.server, "https://vault.example.org:8200");
    assert_eq!(s.issuer, "default");
    assert_eq!(s.credkey, "ligo-robot/host.example.org");
    assert_eq!(s.role, "ligo-robot");
    assert_eq!(s.kerberos_path, "auth/kerberos-default_ligo-robot");
    assert_eq!(
        s.secret_path,
        "secret/oauth/creds/default/ligo-robot/host.example.org:ligo-robot"
    );
    assert_eq!(s.token_minttl, Duration::from_secs(86400));
    assert_eq!(s.token_ttl, Duration::from_secs(604800));
}

#[test]
fn options_override_the_file() {
    let cli = VaultOptions {
        role: Some("cli-role".into()),
        ..VaultOptions::default()
    };
    let file = VaultOptions {
        server: Some("vault.example.org:1234".into()),
        issuer_name: Some("igwn".into()),
        role: Some("file-role".into()),
        credkey: Some("robot".into()),
        token_file: Some("/run/vt".into()),
        ..VaultOptions::default()
    };
    let s = Settings::from_options(&cli, Some(&file)).unwrap();
    assert_eq!(s.server, "https://vault.example.org:1234");
    assert_eq!(s.role, "cli-role");
    assert_eq!(s.secret_path, "secret/oauth/creds/igwn/robot:cli-role");
}

#[test]
fn file_section_is_checked() {
    let p = Path::new("c.json");
    let ok = br#"{"version":1,"vault":{"server":"v.example.org","issuer":"igwn","token_ttl":"3d","token_minttl":3600}}"#;
    let o = section_of(ok, p).unwrap().unwrap();
    assert_eq!(o.issuer_name.as_deref(), Some("igwn"));
    assert_eq!(o.token_ttl, Some(Duration::from_secs(3 * 86400)));
    assert_eq!(o.token_minttl, Some(Duration::from_secs(3600)));
    assert!(section_of(br#"{"version":1,"client_id":"x"}"#, p)
        .unwrap()
        .is_none());
    let e = section_of(br#"{"version":1,"vault":{"sever":"x"}}"#, p).unwrap_err();
    assert!(e.message().contains("sever"), "{e}");
    assert!(section_of(br#"{"version":1,"vault":"x"}"#, p).is_err());
}
