//! Scrubbing: every secret value used for a call, and every injected value,
//! is replaced by `[REDACTED]` in the response headers and body and in error
//! messages, in the forms an upstream is likely to echo: raw, base64
//! (standard and URL-safe, padded or not), percent-encoded, and JSON-escaped.
//! Responses are decompressed before scrubbing (egress owns Accept-Encoding).

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::call::GuestResponse;

const REDACTED: &str = "[REDACTED]";

pub(crate) struct Scrubber {
    matcher: Option<AhoCorasick>,
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
        patterns.sort();
        patterns.dedup();
        // Longest first, so a secret inside a longer injected value is not
        // replaced piecemeal.
        let matcher = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&patterns).ok();
        Scrubber { matcher: matcher.filter(|_| !patterns.is_empty()) }
    }

    pub fn scrub_text(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) => m.replace_all(text, &vec![REDACTED; m.patterns_len()]),
            None => text.to_owned(),
        }
    }

    pub fn scrub_response(&self, response: &mut GuestResponse) {
        let Some(m) = &self.matcher else { return };
        let replacements = vec![REDACTED.as_bytes(); m.patterns_len()];
        response.body = m.replace_all_bytes(&response.body, &replacements);
        for (_, value) in &mut response.headers {
            *value = self.scrub_text(value);
        }
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
        assert_eq!(scrubbed.matches(REDACTED).count(), 5, "{scrubbed}");
    }

    #[test]
    fn scrubbing_nothing_leaves_text_alone() {
        assert_eq!(Scrubber::new(std::iter::empty()).scrub_text("abc"), "abc");
    }
}
