//! Signed attestations: the envelopes `verify --sign-key` writes check with
//! an implementation flareproof did not write (securesystemslib's DSSE, in a
//! Python virtual environment this test makes), over exactly the statement
//! written beside them; the verification summary has the SLSA VSA v1 shape;
//! an unusable key stops the run before it starts.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flareproof::cloudflare::standin::StandIn;

use crate::verify::{faithful, reference_verify_cli};

/// securesystemslib, pinned; installed once into `target/py-dsse` under a
/// file lock (as the fixtures' `npm ci`).
const SSLIB: &str = "securesystemslib==1.3.0";

fn python() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-dsse");
    let python = dir.join("bin/python");
    let stamp = dir.join(".installed");
    let ready = || std::fs::read_to_string(&stamp).is_ok_and(|s| s == SSLIB);
    if ready() {
        return python;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    if ready() {
        return python;
    }
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("python3 on PATH");
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3")
        .args(["-m", "venv", "--system-site-packages"])
        .arg(&dir));
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SSLIB,
        "cryptography",
    ]));
    std::fs::write(&stamp, SSLIB).unwrap();
    python
}

/// Checks `envelope` with securesystemslib against `public` (SPKI PEM):
/// the keyid is computed here from the key (SHA-256 of its DER), the
/// payload must equal `statement`. Returns whether it verified, and what
/// the checker said.
const CHECKER: &str = r#"
import hashlib, json, sys
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
envelope_path, public_path, scheme, statement_path = sys.argv[1:]
public = serialization.load_pem_public_key(open(public_path, "rb").read())
der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
keyid = hashlib.sha256(der).hexdigest()
key = SSlibKey.from_crypto(public, keyid=keyid, scheme=scheme)
data = json.load(open(envelope_path))
assert data["signatures"][0]["keyid"] == keyid, "keyid is not the SHA-256 of the SPKI DER"
envelope = Envelope.from_dict(data)
assert envelope.payload_type == "application/vnd.in-toto+json", envelope.payload_type
try:
    envelope.verify([key], 1)
except Exception as e:
    print("REJECTED", type(e).__name__, e)
    sys.exit(3)
assert envelope.payload == open(statement_path, "rb").read(), "the payload is not the statement written"
print("VERIFIED", keyid)
"#;

fn independent_check(
    envelope: &Path,
    public: &Path,
    scheme: &str,
    statement: &Path,
) -> (bool, String) {
    let out = Command::new(python())
        .arg("-c")
        .arg(CHECKER)
        .arg(envelope)
        .arg(public)
        .arg(scheme)
        .arg(statement)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, said),
        Some(3) => (false, said),
        _ => panic!("the checker itself failed: {said}"),
    }
}

/// A key pair made by openssl (not by flareproof): PKCS#8 private, SPKI
/// public.
fn openssl_key(dir: &Path, name: &str, genpkey: &[&str]) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = Command::new("openssl")
        .arg("genpkey")
        .args(genpkey)
        .arg("-out")
        .arg(&private)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(ok.success());
    (private, public)
}

fn flip_base64_byte(text: &str) -> String {
    let mut bytes = STANDARD.decode(text).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    STANDARD.encode(bytes)
}

#[test]
fn envelopes_signed_with_p256_and_ed25519_check_with_securesystemslib_and_a_flipped_byte_fails() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let base = standin.api_base().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let keys = [
        (
            "p256",
            vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ecdsa-sha2-nistp256",
        ),
        ("ed25519", vec!["-algorithm", "ed25519"], "ed25519"),
    ];
    for (name, genpkey, scheme) in keys {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (private, public) = openssl_key(&dir, name, &genpkey);
        // The key through the environment for one, a file for the other.
        let run = reference_verify_cli(&dir, &base, |c| {
            if name == "p256" {
                c.arg("--sign-key").arg(&private)
            } else {
                c.args(["--sign-key-env", "FP_TEST_SIGN_KEY"]).env(
                    "FP_TEST_SIGN_KEY",
                    std::fs::read_to_string(&private).unwrap(),
                )
            }
        });
        assert_eq!(
            run.output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.output.stderr)
        );
        let out = dir.join("out");
        for (envelope, statement) in [
            ("attestation.dsse.json", "attestation.json"),
            ("attestation.vsa.dsse.json", "attestation.vsa.json"),
        ] {
            let (envelope, statement) = (out.join(envelope), out.join(statement));
            let (ok, said) = independent_check(&envelope, &public, scheme, &statement);
            assert!(ok, "{name}: {said}");
            // A flipped byte in the payload, then in the signature.
            let good: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
            for field in ["payload", "sig"] {
                let mut bad = good.clone();
                let slot = if field == "payload" {
                    &mut bad["payload"]
                } else {
                    &mut bad["signatures"][0]["sig"]
                };
                *slot = flip_base64_byte(slot.as_str().unwrap()).into();
                let tampered = dir.join(format!("tampered-{field}.json"));
                std::fs::write(&tampered, serde_json::to_vec(&bad).unwrap()).unwrap();
                let (ok, said) = independent_check(&tampered, &public, scheme, &statement);
                assert!(
                    !ok,
                    "{name}: a flipped byte in {field} still verified: {said}"
                );
                assert!(said.contains("REJECTED"), "{said}");
            }
        }
        // No line of the private key in anything written or printed.
        let pem = std::fs::read_to_string(&private).unwrap();
        let mut texts = vec![
            String::from_utf8_lossy(&run.output.stdout).into_owned(),
            String::from_utf8_lossy(&run.output.stderr).into_owned(),
        ];
        for entry in std::fs::read_dir(&out).unwrap() {
            texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
        for line in flareproof::attestation::dsse::pem_secrets(&pem) {
            assert!(
                texts.iter().all(|t| !t.contains(&line)),
                "{name}: a key line was written"
            );
        }
    }
}

#[test]
fn the_verification_summary_has_the_slsa_vsa_v1_shape_and_names_what_was_verified() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let base = standin.api_base().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let run = reference_verify_cli(tmp.path(), &base, |c| c);
    assert_eq!(run.output.status.code(), Some(0));
    let out = tmp.path().join("out");
    let vsa_bytes = std::fs::read(out.join("attestation.vsa.json")).unwrap();
    let vsa: serde_json::Value = serde_json::from_slice(&vsa_bytes).unwrap();
    let schema: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/schemas/slsa-vsa-v1.schema.json"
    )))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&vsa).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{vsa:#}");
    let p = &vsa["predicate"];
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["verifiedLevels"], serde_json::json!([]));
    assert_eq!(
        p["verifier"]["version"]["flareproof"],
        env!("CARGO_PKG_VERSION")
    );
    let uri = p["resourceUri"].as_str().unwrap();
    let scenario = faithful();
    assert!(
        uri.starts_with(base.trim_end_matches('/'))
            && uri.contains(&format!(
                "/accounts/{}/workers/scripts/{}/deployments/",
                flareproof::testbench::demo::REFERENCE_ACCOUNT,
                scenario.script
            )),
        "{uri}"
    );
    assert!(
        p["policy"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("flarelink-auth/v1")
    );
    // The flareproof statement it summarises, by the digest of its bytes.
    use sha2::Digest as _;
    let attestation = std::fs::read(out.join("attestation.json")).unwrap();
    assert_eq!(
        p["inputAttestations"][0]["digest"]["sha256"],
        hex::encode(sha2::Sha256::digest(&attestation))
    );
    // The same subjects as flareproof's statement.
    let statement: serde_json::Value = serde_json::from_slice(&attestation).unwrap();
    assert_eq!(vsa["subject"], statement["subject"]);
    // The schema refuses what it must: a result other than PASSED/FAILED.
    let mut bad = vsa.clone();
    bad["predicate"]["verificationResult"] = "OK".into();
    assert!(!validator.is_valid(&bad));
    // Unsigned: no envelope without a key.
    assert!(!out.join("attestation.dsse.json").exists());
}

#[test]
fn an_unusable_signing_key_is_an_error_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (private, _) = openssl_key(dir, "k", &["-algorithm", "ed25519"]);
    let encrypted = dir.join("encrypted.pem");
    let ok = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:hunter2",
            "-in",
        ])
        .arg(&private)
        .arg("-out")
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(ok.success());
    let (rsa, _) = openssl_key(
        dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    );
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["--sign-key".into(), encrypted.into()],
            "passphrase-protected",
        ),
        (
            vec!["--sign-key".into(), rsa.into()],
            "RSA is not supported",
        ),
        (vec!["--sign-key".into(), garbage.into()], "garbage.pem"),
        (
            vec!["--sign-key".into(), dir.join("absent.pem").into()],
            "absent.pem",
        ),
        (
            vec!["--sign-key-env".into(), "FP_TEST_NO_SUCH_VAR".into()],
            "FP_TEST_NO_SUCH_VAR",
        ),
    ];
    // The API is unreachable and the config names a recipe that cannot
    // run: only the key check can end the run before they are tried.
    let config = dir.join("flareproof.toml");
    std::fs::write(&config, "[target]\nbase_url = \"http://127.0.0.1:9/\"\n").unwrap();
    for (args, says) in cases {
        let out = dir.join("out");
        let output = Command::new(env!("CARGO_BIN_EXE_flareproof"))
            .args(["verify", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(&args)
            .env_remove("FP_TEST_NO_SUCH_VAR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
        assert!(!out.exists(), "{args:?}: something was written");
    }
}
