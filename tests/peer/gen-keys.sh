#!/usr/bin/env bash
# Regenerates the fixed TEST-ONLY keys in keys/. They are committed; run this
# only if you really want new keys (every Rust fixture that embeds them then
# has to follow). Needs node and openssl.
set -euo pipefail
cd "$(dirname "$0")/keys"

node --input-type=module - <<'EOF'
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

function rsa(name, kid, alg = 'RS256') {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(`${name}.key.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(`${name}.pub.pem`, publicKey.export({ type: 'spki', format: 'pem' }));
  const pub = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const priv = { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  writeFileSync(`${name}.pub.jwk.json`, `${JSON.stringify(pub, null, 2)}\n`);
  writeFileSync(`${name}.jwk.json`, `${JSON.stringify(priv, null, 2)}\n`);
}

function ec(name, kid) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(`${name}.key.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(`${name}.pub.pem`, publicKey.export({ type: 'spki', format: 'pem' }));
  const pub = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  const priv = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  writeFileSync(`${name}.pub.jwk.json`, `${JSON.stringify(pub, null, 2)}\n`);
  writeFileSync(`${name}.jwk.json`, `${JSON.stringify(priv, null, 2)}\n`);
}

rsa('provider', 'robot-token-test-provider');
rsa('client-rsa', 'robot-pkjwt-rsa');
ec('client-ec', 'robot-pkjwt-ec');
rsa('ci', 'robot-token-test-ci');
EOF

# TLS for --https: a CA plus a leaf for 127.0.0.1/localhost signed by it
# (rustls/webpki refuse a CA certificate used directly as the server cert).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout tls-ca.key.pem -out tls-ca.pem -days 36500 \
  -subj "/CN=robot-token test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout tls.key.pem -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
cat > tls.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
openssl x509 -req -in tls.csr -CA tls-ca.pem -CAkey tls-ca.key.pem -CAcreateserial \
  -out tls.pem -days 36500 -extfile tls.ext 2>/dev/null
rm -f tls.csr tls.ext tls-ca.srl
ls -1
