//! Scrubbing: every secret value used for a call, and every injected value,
//! is replaced by `[REDACTED]` in the response headers (names and values),
//! body and error messages, wherever a reader could recover it.
//!
//! The search runs over the text as sent and over decoded views of it: every
//! sequence of up to [`MAX_DEPTH`] decoding steps, one [`Scheme`] each (JSON
//! and JavaScript string escapes, percent-escapes, HTML character
//! references, quoted-printable, line breaks removed), as a reader would
//! undo them one after another, and for deeper nesting up to
//! [`MAX_MIXED_DEPTH`] steps that undo all of them at once. So a secret an upstream reflects as
//! `\u0074oken`, `%74oken` or `&#116;oken`, partly escaped, nested (a JSON
//! escape, percent-encoded, inside HTML) or wrapped over lines is found where
//! the agent would read it, and the whole escaped span it came from is
//! replaced (a JSON document stays JSON). In each view it looks for the value
//! itself and for its encodings: base64 (standard and URL-safe, at every byte
//! alignment, so a secret inside a larger base64 blob such as a Basic
//! credential is found), hex, UTF-16 and form encoding, all ignoring ASCII
//! letter case. A body that is itself gzip, zlib or zstd data is inflated and
//! searched; if it holds a secret, or inflates past [`MAX_INFLATED`] so it
//! cannot be checked, the whole body is withheld (there is no redacting
//! inside compressed data).
//!
//! Responses are decompressed before scrubbing (egress owns Accept-Encoding).

mod decode;

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use memchr::memmem::Finder;

use crate::call::GuestResponse;
use decode::{Scheme, SourceMap};

const REDACTED: &[u8] = b"[REDACTED]";

/// Longest chain of one-scheme decoding steps a view is made of.
const MAX_DEPTH: usize = 2;

/// Longest chain of all-schemes-at-once steps (cheap, for deep nesting).
const MAX_MIXED_DEPTH: usize = 4;

/// Most decoded views per text.
const MAX_VIEWS: usize = 40;

/// Most bytes inflated from a compressed body to search it; a body that
/// inflates to more is withheld, since it cannot be checked.
const MAX_INFLATED: u64 = 64 << 20;

/// Shortest base64 fragment searched for on its own (shorter ones would
/// match by chance).
const MIN_BASE64_CORE: usize = 6;

/// Finds and redacts every form of a set of values (secrets and injected
/// values). Egress builds one per call; embedders may use it on text of
/// their own (logs, error reports) that may hold those values.
pub struct Scrubber {
    /// One finder per form of every value, ASCII-lower-cased: views are
    /// lower-cased before searching, which ignores letter case and keeps
    /// byte offsets. They build in nanoseconds (egress builds a scrubber
    /// per call) and each searches at several GB/s; a multi-pattern
    /// automaton took 30–200 µs to build and searched 15 times slower here.
    finders: Vec<Finder<'static>>,
    /// The longest form, in bytes.
    widest: usize,
}

impl Scrubber {
    /// A scrubber for `values` (empty ones are ignored).
    pub fn new<'a>(values: impl Iterator<Item = &'a str>) -> Scrubber {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for value in values.filter(|v| !v.is_empty()) {
            forms(value, &mut patterns);
        }
        patterns.iter_mut().for_each(|p| p.make_ascii_lowercase());
        patterns.sort();
        patterns.dedup();
        let widest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let finders = patterns.iter().map(|p| Finder::new(p).into_owned()).collect();
        Scrubber { finders, widest }
    }

    /// `text` with every form of every value replaced by `[REDACTED]`.
    pub fn scrub_text(&self, text: &str) -> String {
        match self.scrub_bytes(text.as_bytes()) {
            Some(scrubbed) => String::from_utf8_lossy(&scrubbed).into_owned(),
            None => text.to_owned(),
        }
    }

    /// Scrubs a response's body, header names and header values.
    pub fn scrub_response(&self, response: &mut GuestResponse) {
        if let Some(scrubbed) = self.scrub_bytes(&response.body) {
            response.body = scrubbed;
        }
        for (name, value) in &mut response.headers {
            *name = self.scrub_text(name);
            *value = self.scrub_text(value);
        }
    }

    /// The scrubbed bytes, or `None` when nothing had to change.
    pub fn scrub_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.finders.is_empty() {
            return None;
        }
        if self.withheld(bytes, 0) {
            return Some(REDACTED.to_vec());
        }
        let mut spans = self.spans(bytes);
        if spans.is_empty() {
            return None;
        }
        spans.sort_unstable();
        let mut out = Vec::with_capacity(bytes.len());
        let mut last = 0;
        for (start, end) in spans {
            if end <= last {
                continue;
            }
            out.extend_from_slice(&bytes[last..start.max(last)]);
            if start >= last {
                out.extend_from_slice(REDACTED);
            }
            last = end;
        }
        out.extend_from_slice(&bytes[last..]);
        Some(out)
    }

    /// Whether `bytes` (or what they inflate to) holds a value in any form,
    /// or cannot be checked (inflates past the limit).
    fn contains(&self, bytes: &[u8], depth: usize) -> bool {
        !self.spans(bytes).is_empty() || self.withheld(bytes, depth)
    }

    /// Whether `bytes` is compressed data to withhold whole: it inflates to
    /// text holding a value (compression nested up to three deep), or past
    /// the limit.
    fn withheld(&self, bytes: &[u8], depth: usize) -> bool {
        match inflate(bytes) {
            Some(Inflated::Whole(inflated)) => depth < 3 && self.contains(&inflated, depth + 1),
            Some(Inflated::TooLarge) => true,
            None => false,
        }
    }

    /// Every range of `bytes` that is, or decodes to, a form of a value.
    fn spans(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let mut search = Search { scrubber: self, maps: Vec::new(), seen: HashSet::new(), spans: Vec::new() };
        search.spans = self.find(bytes, 0, bytes.len());
        search.views(bytes, None, 1, &Scheme::SINGLE);
        search.views(bytes, None, 1, &[Scheme::Mixed]);
        search.spans
    }

    /// Where any form occurs in `view[from..to]`, letter case ignored.
    fn find(&self, view: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
        let lower = view[from..to].to_ascii_lowercase();
        let mut spans = Vec::new();
        for finder in &self.finders {
            let len = finder.needle().len();
            // Every occurrence, overlapping ones too: a span may start inside another.
            let mut at = 0;
            while let Some(found) = finder.find(&lower[at..]) {
                spans.push((from + at + found, from + at + found + len));
                at += found + 1;
            }
        }
        spans
    }
}

/// The decoded views of one text, made depth first (only the current chain's
/// bytes are held) and searched only where they differ from the view they
/// were decoded from: a match anywhere else is in that view too, and was
/// found there.
struct Search<'a> {
    scrubber: &'a Scrubber,
    /// Every view's map to the view it came from, and that view (`None`:
    /// the text as sent).
    maps: Vec<(SourceMap, Option<usize>)>,
    /// Views already made (by hash), so a chain that decodes to the same
    /// bytes another way is not searched twice.
    seen: HashSet<u64>,
    /// Ranges of the text as sent.
    spans: Vec<(usize, usize)>,
}

impl Search<'_> {
    /// Views of `input` by each of `schemes`, then of those by the same
    /// schemes, down to the scheme's depth limit.
    fn views(&mut self, input: &[u8], parent: Option<usize>, depth: usize, schemes: &[Scheme]) {
        for &scheme in schemes {
            if self.maps.len() >= MAX_VIEWS {
                return;
            }
            let Some((view, map)) = decode::unescape(input, scheme) else { continue };
            if !self.seen.insert(HASHER.with(|h| h.hash_one(&view))) {
                continue;
            }
            let found = self.near_changes(&view, &map);
            self.maps.push((map, parent));
            let index = self.maps.len() - 1;
            for span in found {
                let original = self.back(index, span);
                self.spans.push(original);
            }
            let limit = if scheme == Scheme::Mixed { MAX_MIXED_DEPTH } else { MAX_DEPTH };
            if depth < limit {
                self.views(&view, Some(index), depth + 1, schemes);
            }
        }
    }

    /// Matches in `view` that overlap a range `map` says was decoded.
    fn near_changes(&self, view: &[u8], map: &SourceMap) -> Vec<(usize, usize)> {
        let reach = self.scrubber.widest.saturating_sub(1);
        let mut found = Vec::new();
        let mut window: Option<(usize, usize)> = None;
        for (start, len) in map.changed() {
            let (from, to) = (start.saturating_sub(reach), (start + len + reach).min(view.len()));
            window = match window {
                Some((a, b)) if from <= b => Some((a, b.max(to))),
                Some((a, b)) => {
                    found.extend(self.scrubber.find(view, a, b));
                    Some((from, to))
                }
                None => Some((from, to)),
            };
        }
        if let Some((a, b)) = window {
            found.extend(self.scrubber.find(view, a, b));
        }
        found
    }

    /// A range of view `index`, mapped back through every step to the text as sent.
    fn back(&self, mut index: usize, (mut start, mut end): (usize, usize)) -> (usize, usize) {
        loop {
            let (map, parent) = &self.maps[index];
            (start, end) = map.map(start, end);
            match parent {
                Some(p) => index = *p,
                None => return (start, end),
            }
        }
    }
}

thread_local! {
    /// One hasher for view fingerprints (the seed only needs to be fixed per search).
    static HASHER: RandomState = RandomState::new();
}

/// The forms of `value` searched for: itself, its form encoding (`+` for
/// spaces), hex, UTF-16 (both byte orders), and base64 in both alphabets,
/// whole and as the run of characters it fixes at each of the three byte
/// alignments inside longer data.
fn forms(value: &str, out: &mut Vec<Vec<u8>>) {
    let bytes = value.as_bytes();
    out.push(bytes.to_vec());
    out.push(url::form_urlencoded::byte_serialize(bytes).collect::<String>().into_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]).collect());
    out.push(value.encode_utf16().flat_map(u16::to_le_bytes).collect());
    out.push(value.encode_utf16().flat_map(u16::to_be_bytes).collect());
    for (whole, engine) in [(&STANDARD_NO_PAD, &STANDARD), (&URL_SAFE_NO_PAD, &URL_SAFE)] {
        out.push(whole.encode(bytes).into_bytes());
        for offset in 0..3_usize {
            // Characters whose six bits all come from `value` when it starts
            // `offset` bytes into a 3-byte group.
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + bytes.len()) / 6;
            if end < first + MIN_BASE64_CORE {
                continue;
            }
            let mut padded = vec![0; offset];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            out.push(encoded.as_bytes()[first..end].to_vec());
        }
    }
}

/// What a compressed body inflates to.
enum Inflated {
    /// All of it (what was read before a format error counts).
    Whole(Vec<u8>),
    /// More than [`MAX_INFLATED`].
    TooLarge,
}

/// What a gzip, zlib or zstd body inflates to, or `None` when `bytes` is
/// not one of them.
fn inflate(bytes: &[u8]) -> Option<Inflated> {
    let zlib = bytes.len() >= 2 && bytes[0] & 0x0f == 8 && (u16::from(bytes[0]) << 8 | u16::from(bytes[1])) % 31 == 0;
    let reader: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else if zlib {
        Box::new(flate2::read::ZlibDecoder::new(bytes))
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(bytes).ok()?)
    } else {
        return None;
    };
    let mut out = Vec::new();
    let mut reader = reader.take(MAX_INFLATED + 1);
    let mut chunk = [0; 16 << 10];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    match out.len() as u64 {
        0 => None,
        n if n > MAX_INFLATED => Some(Inflated::TooLarge),
        _ => Some(Inflated::Whole(out)),
    }
}

#[cfg(test)]
mod tests;
