//! Slack's request signature (v0): HMAC-SHA256 over `v0:{timestamp}:{body}` with the app's
//! signing secret, compared in constant time, the timestamp within five minutes ("Verifying
//! requests from Slack", docs.slack.dev); and a signature seen before refused as a replay.
//! It takes the raw bytes: nothing is parsed before it is verified.

use super::secret::SigningSecret;
use crate::encoding::percent_decode;
use hmac::{Hmac, Mac};
use std::collections::HashMap;
use std::sync::Mutex;

/// Slack's window for a request's timestamp.
pub const MAX_AGE_SECS: i64 = 300;

/// Why a request was refused before it was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No signature or timestamp header.
    Unsigned,
    /// The timestamp is more than five minutes off.
    Stale,
    /// The signature does not match.
    BadSignature,
    /// This signature was seen before.
    Replayed,
}

/// Checks Slack's v0 signature over the raw body (constant-time comparison).
pub fn verify(
    secret: &SigningSecret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), Rejected> {
    verify_within(secret, timestamp, body, signature, now, MAX_AGE_SECS)
}

pub fn verify_within(
    secret: &SigningSecret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
    max_age: i64,
) -> Result<(), Rejected> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Rejected::Unsigned)?;
    if (now - ts).abs() > max_age {
        return Err(Rejected::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(Rejected::BadSignature)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose())
        .map_err(|_| Rejected::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejected::BadSignature)
}

/// The signatures accepted in the last five minutes, per execution environment. The Justify
/// function may run in several at once, so a replay that reaches another one gets through this
/// check — and changes nothing: a trigger is good for three seconds, and the notifier posts a
/// justification once.
#[derive(Debug, Default)]
pub struct Replays(Mutex<HashMap<String, i64>>);

impl Replays {
    /// `true` the first time a signature is seen within its window.
    pub fn first_time(&self, signature: &str, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expires| *expires > now);
        if seen.contains_key(signature) {
            return false;
        }
        seen.insert(signature.to_string(), now + 2 * MAX_AGE_SECS);
        true
    }
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn good_bad_and_stale_signatures() {
        let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5");
        let body = "payload=%7B%22type%22%3A%22block_actions%22%7D";
        let good = sign("8f742231b10e8888abcd99yyyzzz85a5", "1700000000", body);
        assert_eq!(
            verify(&secret, "1700000000", body.as_bytes(), &good, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "1700000000", b"payload=x", &good, 1_700_000_100),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(&secret, "1700000000", body.as_bytes(), &good, 1_700_000_301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(
                &secret,
                "1700000000",
                body.as_bytes(),
                "v0=zz",
                1_700_000_000
            ),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(&secret, "", body.as_bytes(), &good, 1_700_000_000),
            Err(Rejected::Unsigned)
        );
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let replays = Replays::default();
        assert!(replays.first_time("v0=ab", 100));
        assert!(!replays.first_time("v0=ab", 200));
        assert!(
            replays.first_time("v0=ab", 100 + 2 * MAX_AGE_SECS + 1),
            "forgotten after the window"
        );
    }

    #[test]
    fn form_bodies_decode() {
        assert_eq!(
            form_field(b"a=1&payload=%7B%22x%22%3A+1%7D", "payload").as_deref(),
            Some("{\"x\": 1}")
        );
        assert_eq!(form_field(b"payload=%zz", "payload"), None);
    }
}
