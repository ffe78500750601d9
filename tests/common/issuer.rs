//! The test issuer: a real `oidc-provider` (tests/peer/issuer.mjs) on 127.0.0.1, over
//! http, or https with a certificate of tests/peer/keys or of a test's own CA.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};

use serde_json::{json, Value};

use super::{manifest_dir, spawn_peer, SCOPE};

/// The keys and certificates of tests/peer/keys: `tls.pem` (valid for localhost and
/// 127.0.0.1) and its CA `tls-ca.pem`, the client keys, the CI key.
pub fn test_keys() -> PathBuf {
    manifest_dir().join("tests/peer/keys")
}

/// The test CA of tests/peer/keys, whose `tls.pem` is valid for localhost.
pub fn test_ca() -> PathBuf {
    test_keys().join("tls-ca.pem")
}

/// A running test issuer. Killed on drop; it also exits when our end of its stdin closes.
pub struct Issuer {
    child: Child,
    _stdin: ChildStdin,
    pub url: String,
    agent: ureq::Agent,
}

impl Issuer {
    pub fn start() -> Issuer {
        Issuer::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Issuer {
        let peer = manifest_dir().join("tests/peer");
        assert!(
            peer.join("node_modules").is_dir(),
            "the test issuer is not installed: run `npm ci --prefix tests/peer` (scripts/test.sh does)"
        );
        let mut cmd = Command::new("node");
        cmd.arg(peer.join("issuer.mjs"))
            .args(["--port", "0"])
            .args(args);
        let (child, stdin, ready) = spawn_peer(&mut cmd, "node tests/peer/issuer.mjs");
        let stdin = stdin.unwrap();
        let url = ready["issuer"].as_str().unwrap().to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Issuer {
            child,
            _stdin: stdin,
            url,
            agent,
        }
    }

    /// The issuer over https with this certificate and key (PEM files), plus `args`.
    /// The caller says which CA this side trusts ([`Issuer::trust`]).
    pub fn start_https(cert: &Path, key: &Path, args: &[&str]) -> Issuer {
        let mut all = vec![
            "--https",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        Issuer::start_with(&all)
    }

    /// The issuer over https with the certificate of tests/peer/keys, trusted here
    /// (robot-token trusts it only with `--cafile` [`test_ca`]).
    pub fn start_https_test_ca() -> Issuer {
        let keys = test_keys();
        let mut iss = Issuer::start_https(&keys.join("tls.pem"), &keys.join("tls.key.pem"), &[]);
        iss.trust(&std::fs::read_to_string(test_ca()).unwrap());
        iss
    }

    /// Talk to an https issuer whose certificate chains to `ca_pem`.
    pub fn trust(&mut self, ca_pem: &str) {
        let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                ca,
            ])))
            .build();
        self.agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let mut r = self
            .agent
            .post(&format!("{}{}", self.url, path))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn get(&self, path: &str) -> Value {
        let mut r = self
            .agent
            .get(&format!("{}{}", self.url, path))
            .call()
            .unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Requests that reached the issuer, by endpoint: discovery, token, jwks, device.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.get("/__test/stats")["requests"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    /// Token requests of one grant since the last reset (`refresh_token`,
    /// `client_credentials`, `token_exchange`, `device_code`).
    pub fn grants(&self, grant: &str) -> u64 {
        self.get("/__test/stats")["grants"][grant]
            .as_u64()
            .unwrap_or(0)
    }

    /// Refresh-token requests since the last reset that presented a refresh token
    /// the issuer had seen before: a replay, which revokes the whole family.
    pub fn refresh_reused(&self) -> u64 {
        self.get("/__test/stats")["refresh_reused"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Zero the counters, and drop the faults and device-flow knobs.
    pub fn reset(&self) {
        self.post("/__test/reset", json!({}));
    }

    /// A real grant at the issuer: returns (refresh_token, access_token).
    pub fn mint(&self, client_id: &str, scope: &str, audience: Option<&str>) -> (String, String) {
        let mut body = json!({"client_id": client_id, "scope": scope});
        if let Some(a) = audience {
            body["audience"] = json!(a);
        }
        let v = self.post("/__test/mint", body);
        (
            v["refresh_token"]
                .as_str()
                .expect("mint refresh_token")
                .to_string(),
            v["access_token"]
                .as_str()
                .expect("mint access_token")
                .to_string(),
        )
    }

    /// A live refresh token of `client`, for [`SCOPE`].
    pub fn refresh_token(&self, client: &str) -> String {
        self.mint(client, SCOPE, None).0
    }

    /// A correctly signed access token that has already expired.
    pub fn mint_expired(&self) -> String {
        let v = self.post(
            "/__test/mint",
            json!({"client_id": "robot-basic", "scope": "openid offline_access storage.read:/", "expired": true}),
        );
        v["access_token"].as_str().unwrap().to_string()
    }

    /// A JWT of exactly these claims signed by the issuer's `key` ("provider", in its
    /// JWKS, or "ci", not in it); the issuer adds iat and exp when they are missing.
    pub fn sign(&self, key: &str, claims: Value) -> String {
        self.post("/__test/sign", json!({"key": key, "claims": claims}))["jwt"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// [`Issuer::sign`] with the provider's key, adding nothing to `claims`.
    pub fn sign_raw(&self, claims: Value) -> String {
        self.post(
            "/__test/sign",
            json!({"key": "provider", "claims": claims, "raw": true}),
        )["jwt"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn fault(&self, spec: Value) {
        self.post("/__test/fault", spec);
    }

    /// The device-flow knobs (`interval`, `slow_down_once`, `expires_in`, `answer`,
    /// `decorate`); the issuer must take them.
    pub fn device(&self, knobs: Value) {
        let v = self.post("/__test/device", knobs);
        assert_eq!(v["ok"], true, "{v}");
    }

    /// Redeem a refresh token directly, as an attacker or a second client would.
    pub fn refresh_status(&self, client_id: &str, secret: &str, rt: &str) -> (u16, Value) {
        let meta = self.get("/.well-known/openid-configuration");
        let ep = meta["token_endpoint"].as_str().unwrap();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", rt)
            .append_pair("client_id", client_id)
            .append_pair("client_secret", secret)
            .finish();
        let mut r = self
            .agent
            .post(ep)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A URL on 127.0.0.1 where nothing listens (a port that was free a moment ago): an
/// issuer or a proxy that is down.
pub fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}
