//! Scrubbing: every secret value used for a call, and every injected value,
//! is replaced by `[REDACTED]` in the response headers and body and in error
//! messages, in the forms an upstream is likely to echo: raw, base64
//! (standard and URL-safe, padded or not), percent-encoded, and JSON-escaped.
//! Responses are decompressed before scrubbing (egress owns Accept-Encoding).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use memchr::memmem::Finder;

use crate::call::GuestResponse;

const REDACTED: &[u8] = b"[REDACTED]";

/// Finders for every form of every value, longest first so that a secret
/// inside a longer injected value is not replaced piecemeal. Built per call
/// (cheap: no automaton), used on a few small texts.
pub(crate) struct Scrubber {
    finders: Vec<Finder<'static>>,
}

impl Scrubber {
    pub fn new<'a>(values: impl Iterator<Item = &'a str>) -> Scrubber {
        let mut patterns: Vec<String> = Vec::new();
        for value in values.filter(|v| !v.is_empty()) {
            patterns.push(value.to_owned());
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                patterns.push(engine.encode(value));
            }
            patterns.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
            patterns.push(percent_encode_all(value));
            if let Ok(json) = serde_json::to_string(value) {
                patterns.push(json[1..json.len() - 1].to_owned());
            }
        }
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        Scrubber { finders: patterns.iter().map(|p| Finder::new(p.as_bytes()).into_owned()).collect() }
    }

    pub fn scrub_text(&self, text: &str) -> String {
        // Replacing whole UTF-8 patterns with ASCII keeps the text UTF-8.
        String::from_utf8_lossy(&self.scrub_bytes(text.as_bytes().to_vec())).into_owned()
    }

    pub fn scrub_response(&self, response: &mut GuestResponse) {
        response.body = self.scrub_bytes(std::mem::take(&mut response.body));
        for (_, value) in &mut response.headers {
            *value = self.scrub_text(value);
        }
    }

    fn scrub_bytes(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        for finder in &self.finders {
            if finder.find(&bytes).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut last = 0;
            for at in finder.find_iter(&bytes) {
                out.extend_from_slice(&bytes[last..at]);
                out.extend_from_slice(REDACTED);
                last = at + finder.needle().len();
            }
            out.extend_from_slice(&bytes[last..]);
            bytes = out;
        }
        bytes
    }
}

/// `%XX` for every byte that is not unreserved, upper-case hex.
fn percent_encode_all(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_raw_base64_url_and_json_escaped_forms() {
        let secret = "s3cr3t/+key=\"x\"";
        let scrubber = Scrubber::new([secret].into_iter());
        let echoed = format!(
            "raw {secret} b64 {} url {} pct {} json {}",
            STANDARD.encode(secret),
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            percent_encode_all(secret),
            serde_json::to_string(secret).unwrap()
        );
        let scrubbed = scrubber.scrub_text(&echoed);
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert!(!scrubbed.contains(&STANDARD_NO_PAD.encode(secret)), "{scrubbed}");
        assert_eq!(scrubbed.matches("[REDACTED]").count(), 5, "{scrubbed}");
    }

    #[test]
    fn a_secret_inside_a_longer_injected_value_goes_with_it() {
        let scrubber = Scrubber::new(["tok123", "Bearer tok123"].into_iter());
        assert_eq!(scrubber.scrub_text("a Bearer tok123 b tok123"), "a [REDACTED] b [REDACTED]");
    }

    #[test]
    fn scrubbing_nothing_leaves_text_alone() {
        assert_eq!(Scrubber::new(std::iter::empty()).scrub_text("abc"), "abc");
    }
}
