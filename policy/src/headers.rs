//! Header names and values: which ones an agent may set, and which bytes a
//! value may hold.

/// Headers only the gateway sets: hop-by-hop, framing and routing headers.
/// Compared ignoring letter case; every `Proxy-*` header is included.
const RESERVED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-encoding",
    // Egress negotiates encodings it can decode, so scrubbing sees plain bytes.
    "accept-encoding",
    "expect",
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// True for headers neither the agent nor a spec's `inject` may set.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
        || name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// RFC 9110 `token`: the characters a header name may use.
pub fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when a header value holds bytes that could split or end a header
/// (CR, LF, NUL) or other control characters besides tab.
pub fn has_forbidden_value_bytes(value: &str) -> bool {
    value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}
