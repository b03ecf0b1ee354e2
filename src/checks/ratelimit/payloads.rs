//! The payloads of the probes, as data generated from their families:
//! every channel a client might claim a tier through, and every
//! client-address header a proxy might trust. Each is one cheap request,
//! sent side by side with the others while the bucket is spent.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A probe's payload: what it tries, and the header that carries it (a
/// `cookie` joins the caller's own cookies in one `Cookie` header).
pub(super) type Payload = (String, &'static str, String);

/// The tiers above the callers' own, strongest first.
const CLAIMED: [&str; 2] = ["admin", "pro"];

/// Headers a Worker might read a tier from.
const TIER_HEADERS: [&str; 6] = [
    "x-user-tier",
    "x-tier",
    "x-plan",
    "x-role",
    "x-user-role",
    "x-ratelimit-tier",
];

/// Cookies a Worker might read a tier from.
const TIER_COOKIES: [&str; 4] = ["tier", "role", "plan", "user_tier"];

/// Claim names a token might carry a tier in.
const TIER_CLAIMS: [&str; 3] = ["tier", "role", "plan"];

/// Not the key of any target: a token signed with it is wrongly signed.
const WRONG_KEY: &[u8] = b"flareproof: not the target's signing key";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with `claims`: `alg` as given, signed with [`WRONG_KEY`] for
/// `HS256`, unsigned (an empty signature) otherwise.
fn jwt(alg: &str, claims: &serde_json::Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(serde_json::json!({ "alg": alg, "typ": "JWT" })
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = if alg == "HS256" {
        let mut mac = Hmac::<Sha256>::new_from_slice(WRONG_KEY).expect("HMAC takes any key");
        mac.update(signing_input.as_bytes());
        b64(&mac.finalize().into_bytes())
    } else {
        String::new()
    };
    format!("{signing_input}.{signature}")
}

/// Claims of a higher tier a client can make: each tier-like header with
/// each higher tier, each tier-like cookie, and tokens (unsigned with
/// `alg` `none` in its spellings, and `HS256` with a wrong key) carrying a
/// tier claim, as a Bearer token and as a cookie.
pub(super) fn tier_claims() -> Vec<Payload> {
    let mut out = Vec::new();
    for header in TIER_HEADERS {
        for tier in CLAIMED {
            out.push((
                format!("a {header}: {tier} header"),
                header,
                tier.to_owned(),
            ));
        }
    }
    for cookie in TIER_COOKIES {
        out.push((
            format!("a cookie {cookie}=admin"),
            "cookie",
            format!("{cookie}=admin"),
        ));
    }
    for claim in TIER_CLAIMS {
        let claims = serde_json::json!({ "sub": "flareproof", claim: "admin" });
        for alg in ["none", "None", "HS256"] {
            let how = if alg == "HS256" {
                "an HS256 JWT signed with a wrong key".to_owned()
            } else {
                format!("an unsigned JWT (alg {alg})")
            };
            let token = jwt(alg, &claims);
            out.push((
                format!("{how} with {claim} admin, as a Bearer token"),
                "authorization",
                format!("Bearer {token}"),
            ));
            if alg != "None" {
                out.push((
                    format!("{how} with {claim} admin, in a cookie `token`"),
                    "cookie",
                    format!("token={token}"),
                ));
            }
        }
    }
    out
}

/// Headers a proxy (or a Worker behind one) might take the client's
/// address from. `CF-Connecting-IP` is not among them: Cloudflare's edge
/// sets it and overwrites what a client sends.
const ADDRESS_HEADERS: [&str; 12] = [
    "x-forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "forwarded",
    "x-forwarded",
    "forwarded-for",
    "fastly-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
];

/// A documentation address (RFC 5737, RFC 3849) per probe, so that every
/// probe claims an address no other probe used: a Worker keyed on it sees a
/// fresh bucket each time.
fn address(i: usize, v6: bool) -> String {
    if v6 {
        format!("2001:db8::{:x}", i + 1)
    } else {
        let net = ["198.51.100", "203.0.113"][i % 2];
        format!("{net}.{}", 1 + (i * 7) % 250)
    }
}

/// The value of `header` claiming `addr`, in the header's own syntax
/// (RFC 7239 for `Forwarded`, an IPv6 node quoted and bracketed).
fn claim(header: &str, addr: &str) -> String {
    if header == "forwarded" {
        if addr.contains(':') {
            format!("for=\"[{addr}]\"")
        } else {
            format!("for={addr}")
        }
    } else {
        addr.to_owned()
    }
}

/// Client headers that must not choose the anonymous bucket: each header
/// with an IPv4 and an IPv6 address, and `X-Forwarded-For` as a list (the
/// leftmost entry is the one a naive parser takes).
pub(super) fn spoofed_addresses() -> Vec<Payload> {
    let mut out = Vec::new();
    let mut i = 0;
    for header in ADDRESS_HEADERS {
        for v6 in [false, true] {
            let value = claim(header, &address(i, v6));
            i += 1;
            out.push((format!("{header}: {value}"), header, value));
        }
    }
    let list = format!("{}, {}", address(i, false), address(i + 1, false));
    out.push((format!("x-forwarded-for: {list}"), "x-forwarded-for", list));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn claims_of(token: &str) -> (serde_json::Value, serde_json::Value, String) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let decode = |s: &str| -> serde_json::Value {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        (decode(parts[0]), decode(parts[1]), parts[2].to_owned())
    }

    #[test]
    fn tier_claims_cover_every_channel_and_are_distinct() {
        let all = tier_claims();
        let channels: BTreeSet<&str> = all.iter().map(|(_, h, _)| *h).collect();
        for want in ["x-user-tier", "x-role", "cookie", "authorization"] {
            assert!(channels.contains(want), "{want}: {channels:?}");
        }
        let distinct: BTreeSet<(&str, &str)> =
            all.iter().map(|(_, h, v)| (*h, v.as_str())).collect();
        assert_eq!(distinct.len(), all.len(), "duplicate payloads");
        let whats: BTreeSet<&str> = all.iter().map(|(w, ..)| w.as_str()).collect();
        assert_eq!(whats.len(), all.len(), "two payloads read alike");
        // Both higher tiers through the headers.
        assert!(all.iter().any(|(_, h, v)| *h == "x-tier" && v == "pro"));
    }

    #[test]
    fn tokens_carry_the_claim_unsigned_or_wrongly_signed() {
        let bearers: Vec<String> = tier_claims()
            .into_iter()
            .filter(|(_, h, _)| *h == "authorization")
            .map(|(_, _, v)| v.strip_prefix("Bearer ").unwrap().to_owned())
            .collect();
        assert_eq!(bearers.len(), TIER_CLAIMS.len() * 3);
        let mut algs = BTreeSet::new();
        for token in &bearers {
            let (header, claims, signature) = claims_of(token);
            let alg = header["alg"].as_str().unwrap().to_owned();
            assert!(
                TIER_CLAIMS.iter().any(|c| claims[*c] == "admin"),
                "{claims}"
            );
            if alg == "HS256" {
                // A real signature, of the right length, with the wrong key.
                assert_eq!(signature.len(), 43, "{token}");
            } else {
                assert!(signature.is_empty(), "{token}");
            }
            algs.insert(alg);
        }
        assert_eq!(algs, ["HS256", "None", "none"].map(str::to_owned).into());
    }

    #[test]
    fn every_spoofed_address_is_fresh_and_in_the_header_syntax() {
        let all = spoofed_addresses();
        let values: BTreeSet<&str> = all.iter().map(|(_, _, v)| v.as_str()).collect();
        assert_eq!(values.len(), all.len(), "an address is claimed twice");
        let headers: BTreeSet<&str> = all.iter().map(|(_, h, _)| *h).collect();
        assert_eq!(headers.len(), ADDRESS_HEADERS.len());
        assert!(!headers.contains("cf-connecting-ip"));
        for (_, header, value) in &all {
            if *header == "forwarded" {
                assert!(value.starts_with("for="), "{value}");
            } else {
                for addr in value.split(", ") {
                    assert!(addr.parse::<std::net::IpAddr>().is_ok(), "{value}");
                }
            }
        }
        assert!(all.iter().any(|(_, _, v)| v.contains("2001:db8::")));
        assert!(
            all.iter()
                .any(|(_, h, v)| *h == "x-forwarded-for" && v.contains(", "))
        );
    }
}
