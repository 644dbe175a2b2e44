//! A host named in prose, as a whole host name: the grounding check that a
//! base URL's host is one the docs mention.

/// True when `host` (lower case) occurs in `text` as a whole host name: not
/// inside a longer one (`api.x.com` is not in `evilapi.x.com` or
/// `api.x.com.evil.net`). Case-insensitive.
pub(super) fn mentions_host(text: &str, host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let is_host_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut from = 0;
    while let Some(at) = lower[from..].find(host) {
        let start = from + at;
        let end = start + host.len();
        let before_ok = start == 0 || !(is_host_byte(bytes[start - 1]) || bytes[start - 1] == b'.');
        let after_ok = match bytes.get(end) {
            None => true,
            Some(b'.') => !bytes.get(end + 1).is_some_and(|b| is_host_byte(*b)),
            Some(b) => !is_host_byte(*b),
        };
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        while !lower.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_matches_only_as_a_whole_host_name() {
        assert!(mentions_host("Send requests to https://API.x.com/v1.", "api.x.com"));
        assert!(mentions_host("api.x.com", "api.x.com"));
        assert!(mentions_host("(api.x.com)", "api.x.com"));
        assert!(!mentions_host("see evilapi.x.com", "api.x.com"));
        assert!(!mentions_host("see sub.api.x.com", "api.x.com"));
        assert!(!mentions_host("see api.x.com.evil.net", "api.x.com"));
        assert!(!mentions_host("see my-api.x.com", "api.x.com"));
        assert!(!mentions_host("see api.x.community", "api.x.com"));
        assert!(mentions_host("évil api.x.com", "api.x.com"));
    }
}
