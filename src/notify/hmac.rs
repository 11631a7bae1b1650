//! Signing webhook bodies and naming deliveries.
//!
//! `X-Gatehouse-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body
//! bytes under the channel's `token`, hex in lower case: the format of GitHub's
//! `X-Hub-Signature-256` and Flux's `generic-hmac` `X-Signature`, so receivers
//! written for those verify it unchanged (with the header name changed). The body
//! carries its delivery id and time, so a receiver that keeps the ids it has seen
//! also refuses a replayed request.
//!
//! ring is already the TLS crypto provider of the operator, so HMAC and SHA-256
//! come from it: no further cryptography crate.

use ring::{digest, hmac};

use crate::digest::hex;

/// The signature header of `webhook` channels.
pub const SIGNATURE_HEADER: &str = "x-gatehouse-signature";
/// The stable id of a delivery, the same on every attempt and after a restart.
pub const DELIVERY_HEADER: &str = "x-gatehouse-delivery";
/// The event's name.
pub const EVENT_HEADER: &str = "x-gatehouse-event";

const PREFIX: &str = "sha256=";

/// The header value for `body` under `key`: `sha256=<64 hex digits>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    format!("{PREFIX}{}", hex(hmac::sign(&key, body).as_ref()))
}

/// Whether `header` is the signature of `body` under `key` (compared in constant
/// time). What a receiver does; here for the tests and `notify test`.
pub fn verify(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(digits) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Some(tag) = unhex(digits) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, body, &tag).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The delivery id of one occurrence (`Event` or `Event/occurrence`) of an event
/// on the object `uid` to `channel`: 32 hex digits of SHA-256 over the three.
pub fn delivery_id(uid: &str, key: &str, channel: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [uid, key, channel] {
        ctx.update(part.as_bytes());
        // A separator no name contains: ("a", "bc") and ("ab", "c") differ.
        ctx.update(&[0]);
    }
    hex(&ctx.finish().as_ref()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"event":"Granted"}"#;
        let sig = sign(b"s3cret", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert!(verify(b"s3cret", body, &sig));
        assert!(!verify(b"other", body, &sig), "another key");
        assert!(
            !verify(b"s3cret", br#"{"event":"Revoked"}"#, &sig),
            "another body"
        );
        assert!(
            !verify(b"s3cret", body, &sig.replace("sha256=", "sha1=")),
            "another scheme"
        );
        assert!(!verify(b"s3cret", body, "sha256=zz"), "not hex");
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let a = delivery_id("uid-1", "Granted", "ops");
        assert_eq!(a, delivery_id("uid-1", "Granted", "ops"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, delivery_id("uid-1", "Expired", "ops"));
        assert_ne!(a, delivery_id("uid-1", "Granted", "sre"));
        assert_ne!(a, delivery_id("uid-2", "Granted", "ops"));
        assert_ne!(delivery_id("a", "bc", "x"), delivery_id("ab", "c", "x"));
    }
}
