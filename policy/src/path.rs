//! Request paths in normal form.
//!
//! A path is accepted only if it has exactly one spelling, so what the rules
//! match is what the upstream server sees. The normal form is: `/` alone, or
//! `/`-separated non-empty segments where each byte is an unreserved or
//! sub-delimiter character other than `;` (`A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , = : @`),
//! and everything else is percent-encoded UTF-8 with upper-case hex. Refused
//! as ambiguous: `.` and `..` segments, empty segments (`//`, a trailing `/`),
//! encoded `/` `\` `.` `%` (double encoding), needlessly encoded characters,
//! lower-case hex, backslashes, `;` path parameters, `?` and `#`, control
//! characters, raw non-ASCII, invalid UTF-8, decoded text that Unicode NFKC
//! normalisation would change (full-width forms, `‥`, `℅`, ligatures: some
//! servers normalise, turning them into `..` or `/`), look-alikes of
//! `/` `\` `.` `%` that NFKC keeps, and control and invisible (format) characters.

use smallvec::SmallVec;
use unicode_normalization::is_nfkc;

/// Longest accepted path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// The segments of a normal-form path (still percent-encoded).
pub type Segments<'a> = SmallVec<[&'a str; 12]>;

/// Splits a path into its segments if it is in normal form; otherwise says
/// why it is ambiguous, in words safe to show an agent.
pub fn segments(path: &str) -> Result<Segments<'_>, &'static str> {
    if path.len() > MAX_PATH_BYTES {
        return Err("is longer than 4096 bytes");
    }
    let rest = path.strip_prefix('/').ok_or("must start with '/'")?;
    let mut out = Segments::new();
    if rest.is_empty() {
        return Ok(out);
    }
    for segment in rest.split('/') {
        check_segment(segment)?;
        out.push(segment);
    }
    Ok(out)
}

/// Checks one segment; also used for literal glob segments.
pub(crate) fn check_segment(segment: &str) -> Result<(), &'static str> {
    match segment {
        "" => return Err("has an empty segment ('//' or a trailing '/')"),
        "." | ".." => return Err("has a '.' or '..' segment"),
        _ => {}
    }
    let bytes = segment.as_bytes();
    let mut decoded: SmallVec<[u8; 32]> = SmallVec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (bytes.get(i + 1).and_then(|&h| hex(h)), bytes.get(i + 2).and_then(|&l| hex(l)))
            else {
                return Err("has a malformed percent-escape ('%' not followed by two upper-case hex digits)");
            };
            let d = hi << 4 | lo;
            match d {
                b'/' => return Err("has an encoded '/' (%2F)"),
                b'\\' => return Err("has an encoded '\\' (%5C)"),
                b'.' => return Err("has an encoded '.' (%2E)"),
                b'%' => return Err("is double-encoded (%25)"),
                0..=0x1f | 0x7f => return Err("has an encoded control character"),
                _ if is_raw(d) => return Err("encodes a character that must be written as itself"),
                _ => decoded.push(d),
            }
            i += 3;
            continue;
        }
        match b {
            _ if is_raw(b) => {}
            b'\\' => return Err("has a backslash"),
            b';' => return Err("has a ';' path parameter (write %3B for a literal ';')"),
            b'?' => return Err("has a '?': query strings go in the query option"),
            b'#' => return Err("has a '#' fragment"),
            0..=0x1f | 0x7f => return Err("has a control character"),
            0x80.. => return Err("has raw non-ASCII characters (percent-encode them as UTF-8)"),
            _ => return Err("has a character that must be percent-encoded"),
        }
        i += 1;
    }
    if !decoded.is_ascii() {
        let text = std::str::from_utf8(&decoded).map_err(|_| "has percent-encoded bytes that are not UTF-8")?;
        if !is_nfkc(text) {
            return Err("has characters that Unicode normalisation (NFKC) would change, e.g. full-width forms or '‥'");
        }
        if text.chars().any(is_confusable) {
            return Err("has a look-alike of '/', '\\', '.' or '%', or an invisible or control character");
        }
    }
    Ok(())
}

/// Bytes the normal form writes as themselves.
fn is_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

/// Upper-case hex digit value.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Characters a human reviewer cannot see, and look-alikes of `/` `\` `.`
/// `%` that NFKC leaves alone (NFKC-changing ones are refused before this).
fn is_confusable(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
    ) || crate::text::is_invisible(c)
        || matches!(
            c,
            '\u{2215}' | '\u{2044}' | '\u{29f8}' | '\u{1735}' | '\u{2571}' | '\u{27cb}' // solidus look-alikes
        | '\u{29f5}' | '\u{29f9}' | '\u{2572}' | '\u{27cd}'                         // reverse solidus look-alikes
        | '\u{3002}' | '\u{2e31}'                                                   // full stop look-alikes
        | '\u{2030}' | '\u{066a}' | '\u{2052}'
        ) // percent look-alikes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_normal_paths() {
        assert_eq!(segments("/").unwrap().len(), 0);
        assert_eq!(&segments("/repos/o/r").unwrap()[..], ["repos", "o", "r"]);
        assert_eq!(&segments("/a%20b/%C3%A9").unwrap()[..], ["a%20b", "%C3%A9"]);
    }
}
