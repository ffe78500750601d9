//! TLS: a local HTTPS issuer with a CA made by the test. Trusted only through
//! --cafile or a hashed --capath (the /etc/grid-security/certificates layout);
//! wrong-host and expired certificates are refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::tls::TestCa;
use common::*;

fn https_issuer(dir: &Path, name: &str) -> Issuer {
    Issuer::start_https(
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
        &[],
    )
}

fn get(env: &Env, iss: &Issuer, extra: &[&str]) -> Output {
    let cred = env.write_private(
        "cred.json",
        &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
    );
    env.get("bt", &cred)
        .args(["--deadline", "10s"])
        .args(extra)
        .run()
}

#[test]
fn https_issuer_needs_its_ca() {
    let env = Env::new();
    let ca = TestCa::new();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    ca.leaf(&dir, "good", &["localhost"], true, Some((2020, 2099)));
    let mut iss = https_issuer(&dir, "good");
    iss.trust(&ca.pem());
    assert!(iss.url.starts_with("https://127.0.0.1:"));

    let r = get(&env, &iss, &[]);
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains("TLS certificate not accepted") && r.stderr.contains("--cafile"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(
        iss.requests("discovery"),
        0,
        "the handshake failed before any request"
    );

    let ca_file = dir.join("ca.pem");
    let r = get(&env, &iss, &["--cafile", ca_file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("bt"))) > 3000);

    // The grid CA layout: <hash>.0 files beside CRLs, signing policies and namespaces.
    let capath = env.path("certificates");
    std::fs::create_dir(&capath).unwrap();
    let out = output_of(
        Command::new("openssl")
            .stdin(Stdio::null())
            .args(["x509", "-hash", "-noout", "-in"])
            .arg(&ca_file),
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::fs::write(capath.join(format!("{hash}.0")), ca.pem()).unwrap();
    std::fs::write(capath.join(format!("{hash}.r0")), "not a certificate").unwrap();
    std::fs::write(
        capath.join(format!("{hash}.signing_policy")),
        "access_id_CA X509 '/CN=x'",
    )
    .unwrap();
    std::fs::remove_file(env.path("bt")).unwrap();
    let r = get(&env, &iss, &["--capath", capath.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // X509_CERT_DIR is the default --capath.
    std::fs::remove_file(env.path("bt")).unwrap();
    let cred = env.path("cred.json");
    let r = env.get("bt", &cred).env("X509_CERT_DIR", &capath).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn wrong_host_and_expired_certificates_are_refused() {
    let env = Env::new();
    let ca = TestCa::new();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    ca.leaf(
        &dir,
        "wronghost",
        &["wrong.example.org"],
        false,
        Some((2020, 2099)),
    );
    ca.leaf(&dir, "expired", &["localhost"], true, Some((2019, 2020)));
    let ca_file = dir.join("ca.pem");
    for (name, words) in [
        ("wronghost", "not valid for name"),
        ("expired", "certificate expired"),
    ] {
        let iss = https_issuer(&dir, name);
        let r = get(&env, &iss, &["--cafile", ca_file.to_str().unwrap()]);
        assert_eq!(r.code, 78, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(words), "{name}: {}", r.stderr);
        assert!(!env.path("bt").exists());
    }
}

#[test]
fn a_cafile_without_certificates_is_a_configuration_error() {
    let env = Env::new();
    let bogus = env.write_private("bogus.pem", "not pem");
    let cred = env.write_private(
        "cred.json",
        r#"{"version":1,"issuer":"https://127.0.0.1:9","client_id":"x"}"#,
    );
    let r = env.get("bt", &cred).arg("--cafile").arg(&bogus).run();
    assert_exit(&r, 78, "holds no PEM certificate");
}

#[test]
fn a_fifo_in_the_capath_is_skipped_not_waited_on() {
    let env = Env::new();
    let ca = TestCa::new();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    ca.leaf(&dir, "good", &["localhost"], true, Some((2020, 2099)));
    let iss = https_issuer(&dir, "good");
    let capath = env.path("certificates");
    std::fs::create_dir(&capath).unwrap();
    std::fs::write(capath.join("ca.pem"), ca.pem()).unwrap();
    // Named like a certificate, so it is one the loader would read.
    mkfifo(&capath.join("planted.pem"));
    let cred = env.write_private(
        "cred.json",
        &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
    );
    let r = env
        .get("bt", &cred)
        .arg("--capath")
        .arg(&capath)
        .run_within(20);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("bt"))) > 3000);
}
