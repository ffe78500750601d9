//! TLS: a local HTTPS issuer with a CA made by the test. Trusted only through
//! --cafile or a hashed --capath (the /etc/grid-security/certificates layout);
//! wrong-host and expired certificates are refused.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use common::*;
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SanType,
};

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "robot-token test CA");
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A leaf for `names` (and 127.0.0.1 when `ip`), valid in the given years.
fn leaf(ca: &Ca, dir: &Path, name: &str, dns: &[&str], ip: bool, years: (i32, i32)) {
    let mut p =
        CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if ip {
        p.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
    p.not_before = date_time_ymd(years.0, 1, 1);
    p.not_after = date_time_ymd(years.1, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn https_issuer(dir: &Path, name: &str) -> Issuer {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    Issuer::start_with(&[
        "--https",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])
}

fn get(env: &Env, iss: &Issuer, extra: &[&str]) -> Output {
    let cred = env.write_private(
        "cred.json",
        &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
    );
    run(env
        .cmd()
        .args(["get", "-o", "bt", "--deadline", "10s", "-c"])
        .arg(&cred)
        .args(extra))
}

#[test]
fn https_issuer_needs_its_ca() {
    let env = Env::new();
    let ca = ca();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    leaf(&ca, &dir, "good", &["localhost"], true, (2020, 2099));
    let mut iss = https_issuer(&dir, "good");
    iss.trust(&ca.cert.pem());
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
    let out = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(&ca_file)
        .output()
        .expect("openssl is needed for the hashed CA directory test");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::fs::write(capath.join(format!("{hash}.0")), ca.cert.pem()).unwrap();
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
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "-c"])
        .arg(&cred)
        .env("X509_CERT_DIR", &capath));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn wrong_host_and_expired_certificates_are_refused() {
    let env = Env::new();
    let ca = ca();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    leaf(
        &ca,
        &dir,
        "wronghost",
        &["wrong.example.org"],
        false,
        (2020, 2099),
    );
    leaf(&ca, &dir, "expired", &["localhost"], true, (2019, 2020));
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
    let r = run(env
        .cmd()
        .args(["get", "-o", "bt", "--cafile"])
        .arg(&bogus)
        .arg("-c")
        .arg(&cred));
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains("holds no PEM certificate"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_fifo_in_the_capath_is_skipped_not_waited_on() {
    let env = Env::new();
    let ca = ca();
    let dir = env.path("pki");
    std::fs::create_dir(&dir).unwrap();
    leaf(&ca, &dir, "good", &["localhost"], true, (2020, 2099));
    let iss = https_issuer(&dir, "good");
    let capath = env.path("certificates");
    std::fs::create_dir(&capath).unwrap();
    std::fs::write(capath.join("ca.pem"), ca.cert.pem()).unwrap();
    // Named like a certificate, so it is one the loader would read.
    mkfifo(&capath.join("planted.pem"));
    let cred = env.write_private(
        "cred.json",
        &serde_json::json!({"version":1,"issuer":iss.url,"client_id":"robot-basic","client_secret":"robot-basic-secret"}).to_string(),
    );
    let r = run_within(
        env.cmd()
            .args(["get", "-o", "bt", "-c"])
            .arg(&cred)
            .arg("--capath")
            .arg(&capath),
        20,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(lifetime(&read(&env.path("bt"))) > 3000);
}
