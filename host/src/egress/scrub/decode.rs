//! One decoding step for the scrubber: the escapes of one [`Scheme`] that
//! an upstream (or the agent reading its reply) could undo, decoded in one
//! pass, with a map from the decoded bytes back to the bytes they came from.
//!
//! One scheme per step, never several at once: a reader undoes one encoding
//! at a time, and a mixed pass would read `=AB` in `key=AB3x%2B…` as
//! quoted-printable and so lose the secret that a percent-decoder yields.
//! Decoding more than a reader would within a scheme is harmless: a view
//! only adds places to look.

/// A family of escapes one reader undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// JSON and JavaScript string escapes: `\uXXXX` (surrogate pairs as one
    /// character), `\u{…}`, `\xHH`, `\n`, `\/`, `\\`, `\` before punctuation.
    Json,
    /// `%HH` in either case, and `%uXXXX`.
    Percent,
    /// HTML and XML character references: `&#116;`, `&#x74;` (the `;`
    /// optional) and the named references of ASCII characters.
    Html,
    /// Quoted-printable `=HH`.
    QuotedPrintable,
    /// Line breaks removed (and a `=` before one, a quoted-printable soft
    /// break), so base64 or hex wrapped over lines reads as one run.
    Unwrap,
    /// The first four at once, greedily: cheap depth for nested encodings
    /// where no escape of one scheme can be mistaken for text of another.
    Mixed,
}

impl Scheme {
    /// Every scheme, in the order views are made.
    pub(super) const SINGLE: [Scheme; 5] =
        [Scheme::Json, Scheme::Percent, Scheme::Html, Scheme::QuotedPrintable, Scheme::Unwrap];

    /// The byte every escape of this scheme starts with (or is).
    fn trigger(self, b: u8) -> bool {
        match self {
            Scheme::Json => b == b'\\',
            Scheme::Percent => b == b'%',
            Scheme::Html => b == b'&',
            Scheme::QuotedPrintable => b == b'=',
            Scheme::Unwrap => matches!(b, b'\n' | b'\r' | b'='),
            Scheme::Mixed => matches!(b, b'\\' | b'%' | b'&' | b'='),
        }
    }
}

/// A decoded escape: `out_len` bytes at `out` in the decoded text came from
/// `src_len` bytes at `src` in its input. Bytes between escapes map 1:1.
#[derive(Debug, Clone, Copy)]
struct Piece {
    out: usize,
    out_len: usize,
    src: usize,
    src_len: usize,
}

/// Maps byte ranges of a decoded layer back to its input.
#[derive(Debug, Default)]
pub(super) struct SourceMap {
    /// Sorted by `out`, non-overlapping.
    pieces: Vec<Piece>,
}

impl SourceMap {
    /// The decoded ranges that differ from the input: (start, length), in order.
    pub(super) fn changed(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.pieces.iter().map(|p| (p.out, p.out_len))
    }

    /// The input range that the decoded range `start..end` (non-empty) came
    /// from. A range that starts or ends inside an escape covers all of it.
    pub(super) fn map(&self, start: usize, end: usize) -> (usize, usize) {
        (self.position(start, false), self.position(end - 1, true))
    }

    /// The input offset of decoded byte `at`: where its source starts, or
    /// (`after`) where it ends.
    fn position(&self, at: usize, after: bool) -> usize {
        let index = self.pieces.partition_point(|p| p.out <= at);
        let Some(piece) = index.checked_sub(1).map(|i| self.pieces[i]) else {
            return at + usize::from(after);
        };
        if at < piece.out + piece.out_len {
            return if after { piece.src + piece.src_len } else { piece.src };
        }
        let literal = piece.src + piece.src_len + (at - piece.out - piece.out_len);
        literal + usize::from(after)
    }
}

/// Decodes every escape of `scheme` in `input` once. `None` when there is
/// none (the view would equal its input).
pub(super) fn unescape(input: &[u8], scheme: Scheme) -> Option<(Vec<u8>, SourceMap)> {
    let first = input.iter().position(|&b| scheme.trigger(b))?;
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut map = SourceMap::default();
    let mut i = first;
    while i < input.len() {
        let rest = &input[i..];
        let decoded = match (scheme, input[i]) {
            (Scheme::Json | Scheme::Mixed, b'\\') => backslash(rest),
            (Scheme::Percent | Scheme::Mixed, b'%') => percent(rest),
            (Scheme::Html | Scheme::Mixed, b'&') => reference(rest),
            (Scheme::QuotedPrintable | Scheme::Mixed, b'=') => {
                hex_pair(&rest[1..], false).map(|b| (Decoded::Byte(b), 3))
            }
            (Scheme::Unwrap, b'\r' | b'\n') => Some((Decoded::Nothing, line_break(rest))),
            (Scheme::Unwrap, b'=') if matches!(rest.get(1), Some(b'\r' | b'\n')) => {
                Some((Decoded::Nothing, 1 + line_break(&rest[1..])))
            }
            _ => None,
        };
        let Some((decoded, consumed)) = decoded else {
            // Copy up to the next byte that could start an escape.
            let next = input[i + 1..].iter().position(|&b| scheme.trigger(b)).map_or(input.len(), |p| i + 1 + p);
            out.extend_from_slice(&input[i..next]);
            i = next;
            continue;
        };
        let start = out.len();
        match decoded {
            Decoded::Byte(b) => out.push(b),
            Decoded::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Decoded::Nothing => {}
        }
        map.pieces.push(Piece { out: start, out_len: out.len() - start, src: i, src_len: consumed });
        i += consumed;
    }
    (!map.pieces.is_empty()).then_some((out, map))
}

enum Decoded {
    Byte(u8),
    Char(char),
    Nothing,
}

/// The length of the line break `s` starts with (`\r\n`, `\n` or `\r`).
fn line_break(s: &[u8]) -> usize {
    if s.starts_with(b"\r\n") { 2 } else { 1 }
}

/// `\uXXXX` (a surrogate pair as one character), `\u{X…}`, `\xHH`, the
/// one-letter escapes of JSON and JavaScript, and `\` before punctuation.
fn backslash(s: &[u8]) -> Option<(Decoded, usize)> {
    let c = *s.get(1)?;
    let simple = |c: char| Some((Decoded::Char(c), 2));
    match c {
        b'u' if s.get(2) == Some(&b'{') => {
            let digits = s[3..].iter().take(7).position(|&b| b == b'}')?;
            let value = u32::from_str_radix(std::str::from_utf8(&s[3..3 + digits]).ok()?, 16).ok()?;
            Some((Decoded::Char(char::from_u32(value)?), digits + 4))
        }
        b'u' => {
            let high = hex4(&s[2..])?;
            if (0xd800..0xdc00).contains(&high)
                && s.get(6..8) == Some(b"\\u")
                && let Some(low) = hex4(&s[8..]).filter(|l| (0xdc00..0xe000).contains(l))
            {
                let value = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                return Some((Decoded::Char(char::from_u32(value)?), 12));
            }
            Some((Decoded::Char(char::from_u32(high).unwrap_or('\u{fffd}')), 6))
        }
        b'x' => Some((Decoded::Char(char::from(hex_pair(&s[2..], true)?)), 4)),
        b'n' => simple('\n'),
        b'r' => simple('\r'),
        b't' => simple('\t'),
        b'b' => simple('\u{8}'),
        b'f' => simple('\u{c}'),
        b'v' => simple('\u{b}'),
        b'0' => simple('\0'),
        c if c.is_ascii_punctuation() => simple(char::from(c)),
        _ => None,
    }
}

/// `%HH` (either case) as a byte, `%uXXXX` as a character.
fn percent(s: &[u8]) -> Option<(Decoded, usize)> {
    if s.get(1) == Some(&b'u') {
        let value = hex4(&s[2..])?;
        return Some((Decoded::Char(char::from_u32(value).unwrap_or('\u{fffd}')), 6));
    }
    Some((Decoded::Byte(hex_pair(&s[1..], true)?), 3))
}

/// `&#DDD;`, `&#xHH;` (the `;` optional, as HTML parsers allow) and the
/// named references of ASCII characters.
fn reference(s: &[u8]) -> Option<(Decoded, usize)> {
    if s.get(1) == Some(&b'#') {
        let (radix, start) = if matches!(s.get(2), Some(b'x' | b'X')) { (16, 3) } else { (10, 2) };
        let digits = s[start..]
            .iter()
            .take(8)
            .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
            .count();
        if digits == 0 {
            return None;
        }
        let value = u32::from_str_radix(std::str::from_utf8(&s[start..start + digits]).ok()?, radix).ok()?;
        let end = start + digits + usize::from(s.get(start + digits) == Some(&b';'));
        return Some((Decoded::Char(char::from_u32(value).unwrap_or('\u{fffd}')), end));
    }
    let name_len = s[1..].iter().take(32).position(|&b| b == b';')?;
    let name = &s[1..1 + name_len];
    let c = NAMED.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, c)| *c)?;
    Some((Decoded::Char(c), name_len + 2))
}

/// HTML5 named references for ASCII characters (and the non-breaking space).
const NAMED: &[(&str, char)] = &[
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("excl", '!'),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("lpar", '('),
    ("rpar", ')'),
    ("ast", '*'),
    ("midast", '*'),
    ("plus", '+'),
    ("comma", ','),
    ("period", '.'),
    ("sol", '/'),
    ("colon", ':'),
    ("semi", ';'),
    ("equals", '='),
    ("quest", '?'),
    ("commat", '@'),
    ("lsqb", '['),
    ("lbrack", '['),
    ("bsol", '\\'),
    ("rsqb", ']'),
    ("rbrack", ']'),
    ("Hat", '^'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
    ("grave", '`'),
    ("DiacriticalGrave", '`'),
    ("lcub", '{'),
    ("lbrace", '{'),
    ("verbar", '|'),
    ("vert", '|'),
    ("VerticalLine", '|'),
    ("rcub", '}'),
    ("rbrace", '}'),
    ("hyphen", '\u{2010}'),
];

/// Two hex digits (`any_case`: lower-case ones too) as a byte.
fn hex_pair(s: &[u8], any_case: bool) -> Option<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' if any_case => Some(b - b'a' + 10),
        _ => None,
    };
    Some(digit(*s.first()?)? << 4 | digit(*s.get(1)?)?)
}

/// Four hex digits of either case.
fn hex4(s: &[u8]) -> Option<u32> {
    let digits = s.get(..4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(input: &str, scheme: Scheme) -> String {
        unescape(input.as_bytes(), scheme)
            .map_or(input.to_owned(), |(out, _)| String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn decodes_each_escape_syntax() {
        assert_eq!(decoded(r"\u0074ok\u0065n", Scheme::Json), "token");
        assert_eq!(decoded(r"\uD83D\uDE00 \u{1F600} \x41 \/ \\ \n", Scheme::Json), "😀 😀 A / \\ \n");
        assert_eq!(decoded("%74%6F%6b%65n %u0041", Scheme::Percent), "token A");
        assert_eq!(decoded("&#116;&#x6F;&#X6b&#101;n &quot;&amp;&sol;", Scheme::Html), "token \"&/");
        assert_eq!(decoded("a=3Db", Scheme::QuotedPrintable), "a=b");
        assert_eq!(decoded("to=\r\nke\nn\r\n", Scheme::Unwrap), "token");
        for scheme in Scheme::SINGLE {
            assert_eq!(decoded("plain text, 100% & more = fine", scheme), "plain text, 100% & more = fine");
        }
    }

    #[test]
    fn each_scheme_leaves_the_others_escapes_alone() {
        assert_eq!(decoded(r"key=AB3x%2B\u0041", Scheme::Percent), r"key=AB3x+\u0041");
        assert_eq!(decoded(r"key=AB3x%2B\u0041", Scheme::Json), "key=AB3x%2BA");
    }

    #[test]
    fn maps_decoded_ranges_back_to_whole_escapes() {
        let input = r#"{"a":"x\u0074ok\u0065n!"}"#;
        let (out, map) = unescape(input.as_bytes(), Scheme::Json).unwrap();
        let out = String::from_utf8(out).unwrap();
        let at = out.find("token").unwrap();
        let (start, end) = map.map(at, at + "token".len());
        assert_eq!(&input[start..end], r"\u0074ok\u0065n");
        // Literal bytes before and after map one to one.
        assert_eq!(map.map(0, 2), (0, 2));
        let bang = out.find('!').unwrap();
        assert_eq!(&input[map.map(bang, bang + 1).0..map.map(bang, bang + 1).1], "!");
    }
}
