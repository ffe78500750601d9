//! The ring JWS backend (src/jws.rs) against an independent implementation: Node's
//! OpenSSL-backed `crypto` (the runtime of the test issuer). Node makes the keys and
//! signs a JWT with every algorithm `inspect --verify` accepts; robot-token must
//! verify each one and refuse it once altered. robot-token signs client assertions
//! with every key type it loads; Node must verify each one.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use robot_token::source::oauth::assertion::SigningKey;
use serde_json::{json, Value};

/// Run a Node script with `input` on stdin; its stdout is JSON.
fn node(script: &str, input: &Value) -> Value {
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (installed by scripts/install-peers.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const KEYS_AND_TOKENS: &str = r#"
const c = require('node:crypto');
const b64 = (b) => Buffer.from(b).toString('base64url');
const rsa = c.generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = c.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = c.generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ed = c.generateKeyPairSync('ed25519');
const pss = { padding: c.constants.RSA_PKCS1_PSS_PADDING, saltLength: c.constants.RSA_PSS_SALTLEN_DIGEST };
const algs = {
  RS256: [rsa, 'sha256', {}], RS384: [rsa, 'sha384', {}], RS512: [rsa, 'sha512', {}],
  PS256: [rsa, 'sha256', pss], PS384: [rsa, 'sha384', pss], PS512: [rsa, 'sha512', pss],
  ES256: [p256, 'sha256', { dsaEncoding: 'ieee-p1363' }],
  ES384: [p384, 'sha384', { dsaEncoding: 'ieee-p1363' }],
  EdDSA: [ed, null, {}],
};
const tokens = Object.entries(algs).map(([alg, [kp, hash, opts]]) => {
  const input = `${b64(JSON.stringify({ alg, typ: 'JWT', kid: alg }))}.${b64(JSON.stringify({ iss: 'node', alg }))}`;
  const sig = c.sign(hash, Buffer.from(input), { key: kp.privateKey, ...opts });
  return { alg, jwk: { ...kp.publicKey.export({ format: 'jwk' }), kid: alg }, jwt: `${input}.${b64(sig)}` };
});
const pem = (k, type) => k.privateKey.export({ type, format: 'pem' });
const keys = [
  { name: 'rsa-pkcs8', alg: 'RS256', pem: pem(rsa, 'pkcs8'), jwk: rsa.publicKey.export({ format: 'jwk' }) },
  { name: 'rsa-pkcs1', alg: 'RS256', pem: pem(rsa, 'pkcs1'), jwk: rsa.publicKey.export({ format: 'jwk' }) },
  { name: 'p256', alg: 'ES256', pem: pem(p256, 'pkcs8'), jwk: p256.publicKey.export({ format: 'jwk' }) },
  { name: 'p384', alg: 'ES384', pem: pem(p384, 'pkcs8'), jwk: p384.publicKey.export({ format: 'jwk' }) },
  { name: 'ed25519', alg: 'EdDSA', pem: pem(ed, 'pkcs8'), jwk: ed.publicKey.export({ format: 'jwk' }) },
];
process.stdout.write(JSON.stringify({ tokens, keys }));
"#;

const VERIFY: &str = r#"
const c = require('node:crypto');
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(({ alg, jwk, jwt }) => {
    const [h, p, s] = jwt.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const key = c.createPublicKey({ key: jwk, format: 'jwk' });
    const hash = { RS256: 'sha256', ES256: 'sha256', ES384: 'sha384', EdDSA: null }[alg];
    const opts = alg.startsWith('ES') ? { dsaEncoding: 'ieee-p1363' } : {};
    const ok = header.alg === alg &&
      c.verify(hash, Buffer.from(`${h}.${p}`), { key, ...opts }, Buffer.from(s, 'base64url'));
    return { alg, ok, claims: JSON.parse(Buffer.from(p, 'base64url')) };
  });
  process.stdout.write(JSON.stringify(out));
});
"#;

fn verifies(jwt: &str, alg: Algorithm, jwk: &Value) -> bool {
    robot_token::jws::install();
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let (message, signature) = jwt.rsplit_once('.').unwrap();
    jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg).unwrap_or(false)
}

#[test]
fn every_algorithm_interoperates_with_node_crypto() {
    let made = node(KEYS_AND_TOKENS, &json!(null));

    // Verification: every JWS algorithm inspect --verify accepts.
    let tokens = made["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 9);
    for t in tokens {
        let name = t["alg"].as_str().unwrap();
        let alg: Algorithm = name.parse().unwrap();
        let jwt = t["jwt"].as_str().unwrap();
        assert!(verifies(jwt, alg, &t["jwk"]), "{name}: Node's signature");
        // Altered claims, and the right key with the wrong algorithm, fail.
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        assert!(!verifies(&forged, alg, &t["jwk"]), "{name}: altered token");
        let other = match alg {
            Algorithm::RS256 => Algorithm::PS256,
            Algorithm::ES256 => Algorithm::ES384,
            _ => Algorithm::RS256,
        };
        assert!(!verifies(jwt, other, &t["jwk"]), "{name} as {other:?}");
    }

    // Signing: every private key type a client assertion can use.
    let env = Env::new();
    let mut signed = Vec::new();
    for k in made["keys"].as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        let path = env.path(&format!("{name}.pem"));
        std::fs::write(&path, k["pem"].as_str().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key =
            SigningKey::load(&path, Some("kid-1".into())).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = k["alg"].as_str().unwrap();
        assert_eq!(format!("{:?}", key.algorithm()), want, "{name}");
        let jwt = key.assertion("robot", "https://iss.example/token").unwrap();
        // Our own verifier agrees with Node on our signatures too.
        assert!(verifies(jwt.expose(), key.algorithm(), &k["jwk"]), "{name}");
        signed.push(json!({"alg": want, "jwk": k["jwk"], "jwt": jwt.expose()}));
    }
    let checked = node(VERIFY, &Value::Array(signed));
    for r in checked.as_array().unwrap() {
        assert_eq!(r["ok"], true, "Node rejects our {} assertion", r["alg"]);
        assert_eq!(r["claims"]["aud"], "https://iss.example/token");
        assert_eq!(r["claims"]["sub"], "robot");
    }
    assert_eq!(checked.as_array().unwrap().len(), 5);
}

#[test]
fn rsa_is_not_in_the_dependency_tree() {
    // RUSTSEC-2023-0071: the `rsa` crate must not come back through a feature flag.
    let lock = std::fs::read_to_string(manifest_dir().join("Cargo.lock")).unwrap();
    assert!(
        !lock.lines().any(|l| l.trim() == "name = \"rsa\""),
        "the rsa crate is back in Cargo.lock"
    );
}
