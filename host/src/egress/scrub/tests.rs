//! The scrubber against each way an upstream can hand a secret back.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use super::*;

const SECRET: &str = "s3cr3t/+Key=\"x\"_0123456789";

fn scrubbed(text: &str) -> String {
    Scrubber::new([SECRET].into_iter()).scrub_text(text)
}

#[track_caller]
fn assert_hidden(reflected: &str) {
    let out = scrubbed(&format!("before {reflected} after"));
    assert!(out.contains("[REDACTED]"), "not redacted: {out}");
    assert!(out.starts_with("before ") && out.ends_with(" after"), "redacted too much: {out}");
    for fragment in ["s3cr3t", "S3CR3T", "0123456789", "Key="] {
        assert!(!out.contains(fragment), "{fragment} left in {out}");
    }
}

fn escape_every_char(text: &str, escape: impl Fn(char) -> String) -> String {
    text.chars().map(escape).collect()
}

#[test]
fn hides_the_raw_value_in_any_letter_case() {
    assert_hidden(SECRET);
    assert_hidden(&SECRET.to_uppercase());
    assert_hidden(&SECRET.to_lowercase());
}

#[test]
fn hides_json_escapes_of_every_kind() {
    let json = serde_json::to_string(SECRET).unwrap();
    assert_hidden(&json[1..json.len() - 1]);
    assert_hidden(&escape_every_char(SECRET, |c| format!("\\u{:04x}", c as u32)));
    assert_hidden(&escape_every_char(SECRET, |c| format!("\\u{:04X}", c as u32)));
    // Only some characters escaped, `/` as `\/`, JavaScript's \x and \u{…}.
    assert_hidden(&SECRET.replace('s', "\\u0073").replace('/', "\\/").replace('"', "\\\""));
    assert_hidden(&escape_every_char(SECRET, |c| format!("\\x{:02x}", c as u32)));
    assert_hidden(&escape_every_char(SECRET, |c| format!("\\u{{{:x}}}", c as u32)));
}

#[test]
fn a_json_document_stays_json_and_its_strings_hold_no_secret() {
    let escaped = escape_every_char(SECRET, |c| format!("\\u{:04x}", c as u32));
    let document = format!(r#"{{"headers": {{"authorization": "Bearer {escaped}"}}, "n": 1}}"#);
    let out = scrubbed(&document);
    let value: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    let text = value.to_string();
    assert!(!text.contains("s3cr3t") && !text.contains("0123456789"), "{text}");
    assert_eq!(value["n"], 1);
}

#[test]
fn hides_percent_encodings_in_either_case_and_partial() {
    let upper = escape_every_char(SECRET, |c| format!("%{:02X}", c as u32));
    assert_hidden(&upper);
    assert_hidden(&upper.to_lowercase());
    assert_hidden(&url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>());
    assert_hidden(&SECRET.replace('3', "%33").replace('/', "%2f"));
    assert_hidden(&escape_every_char(SECRET, |c| format!("%u{:04X}", c as u32)));
}

#[test]
fn hides_html_and_xml_character_references() {
    assert_hidden(&escape_every_char(SECRET, |c| format!("&#{};", c as u32)));
    assert_hidden(&escape_every_char(SECRET, |c| format!("&#x{:x};", c as u32)));
    assert_hidden(&escape_every_char(SECRET, |c| format!("&#{}", c as u32)));
    assert_hidden(&SECRET.replace('"', "&quot;").replace('/', "&sol;").replace('=', "&equals;"));
}

#[test]
fn hides_quoted_printable() {
    assert_hidden(&escape_every_char(SECRET, |c| format!("={:02X}", c as u32)));
}

#[test]
fn hides_nested_encodings() {
    // A JSON escape, percent-encoded; an HTML page quoting a JSON escape.
    let json = escape_every_char(SECRET, |c| format!("\\u{:04x}", c as u32));
    assert_hidden(&url::form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>());
    assert_hidden(&json.replace('\\', "&#92;"));
    // An escaped backslash before an escape: JSON.parse leaves `\u0073`, which reads as `s`.
    assert_hidden(&SECRET.replace('s', "\\\\u0073"));
}

#[test]
fn hides_base64_whole_and_inside_longer_data_at_every_alignment() {
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        assert_hidden(&engine.encode(SECRET));
        for prefix in ["", "u", "us", "user:", "Basic x", "ab"] {
            for suffix in ["", "!", "?!", "\n\n\n"] {
                let blob = engine.encode(format!("{prefix}{SECRET}{suffix}"));
                let out = scrubbed(&blob);
                let decoded = engine.decode(out.replace("[REDACTED]", "").as_bytes()).unwrap_or_default();
                let decoded = String::from_utf8_lossy(&decoded);
                assert!(out.contains("[REDACTED]"), "{prefix:?}+{suffix:?}: {out}");
                assert!(!decoded.contains("0123456789") && !decoded.contains("s3cr3t"), "{decoded}");
            }
        }
    }
}

#[test]
fn hides_hex_and_utf16() {
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    assert_hidden(&hex);
    assert_hidden(&hex.to_uppercase());
    let utf16le: Vec<u8> = SECRET.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = SECRET.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let scrubber = Scrubber::new([SECRET].into_iter());
    for encoded in [utf16le, utf16be] {
        let out = scrubber.scrub_bytes(&encoded).expect("found");
        assert_eq!(out, b"[REDACTED]");
    }
}

#[test]
fn withholds_a_compressed_body_that_holds_a_secret() {
    let scrubber = Scrubber::new([SECRET].into_iter());
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let zlib = |data: &[u8]| {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let body = format!("echo: Authorization: Bearer {SECRET}");
    for compressed in [
        gzip(body.as_bytes()),
        zlib(body.as_bytes()),
        zstd::encode_all(body.as_bytes(), 3).unwrap(),
        gzip(&gzip(body.as_bytes())),
        gzip(serde_json::to_string(&escape_every_char(SECRET, |c| format!("\\u{:04x}", c as u32))).unwrap().as_bytes()),
    ] {
        assert_eq!(scrubber.scrub_bytes(&compressed).as_deref(), Some(&b"[REDACTED]"[..]));
    }
    let harmless = gzip(b"nothing to see");
    assert_eq!(scrubber.scrub_bytes(&harmless), None, "compressed data without a secret is left alone");
}

#[test]
fn leaves_text_without_a_secret_alone_even_with_escapes() {
    let text = r#"{"url": "https:\/\/example.com\/a?b=1&amp;c=%20", "s": "caf\u00e9 &#233; =C3=A9"}"#;
    assert_eq!(scrubbed(text), text);
    assert_eq!(Scrubber::new(std::iter::empty()).scrub_text("abc"), "abc");
}

#[test]
fn a_secret_inside_a_longer_injected_value_goes_with_it() {
    let scrubber = Scrubber::new(["tok123", "Bearer tok123"].into_iter());
    assert_eq!(scrubber.scrub_text("a Bearer tok123 b tok123"), "a [REDACTED] b [REDACTED]");
}

#[test]
fn header_names_are_scrubbed_too() {
    let scrubber = Scrubber::new([SECRET].into_iter());
    let mut response = GuestResponse {
        status: 200,
        headers: vec![(format!("x-{}", SECRET.to_lowercase()), "1".into()), ("x-echo".into(), SECRET.into())],
        body: Vec::new(),
    };
    scrubber.scrub_response(&mut response);
    for (name, value) in &response.headers {
        assert!(!name.contains("s3cr3t") && !value.contains("s3cr3t"), "{name}: {value}");
    }
}

/// Escapes a reader leaves alone must not hide a secret from the views that
/// decode the others (one scheme per step, never a mixed pass).
#[test]
fn an_escape_of_one_scheme_next_to_a_secret_does_not_hide_it() {
    let cases = [
        // Python's quote: `=AB` is not quoted-printable here.
        ("AB3x/yz+Q9kLmN0p", "https://h/cb?key=AB3x/yz%2BQ9kLmN0p"),
        // PHP's json_encode escapes `/`.
        ("AB12/cd34+ef56", r#"{"url":"https:\/\/h\/cb?key=AB12\/cd34+ef56"}"#),
        // A secret holding `%41`, reflected by Go's JSON encoder.
        ("p%41ss&word", r#"{"v":"p%41ss\u0026word"}"#),
        ("pass=12word&x", r#"{"v":"pass=12word\u0026x"}"#),
        // Text the agent controls just before the reflection.
        ("41b2c/d3e4f5g6", r#"bad %41b2c\/d3e4f5g6"#),
        ("deadbeef/abc123", r#"&#xdeadbeef\/abc123"#),
    ];
    for (secret, reflected) in cases {
        let out = Scrubber::new([secret].into_iter()).scrub_text(reflected);
        assert!(out.contains("[REDACTED]"), "{secret} in {reflected}: {out}");
        // What a reader gets by decoding what is left.
        let json: String = serde_json::from_str::<serde_json::Value>(&out)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| out.replace("\\/", "/"));
        let percent: String = url::form_urlencoded::parse(format!("v={}", json.replace('+', "%2B")).as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect();
        assert!(!json.contains(secret) && !percent.contains(secret), "{secret} in {reflected}: {out}");
    }
}

#[test]
fn hides_base64_wrapped_over_lines_and_quoted_printable_soft_breaks() {
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzABCD";
    let blob = STANDARD.encode(format!("GET / HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n"));
    let wrapped: Vec<String> = blob.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    for text in [wrapped.join("\n"), wrapped.join("\r\n"), serde_json::to_string(&wrapped.join("\n")).unwrap()] {
        let out = Scrubber::new([token].into_iter()).scrub_text(&text);
        let decoded = STANDARD.decode(out.replace("[REDACTED]", "").replace(['\r', '\n', '"'], "").replace("\\n", ""));
        let decoded = String::from_utf8_lossy(&decoded.unwrap_or_default()).into_owned();
        assert!(out.contains("[REDACTED]") && !decoded.contains(token), "{out}");
    }
    let qp = format!("x {}=\r\n{} y", &token[..18], &token[18..]);
    let out = Scrubber::new([token].into_iter()).scrub_text(&qp);
    assert!(!out.replace("=\r\n", "").contains(token), "{out}");
}

#[test]
fn withholds_a_compressed_body_too_large_to_check() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..(MAX_INFLATED >> 20) {
        encoder.write_all(&spaces).unwrap();
    }
    encoder.write_all(SECRET.as_bytes()).unwrap();
    let bomb = encoder.finish().unwrap();
    let scrubber = Scrubber::new([SECRET].into_iter());
    assert_eq!(scrubber.scrub_bytes(&bomb).as_deref(), Some(&b"[REDACTED]"[..]));
}

#[test]
fn never_panics_on_arbitrary_text_and_secrets() {
    // A small deterministic generator over the characters escapes are made of.
    let alphabet = b"\\u{}xX0123456789abcdefABCDEF%&#;=\r\n/+_-.\"' amp;quotlt";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..3000 {
        let text: Vec<u8> = (0..next(80)).map(|_| alphabet[next(alphabet.len())]).collect();
        let secret: String = (0..1 + next(12)).map(|_| alphabet[next(alphabet.len())] as char).collect();
        let mut with_secret = text.clone();
        with_secret.extend_from_slice(secret.as_bytes());
        let scrubber = Scrubber::new([secret.as_str()].into_iter());
        let _ = scrubber.scrub_bytes(&text);
        let out = scrubber.scrub_bytes(&with_secret).expect("the raw secret is always found");
        assert!(out.ends_with(b"[REDACTED]"), "{:?}", String::from_utf8_lossy(&out));
    }
}
