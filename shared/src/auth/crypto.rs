//! jsonwebtoken's signatures on ring, the one cryptography library every hubbub binary already
//! links (rustls uses it for TLS and for certificate signatures).
//!
//! jsonwebtoken ships two backends: RustCrypto (the `rsa`, `p256`, `p384` and `ed25519-dalek`
//! crates, about 0.3 MB of each binary that verifies tokens) and aws-lc (a second TLS-grade C
//! library). Its [`CryptoProvider`] lets a program bring its own, so hubbub gives it ring:
//! RSA, ECDSA and Ed25519 verification are then code the binary carries anyway.
//!
//! [`install`] makes this provider the process's default; hubbub's key types call it before
//! they sign or verify, so nothing else needs to. Code that calls `jsonwebtoken::encode` or
//! `decode` with keys of its own (tests minting an external issuer's tokens) calls it first.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use ring::{digest, hmac};

/// The ring-backed provider: every algorithm jsonwebtoken knows, for signing and verifying.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: rsa_components_from_public_key,
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: ed_component_from_private_key,
        compute_digest,
    },
};

/// Makes [`PROVIDER`] the process's jsonwebtoken backend. Idempotent: jsonwebtoken keeps the
/// first provider installed, and this is the only one hubbub installs.
pub fn install() {
    // An `Err` means a provider is already installed: this one, by an earlier call.
    let _ = PROVIDER.install_default();
}

/// A verification key, prepared once per token check.
enum VerifyKey {
    Hmac(hmac::Key),
    /// DER or raw public key bytes for ring's parser (RSA `RSAPublicKey` DER, an uncompressed
    /// EC point, or an Ed25519 key).
    Public(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
    /// An RSA key given as modulus and exponent (a JWK).
    RsaComponents(&'static sig::RsaParameters, Vec<u8>, Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    key: VerifyKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match &self.key {
            VerifyKey::Hmac(key) => hmac::verify(key, msg, signature),
            VerifyKey::Public(alg, bytes) => {
                sig::UnparsedPublicKey::new(*alg, bytes).verify(msg, signature)
            }
            VerifyKey::RsaComponents(params, n, e) => {
                sig::RsaPublicKeyComponents { n, e }.verify(params, msg, signature)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The RSA verification parameters of an RS/PS algorithm. ring accepts 2,048- to 8,192-bit
/// moduli: smaller RSA keys are refused, as they should be.
fn rsa_params(algorithm: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn hmac_algorithm(algorithm: Algorithm) -> Option<hmac::Algorithm> {
    match algorithm {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let algorithm = *algorithm;
    // A key is only ever used with its own family: an RSA public key must never become an
    // HMAC secret (the classic algorithm-confusion forgery).
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let key = if let Some(alg) = hmac_algorithm(algorithm) {
        VerifyKey::Hmac(hmac::Key::new(alg, key.try_get_as_bytes()?))
    } else if let Some(params) = rsa_params(algorithm) {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => VerifyKey::Public(params, der.clone()),
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                VerifyKey::RsaComponents(params, n.clone(), e.clone())
            }
        }
    } else {
        let alg: &'static dyn sig::VerificationAlgorithm = match algorithm {
            Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &sig::ED25519,
            _ => return Err(ErrorKind::InvalidAlgorithm.into()),
        };
        VerifyKey::Public(alg, key.try_get_as_bytes()?.to_vec())
    };
    Ok(Box::new(RingVerifier { algorithm, key }))
}

/// A signing key, parsed once per token.
enum SignKey {
    Hmac(hmac::Key),
    Rsa(&'static dyn sig::RsaEncoding, sig::RsaKeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

struct RingSigner {
    algorithm: Algorithm,
    key: SignKey,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            SignKey::Hmac(key) => Ok(hmac::sign(key, msg).as_ref().to_vec()),
            SignKey::Rsa(encoding, pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
            SignKey::Ecdsa(pair) => pair
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            SignKey::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let bytes = key.as_bytes();
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let alg = hmac_algorithm(algorithm).ok_or(ErrorKind::InvalidAlgorithm)?;
            SignKey::Hmac(hmac::Key::new(alg, bytes))
        }
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            let encoding: &'static dyn sig::RsaEncoding = match algorithm {
                Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                _ => &sig::RSA_PKCS1_SHA512,
            };
            SignKey::Rsa(encoding, rsa_pair(bytes)?)
        }
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            let encoding: &'static dyn sig::RsaEncoding = match algorithm {
                Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                _ => &sig::RSA_PSS_SHA512,
            };
            SignKey::Rsa(encoding, rsa_pair(bytes)?)
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let alg = if algorithm == Algorithm::ES256 {
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            SignKey::Ecdsa(
                sig::EcdsaKeyPair::from_pkcs8(alg, bytes, &SystemRandom::new())
                    .map_err(|_| ErrorKind::InvalidEcdsaKey)?,
            )
        }
        Algorithm::EdDSA => SignKey::Ed25519(
            sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?,
        ),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingSigner { algorithm, key }))
}

/// An RSA private key as jsonwebtoken stores it: PKCS#1 DER (PKCS#8 is accepted too).
fn rsa_pair(der: &[u8]) -> Result<sig::RsaKeyPair> {
    sig::RsaKeyPair::from_der(der)
        .or_else(|_| sig::RsaKeyPair::from_pkcs8(der))
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
}

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsa_pair(der)?;
    let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

/// ring parses RSA public keys only while verifying, so a JWK cannot be built from a DER
/// public key; hubbub builds JWKs from modulus and exponent, or from a private key.
fn rsa_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidRsaKey("a JWK from a DER RSA public key is not supported".into()).into())
}

fn ec_components_from_private_key(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (alg, curve, coordinate_len) = match algorithm {
        Algorithm::ES256 => (
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8, &SystemRandom::new())
        .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    // An uncompressed point: 0x04, then x and y.
    match pair.public_key().as_ref().split_first() {
        Some((4, xy)) if xy.len() == 2 * coordinate_len => {
            let (x, y) = xy.split_at(coordinate_len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_component_from_private_key(pkcs8: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|_| ErrorKind::InvalidEddsaKey)?;
    Ok(pair.public_key().as_ref().to_vec())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde_json::{Value, json};

    fn claims() -> Value {
        json!({"sub": "u1", "exp": 4_000_000_000u64})
    }

    fn roundtrip(alg: Algorithm, enc: &EncodingKey, dec: &DecodingKey) -> Result<Value> {
        install();
        let token = encode(&Header::new(alg), &claims(), enc)?;
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        decode::<Value>(&token, dec, &validation).map(|d| d.claims)
    }

    #[test]
    fn hmac_tokens_verify_and_a_wrong_secret_does_not() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let enc = EncodingKey::from_secret(b"secret").expect("key");
            let ok = DecodingKey::from_secret(b"secret").expect("key");
            let wrong = DecodingKey::from_secret(b"secreT").expect("key");
            assert_eq!(roundtrip(alg, &enc, &ok).expect("verifies"), claims());
            let err = roundtrip(alg, &enc, &wrong).expect_err("wrong secret");
            assert_eq!(*err.kind(), ErrorKind::InvalidSignature, "{alg:?}");
        }
    }

    #[test]
    fn ecdsa_and_eddsa_sign_and_verify_through_jwk_components() {
        let rng = SystemRandom::new();
        let p256 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("p256");
        let enc = EncodingKey::from_ec_der(p256.as_ref());
        let (_, x, y) =
            ec_components_from_private_key(p256.as_ref(), Algorithm::ES256).expect("xy");
        let b64 = |b: &[u8]| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let dec = DecodingKey::from_ec_components(&b64(&x), &b64(&y)).expect("dec");
        assert_eq!(
            roundtrip(Algorithm::ES256, &enc, &dec).expect("es256"),
            claims()
        );

        let ed = sig::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519");
        let enc = EncodingKey::from_ed_der(ed.as_ref());
        let public =
            ed_component_from_private_key(ed.as_ref(), &EllipticCurve::Ed25519).expect("x");
        let dec = DecodingKey::from_ed_components(&b64(&public)).expect("dec");
        assert_eq!(
            roundtrip(Algorithm::EdDSA, &enc, &dec).expect("eddsa"),
            claims()
        );
    }

    #[test]
    fn a_key_of_another_family_is_refused_before_any_signature_check() {
        install();
        // An HMAC token whose "secret" is an EC public key's bytes: the confusion attack.
        let rng = SystemRandom::new();
        let p256 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("p256");
        let pair = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            p256.as_ref(),
            &rng,
        )
        .expect("pair");
        let public = pair.public_key().as_ref();
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(public).expect("key"),
        )
        .expect("sign");
        let dec = DecodingKey::from_ec_der(public);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        assert!(decode::<Value>(&forged, &dec, &validation).is_err());
        assert!(new_verifier(&Algorithm::HS256, &dec).is_err());
    }
}
