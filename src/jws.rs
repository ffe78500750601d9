//! JWS signatures with `ring`: the crypto backend of `jsonwebtoken` for client
//! assertions (`assertion`) and `inspect --verify` (`verify`).
//!
//! jsonwebtoken's own backends are RustCrypto (whose `rsa` crate carries
//! RUSTSEC-2023-0071, a timing side channel in private-key operations) and aws-lc-rs
//! (a C/assembly build). ring is already linked through rustls, has constant-time
//! RSA, and builds with the C compiler any Rust toolchain on Debian has. jsonwebtoken
//! keeps doing the PEM, JWK and JWS framing; this module only signs and verifies.
//!
//! Asymmetric algorithms only: HMAC is never used here (a JWKS holds no shared
//! secrets, and a client assertion is signed with a private key).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};

/// Make ring jsonwebtoken's crypto backend for this process. Idempotent; call it
/// before any `jsonwebtoken` sign or verify (no backend feature is compiled in, so
/// jsonwebtoken would otherwise panic).
pub fn install() {
    // Err only means it is already installed: ours, since nothing else installs one.
    let _ = RING.install_default();
}

/// The provider: ring for RS*, PS*, ES256, ES384 and EdDSA.
pub static RING: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: rsa_components_from_public_key,
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: ed_components_from_private_key,
        compute_digest,
    },
};

fn rsa_signing(alg: Algorithm) -> Option<&'static dyn sig::RsaEncoding> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_SHA512,
        _ => return None,
    })
}

fn rsa_verification(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Some(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn ecdsa_verification(alg: Algorithm) -> Option<&'static sig::EcdsaVerificationAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
        _ => None,
    }
}

fn err(kind: ErrorKind) -> Error {
    Error::from(kind)
}

/// A parsed private key and what to sign with it.
enum Signing {
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

struct RingSigner {
    alg: Algorithm,
    key: Signing,
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            Signing::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
            Signing::Ecdsa(pair) => pair
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            Signing::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let alg = *alg;
    let der = key.as_bytes();
    let signing = match (key.family(), alg) {
        (AlgorithmFamily::Rsa, _) => {
            let encoding = rsa_signing(alg).ok_or_else(|| err(ErrorKind::InvalidAlgorithm))?;
            // jsonwebtoken hands over PKCS#1 (it unwraps PKCS#8 RSA keys itself).
            let pair = sig::RsaKeyPair::from_der(der)
                .map_err(|e| err(ErrorKind::InvalidRsaKey(e.to_string())))?;
            Signing::Rsa(pair, encoding)
        }
        (AlgorithmFamily::Ec, _) => {
            let curve = ecdsa_signing(alg).ok_or_else(|| err(ErrorKind::InvalidAlgorithm))?;
            // Fails for a key of the other curve: that is how ES256 and ES384 keys differ.
            let pair = sig::EcdsaKeyPair::from_pkcs8(curve, der, &SystemRandom::new())
                .map_err(|_| err(ErrorKind::InvalidEcdsaKey))?;
            Signing::Ecdsa(pair)
        }
        (AlgorithmFamily::Ed, Algorithm::EdDSA) => {
            // "maybe_unchecked": OpenSSL writes PKCS#8 v1, without the public key.
            let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| err(ErrorKind::InvalidEddsaKey))?;
            Signing::Ed25519(pair)
        }
        _ => return Err(err(ErrorKind::InvalidAlgorithm)),
    };
    Ok(Box::new(RingSigner { alg, key: signing }))
}

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let bad = |_| signature::Error::new();
        if let Some(params) = rsa_verification(self.alg) {
            return match self.key.kind() {
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    sig::RsaPublicKeyComponents { n, e }
                        .verify(params, msg, signature)
                        .map_err(bad)
                }
                DecodingKeyKind::SecretOrDer(der) => sig::UnparsedPublicKey::new(params, der)
                    .verify(msg, signature)
                    .map_err(bad),
            };
        }
        let DecodingKeyKind::SecretOrDer(public) = self.key.kind() else {
            return Err(signature::Error::new());
        };
        let algorithm: &dyn sig::VerificationAlgorithm = match self.alg {
            Algorithm::EdDSA => &sig::ED25519,
            alg => ecdsa_verification(alg).ok_or_else(signature::Error::new)?,
        };
        sig::UnparsedPublicKey::new(algorithm, public)
            .verify(msg, signature)
            .map_err(bad)
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family_fits = match key.family() {
        AlgorithmFamily::Rsa => rsa_verification(*alg).is_some(),
        AlgorithmFamily::Ec => ecdsa_verification(*alg).is_some(),
        AlgorithmFamily::Ed => *alg == Algorithm::EdDSA,
        AlgorithmFamily::Hmac => false,
    };
    if !family_fits {
        return Err(err(ErrorKind::InvalidAlgorithm));
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair =
        sig::RsaKeyPair::from_der(der).map_err(|e| err(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let c: sig::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok((c.n, c.e))
}

fn rsa_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    // ring parses RSA public keys only to verify with them; robot-token never builds
    // a JWK from a public PEM.
    Err(err(ErrorKind::InvalidKeyFormat))
}

fn ec_components_from_private_key(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (curve, len) = match alg {
        Algorithm::ES256 => (EllipticCurve::P256, 32),
        Algorithm::ES384 => (EllipticCurve::P384, 48),
        _ => return Err(err(ErrorKind::InvalidEcdsaKey)),
    };
    let signing = ecdsa_signing(alg).ok_or_else(|| err(ErrorKind::InvalidEcdsaKey))?;
    let pair = sig::EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| err(ErrorKind::InvalidEcdsaKey))?;
    match pair.public_key().as_ref() {
        [4, xy @ ..] if xy.len() == 2 * len => {
            let (x, y) = xy.split_at(len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(err(ErrorKind::InvalidEcdsaKey)),
    }
}

fn ed_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    match curve {
        EllipticCurve::Ed25519 => Ok(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| err(ErrorKind::InvalidEddsaKey))?
            .public_key()
            .as_ref()
            .to_vec()),
        _ => Err(err(ErrorKind::InvalidAlgorithm)),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(err(ErrorKind::InvalidAlgorithm)),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}
