//! DSSE (Dead Simple Signing Envelope) around an in-toto statement, signed
//! with an ECDSA P-256 or Ed25519 key.
//!
//! What is signed is the DSSE pre-authentication encoding
//! ([`pae`]) of the payload type and the payload bytes, exactly as
//! <https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>
//! defines it. ECDSA signatures are ASN.1 DER over SHA-256 (what
//! securesystemslib, cosign and in-toto produce and expect); Ed25519 ones are
//! the 64 raw bytes. A signature's `keyid` is the hex SHA-256 of the signer's
//! public key in SubjectPublicKeyInfo DER form: anyone holding the public
//! key computes the same id.
//!
//! Keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) for signing and SPKI
//! PEM (`-----BEGIN PUBLIC KEY-----`) for verifying, parsed by the RustCrypto
//! `pkcs8`/`spki` crates; an encrypted (passphrase-protected) key, a SEC1 or
//! OpenSSH key, or another algorithm is a [`KeyError`] saying so. No error
//! quotes key material.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use pkcs8::{EncodePublicKey as _, LineEnding, ObjectIdentifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The largest envelope [`Envelope::parse`] reads.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024 * 1024;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope as JSON: `payload` (base64), `payloadType`, `signatures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The hex SHA-256 of the signer's SPKI DER public key (a hint only:
    /// the signature is what is checked).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

/// Why an envelope does not check.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("read the envelope: it is {0} bytes, more than the {MAX_ENVELOPE_BYTES} read")]
    TooLarge(usize),
    #[error(
        "read the envelope: it is not a DSSE envelope (JSON with payload, payloadType, signatures)"
    )]
    Shape(#[source] serde_json::Error),
    #[error("read the envelope: its payload is not base64")]
    PayloadEncoding,
    #[error("check the envelope: it has no signature")]
    Unsigned,
    #[error(
        "check the envelope: no signature checks with the key {keyid} ({count} signature(s): {why})"
    )]
    BadSignature {
        keyid: String,
        count: usize,
        why: String,
    },
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("read the key {what}: it is not PEM (expected `-----BEGIN {expected}-----`)")]
    NotPem {
        what: String,
        expected: &'static str,
    },
    #[error(
        "read the key {what}: it is passphrase-protected (ENCRYPTED PRIVATE KEY); flareproof \
         signs with an unencrypted PKCS#8 key (keep it in a secret store or an environment \
         variable instead)"
    )]
    Encrypted { what: String },
    #[error(
        "read the key {what}: it is a `{label}` PEM, not PKCS#8 (`PRIVATE KEY`); convert it \
         with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    NotPkcs8 { what: String, label: String },
    #[error("read the key {what}: it is a `{label}` PEM; expected `{expected}`")]
    WrongLabel {
        what: String,
        label: String,
        expected: &'static str,
    },
    #[error(
        "read the key {what}: its algorithm {algorithm} is not supported (ECDSA P-256 or Ed25519)"
    )]
    Unsupported { what: String, algorithm: String },
    #[error("read the key {what}: {problem}")]
    Malformed { what: String, problem: String },
}

/// A private key that signs envelopes.
pub enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    // Never the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {})", self.algorithm(), self.keyid())
    }
}

/// A public key that checks envelopes.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The one label a PEM document carries, or why it is not one.
fn pem_label<'a>(pem: &'a str, what: &str, expected: &'static str) -> Result<&'a str, KeyError> {
    let not_pem = || KeyError::NotPem {
        what: what.to_owned(),
        expected,
    };
    let begin = pem.find("-----BEGIN ").ok_or_else(not_pem)?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let end = rest.find("-----").ok_or_else(not_pem)?;
    let label = &rest[..end];
    if label.len() > 64 || !label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') {
        return Err(not_pem());
    }
    Ok(label)
}

fn malformed(what: &str, problem: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        what: what.to_owned(),
        problem: problem.to_string(),
    }
}

fn unsupported(
    what: &str,
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> KeyError {
    let name = match (algorithm.to_string().as_str(), curve.map(|c| c.to_string())) {
        ("1.2.840.113549.1.1.1", _) => "RSA".to_owned(),
        ("1.2.840.10045.2.1", Some(c)) => format!("ECDSA on curve {c}"),
        ("1.3.101.113", _) => "Ed448".to_owned(),
        (oid, _) => oid.to_owned(),
    };
    KeyError::Unsupported {
        what: what.to_owned(),
        algorithm: name,
    }
}

/// The two key algorithms flareproof signs and checks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    P256,
    Ed25519,
}

/// Which of them a key's algorithm identifier names (a private key's and a
/// public key's carry the same one), or why neither.
fn algorithm(what: &str, id: &spki::AlgorithmIdentifierRef<'_>) -> Result<Algorithm, KeyError> {
    let oid = id.oid;
    let curve = id
        .parameters_oid()
        .ok()
        .filter(|_| oid == OID_EC_PUBLIC_KEY);
    if oid == OID_EC_PUBLIC_KEY && curve == Some(OID_P256) {
        Ok(Algorithm::P256)
    } else if oid == OID_ED25519 {
        Ok(Algorithm::Ed25519)
    } else {
        Err(unsupported(what, oid, curve))
    }
}

impl SigningKey {
    /// Parses an unencrypted PKCS#8 PEM private key; `what` names where it
    /// came from (a path, an environment variable) in errors.
    pub fn from_pkcs8_pem(pem: &str, what: &str) -> Result<SigningKey, KeyError> {
        const EXPECTED: &str = "PRIVATE KEY";
        match pem_label(pem, what, EXPECTED)? {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError::Encrypted {
                    what: what.to_owned(),
                });
            }
            label @ ("EC PRIVATE KEY" | "RSA PRIVATE KEY" | "OPENSSH PRIVATE KEY") => {
                return Err(KeyError::NotPkcs8 {
                    what: what.to_owned(),
                    label: label.to_owned(),
                });
            }
            label => {
                return Err(KeyError::WrongLabel {
                    what: what.to_owned(),
                    label: label.to_owned(),
                    expected: EXPECTED,
                });
            }
        }
        let (_, doc) =
            pkcs8::SecretDocument::from_pem(pem.trim()).map_err(|e| malformed(what, e))?;
        let info =
            pkcs8::PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| malformed(what, e))?;
        match algorithm(what, &info.algorithm)? {
            Algorithm::P256 => {
                p256::ecdsa::SigningKey::from_pkcs8_der(doc.as_bytes()).map(SigningKey::P256)
            }
            Algorithm::Ed25519 => {
                ed25519_dalek::SigningKey::from_pkcs8_der(doc.as_bytes()).map(SigningKey::Ed25519)
            }
        }
        .map_err(|e| malformed(what, e))
    }

    /// A new random P-256 key.
    pub fn generate_p256() -> SigningKey {
        SigningKey::P256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    /// A new random Ed25519 key.
    pub fn generate_ed25519() -> SigningKey {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key as unencrypted PKCS#8 PEM (for a key flareproof generated).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        match self {
            SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .expect("a generated key always encodes")
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::P256(k) => VerifyingKey::P256(*k.verifying_key()),
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
        }
    }

    pub fn public_key_pem(&self) -> String {
        self.verifying_key().to_pem()
    }

    pub fn keyid(&self) -> String {
        self.verifying_key().keyid()
    }

    pub fn algorithm(&self) -> &'static str {
        self.verifying_key().algorithm()
    }

    /// Signs `payload` of `payload_type`: an envelope with one signature.
    pub fn sign(&self, payload_type: &str, payload: &[u8]) -> Envelope {
        use signature::Signer as _;
        let message = pae(payload_type, payload);
        let sig = match self {
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(&message);
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => k.sign(&message).to_bytes().to_vec(),
        };
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![Signature {
                keyid: self.keyid(),
                sig: STANDARD.encode(sig),
            }],
        }
    }

    /// Signs an in-toto statement's exact bytes.
    pub fn sign_statement(&self, statement: &[u8]) -> Envelope {
        self.sign(PAYLOAD_TYPE, statement)
    }
}

impl VerifyingKey {
    /// Parses an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str, what: &str) -> Result<VerifyingKey, KeyError> {
        const EXPECTED: &str = "PUBLIC KEY";
        match pem_label(pem, what, EXPECTED)? {
            "PUBLIC KEY" => {}
            label => {
                return Err(KeyError::WrongLabel {
                    what: what.to_owned(),
                    label: label.to_owned(),
                    expected: EXPECTED,
                });
            }
        }
        let (_, doc) = pkcs8::Document::from_pem(pem.trim()).map_err(|e| malformed(what, e))?;
        let info = spki::SubjectPublicKeyInfoRef::from_der(doc.as_bytes())
            .map_err(|e| malformed(what, e))?;
        match algorithm(what, &info.algorithm)? {
            Algorithm::P256 => p256::ecdsa::VerifyingKey::from_public_key_der(doc.as_bytes())
                .map(VerifyingKey::P256),
            Algorithm::Ed25519 => ed25519_dalek::VerifyingKey::from_public_key_der(doc.as_bytes())
                .map(VerifyingKey::Ed25519),
        }
        .map_err(|e| malformed(what, e))
    }

    fn to_der(&self) -> Vec<u8> {
        match self {
            VerifyingKey::P256(k) => k.to_public_key_der(),
            VerifyingKey::Ed25519(k) => k.to_public_key_der(),
        }
        .expect("a public key always encodes")
        .into_vec()
    }

    pub fn to_pem(&self) -> String {
        match self {
            VerifyingKey::P256(k) => k.to_public_key_pem(LineEnding::LF),
            VerifyingKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .expect("a public key always encodes")
    }

    /// The hex SHA-256 of the SPKI DER public key.
    pub fn keyid(&self) -> String {
        hex::encode(Sha256::digest(self.to_der()))
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            VerifyingKey::P256(_) => "ecdsa-p256-sha256",
            VerifyingKey::Ed25519(_) => "ed25519",
        }
    }

    /// Whether `sig` is this key's signature of `message`; why not if not.
    fn check(&self, message: &[u8], sig: &[u8]) -> Result<(), String> {
        use signature::Verifier as _;
        match self {
            VerifyingKey::P256(k) => {
                let sig = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| "not an ASN.1 DER ECDSA signature".to_owned())?;
                k.verify(message, &sig)
                    .map_err(|_| "the ECDSA signature does not verify".to_owned())
            }
            VerifyingKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| "not a 64-byte Ed25519 signature".to_owned())?;
                k.verify_strict(message, &sig)
                    .map_err(|_| "the Ed25519 signature does not verify".to_owned())
            }
        }
    }
}

/// Decodes base64 in either alphabet, padded or not (DSSE allows both).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

impl Envelope {
    /// Parses an envelope's JSON (bounded).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, DsseError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DsseError::TooLarge(bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(DsseError::Shape)
    }

    /// Pretty JSON with a trailing newline.
    pub fn render(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("an envelope always serializes");
        bytes.push(b'\n');
        bytes
    }

    /// The payload bytes, once a signature by `key` checks over the PAE of
    /// this envelope's payload type and payload. A signature whose keyid
    /// names another key is not tried.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, DsseError> {
        let payload = decode_base64(&self.payload).ok_or(DsseError::PayloadEncoding)?;
        if self.signatures.is_empty() {
            return Err(DsseError::Unsigned);
        }
        let keyid = key.keyid();
        let message = pae(&self.payload_type, &payload);
        let mut why = Vec::new();
        for signature in &self.signatures {
            if !signature.keyid.is_empty() && signature.keyid != keyid {
                why.push("keyid names another key".to_owned());
                continue;
            }
            let Some(sig) = decode_base64(&signature.sig) else {
                why.push("sig is not base64".to_owned());
                continue;
            };
            match key.check(&message, &sig) {
                Ok(()) => return Ok(payload),
                Err(e) => why.push(e),
            }
        }
        Err(DsseError::BadSignature {
            keyid,
            count: self.signatures.len(),
            why: why.join("; "),
        })
    }
}

/// The base64 body lines of a PEM document (each long enough to be
/// specific), for a redactor to learn: a key must never be printed.
pub fn pem_secrets(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

/// A short human name for a key in errors and output: its algorithm and
/// the first 16 hex digits of its keyid.
pub fn describe(key: &VerifyingKey) -> String {
    format!("{} {}", key.algorithm(), &key.keyid()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_dsse_encoding() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn both_algorithms_sign_and_verify_and_round_trip_through_pem() {
        for key in [SigningKey::generate_p256(), SigningKey::generate_ed25519()] {
            let pem = key.to_pkcs8_pem();
            let again = SigningKey::from_pkcs8_pem(&pem, "test").unwrap();
            assert_eq!(again.keyid(), key.keyid());
            let public = VerifyingKey::from_public_key_pem(&key.public_key_pem(), "pub").unwrap();
            assert_eq!(public.keyid(), key.keyid());
            let envelope = again.sign_statement(b"{\"a\":1}\n");
            let parsed = Envelope::parse(&envelope.render()).unwrap();
            assert_eq!(parsed.verify(&public).unwrap(), b"{\"a\":1}\n");
        }
    }

    #[test]
    fn a_flipped_byte_in_payload_type_payload_or_signature_fails() {
        for key in [SigningKey::generate_p256(), SigningKey::generate_ed25519()] {
            let public = key.verifying_key();
            let good = key.sign_statement(b"statement bytes");
            let mut bad = good.clone();
            bad.payload = STANDARD.encode(b"statement bytez");
            assert!(matches!(
                bad.verify(&public),
                Err(DsseError::BadSignature { .. })
            ));
            let mut bad = good.clone();
            bad.payload_type.push('x');
            assert!(bad.verify(&public).is_err());
            let mut sig = STANDARD.decode(&good.signatures[0].sig).unwrap();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            let mut bad = good.clone();
            bad.signatures[0].sig = STANDARD.encode(sig);
            assert!(bad.verify(&public).is_err());
            let other = SigningKey::generate_ed25519().verifying_key();
            let err = good.verify(&other).unwrap_err().to_string();
            assert!(err.contains("another key"), "{err}");
            let mut bad = good.clone();
            bad.signatures.clear();
            assert!(matches!(bad.verify(&public), Err(DsseError::Unsigned)));
        }
    }

    #[test]
    fn unusable_keys_are_errors_saying_why_without_key_material() {
        let key = SigningKey::generate_p256();
        let pem = key.to_pkcs8_pem();
        let encrypted = pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        let cases: Vec<(String, &str)> = vec![
            ("not a key".into(), "not PEM"),
            (encrypted, "passphrase-protected"),
            (pem.replace("PRIVATE KEY", "EC PRIVATE KEY"), "not PKCS#8"),
            (key.public_key_pem(), "`PUBLIC KEY` PEM"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
                "read the key",
            ),
        ];
        for (text, says) in cases {
            let err = SigningKey::from_pkcs8_pem(&text, "k.pem")
                .unwrap_err()
                .to_string();
            assert!(err.contains(says) && err.contains("k.pem"), "{err}");
            for secret in pem_secrets(&pem) {
                assert!(!err.contains(&secret), "{err}");
            }
        }
        // An RSA PKCS#8 key (1024-bit, generated for this test only).
        let rsa = include_str!("testdata/rsa-pkcs8.pem");
        let err = SigningKey::from_pkcs8_pem(rsa, "rsa.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("RSA is not supported"), "{err}");
        let err = VerifyingKey::from_public_key_pem(&pem, "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected `PUBLIC KEY`"), "{err}");
    }

    #[test]
    fn malformed_envelopes_are_errors_never_panics() {
        for bytes in [
            &b""[..],
            b"{}",
            b"[]",
            b"{\"payload\":\"***\",\"payloadType\":\"x\",\"signatures\":[]}",
            b"{\"payload\":1}",
        ] {
            let key = SigningKey::generate_ed25519().verifying_key();
            if let Ok(e) = Envelope::parse(bytes) {
                assert!(e.verify(&key).is_err());
            }
        }
        let key = SigningKey::generate_ed25519();
        let mut e = key.sign_statement(b"x");
        e.signatures[0].sig = "***".into();
        assert!(e.verify(&key.verifying_key()).is_err());
    }
}
