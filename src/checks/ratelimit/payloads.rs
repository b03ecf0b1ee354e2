//! The payloads of the probes, as data: every way a client might claim a
//! tier, and every client-address header a proxy might trust.

use base64::Engine;

/// Claims of a higher tier a client can make.
pub(super) fn tier_claims() -> Vec<(&'static str, &'static str, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(br#"{"sub":"flareproof","tier":"admin"}"#)
    );
    vec![
        (
            "an X-User-Tier: admin header",
            "x-user-tier",
            "admin".to_owned(),
        ),
        (
            "an X-User-Tier: pro header",
            "x-user-tier",
            "pro".to_owned(),
        ),
        (
            "an unsigned JWT with tier admin",
            "authorization",
            format!("Bearer {jwt}"),
        ),
    ]
}

/// Client headers that must not choose the anonymous bucket.
pub(super) fn spoofed_addresses() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "X-Forwarded-For: 198.51.100.7",
            "x-forwarded-for",
            "198.51.100.7".to_owned(),
        ),
        (
            "X-Forwarded-For: 203.0.113.9",
            "x-forwarded-for",
            "203.0.113.9".to_owned(),
        ),
        (
            "X-Real-IP: 198.51.100.23",
            "x-real-ip",
            "198.51.100.23".to_owned(),
        ),
        (
            "True-Client-IP: 203.0.113.41",
            "true-client-ip",
            "203.0.113.41".to_owned(),
        ),
    ]
}
