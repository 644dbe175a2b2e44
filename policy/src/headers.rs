//! Header names and values: which ones an agent may set, and which bytes a
//! value may hold. The lists here are the one definition of "reserved":
//! egress, the drafters and the fuzz invariants all use them.
//!
//! Header names are compared as upstreams compare them: ASCII letter case
//! ignored, and every character other than a letter or digit equal to `-`,
//! because CGI-style servers (PHP, WSGI, Rack, lighttpd, …) expose
//! `X-Original-URL`, `X_Original_URL` (and on lighttpd `X.Original.URL`) as
//! one `HTTP_X_ORIGINAL_URL`. Parameter names are compared as PHP reads them
//! ([`same_parameter`]).

/// Headers only the gateway sets, by exact name (lower case, `-` form):
/// framing and hop-by-hop headers, and headers that upstream frameworks and
/// proxies read to override the request's method, URL, host, scheme, port,
/// base path, client address or identity (beside the families in
/// [`RESERVED_HEADER_PREFIXES`]). Sources are in the policy README.
pub const RESERVED_HEADERS: &[&str] = &[
    // Framing and hop-by-hop (RFC 9110, RFC 9112).
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
    "via",
    "max-forwards",
    // Forwarding (RFC 7239 and older spellings): address, host, scheme.
    "forwarded",
    "forwarded-for",
    "x-forwarded",
    // Method override (the `x-http-method*` family covers the rest).
    "x-method-override",
    // Host override.
    "x-host",
    "x-http-host-override",
    // Scheme override.
    "x-scheme",
    "x-url-scheme",
    "front-end-https",
    "x-proxied-https",
    // Path and base-path override.
    "x-replaced-path",
    "x-script-name",
    "script-name",
    "path-info",
    "x-sendfile-type",
    // Identity a front proxy asserts (oauth2-proxy, Apache, Azure App
    // Service, Google IAP, Grafana-style auth proxies).
    "remote-user",
    "x-remote-user",
    "x-webauth-user",
    // Framework-internal routing (Next.js: CVE-2025-29927, and its own paths).
    "x-middleware-subrequest",
    "x-matched-path",
    // Client-address override (upstreams allow-list and rate-limit by it).
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "cf-pseudo-ipv4",
    "fastly-client-ip",
    "x-appengine-user-ip",
    "x-0-client-ip",
    "x-proxyuser-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "cluster-client-ip",
    "fly-client-ip",
    "do-connecting-ip",
    "cf-visitor",
];

/// Families of reserved headers: every name that starts with one of these.
pub const RESERVED_HEADER_PREFIXES: &[&str] = &[
    // Proxy-Authorization, Proxy-Connection, Proxy-Auth-Cert, Proxy-Ssl-Id, ...
    "proxy-",
    // X-Forwarded-For/-Host/-Proto/-Port/-Prefix/-Path/-Uri/-Method/-Ssl/-Scheme/-Server/-User/...
    "x-forwarded-",
    // X-Original-URL/-URI/-Method/-Host/-For/-Proto/-Prefix/-Forwarded-For (IIS, ASP.NET Core, nginx)
    "x-original-",
    // X-Rewrite-URL (ISAPI_Rewrite; Symfony and Zend read it until 2018)
    "x-rewrite-",
    // X-HTTP-Method, X-HTTP-Method-Override (OData, Google APIs, Rack, express, ASP.NET Core)
    "x-http-method",
    // Envoy's internal headers: original path and destination, retries, timeouts.
    "x-envoy-",
    // nginx's X-Accel-Mapping and friends (Rack::Sendfile maps file paths with it).
    "x-accel-",
    // IIS Application Request Routing: X-ARR-SSL, X-ARR-ClientCert.
    "x-arr-",
    // Identity from an auth proxy: oauth2-proxy, Azure App Service, Google IAP.
    "x-auth-request-",
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    // Next.js internal routing: X-Invoke-Path, X-Invoke-Query, ...
    "x-invoke-",
];

/// Names that web frameworks and APIs read as the request's real method,
/// from a header, the query string or a form or JSON body: `_method`
/// (Laravel, Symfony, Spring, WordPress, express method-override, iris),
/// Salesforce's `_HttpMethod`, and the override headers (which iris and
/// others also take from the query).
pub const METHOD_OVERRIDE_NAMES: &[&str] =
    &["_method", "_httpmethod", "x-http-method-override", "x-http-method", "x-method-override"];

/// Query parameters that frameworks route on instead of the path: Phalcon's
/// `_url` and WordPress's `rest_route`. Refused with the method overrides,
/// whatever a rule allows.
pub const ROUTING_QUERY_NAMES: &[&str] = &["_url", "rest_route"];

/// True for headers neither the agent nor a spec's `inject` may set.
pub fn is_reserved(name: &str) -> bool {
    let name = canonical(name);
    RESERVED_HEADERS.contains(&name.as_str()) || RESERVED_HEADER_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// True for a header, query or body parameter name that overrides the method
/// (compared as [`same_parameter`] does).
pub fn is_method_override(name: &str) -> bool {
    METHOD_OVERRIDE_NAMES.iter().any(|m| same_parameter(m, name))
}

/// True for a query parameter an upstream would route on: a method override
/// or one of [`ROUTING_QUERY_NAMES`].
pub fn is_routing_query_name(name: &str) -> bool {
    is_method_override(name) || ROUTING_QUERY_NAMES.iter().any(|r| same_parameter(r, name))
}

/// True when two parameter names reach an upstream as one: letter case
/// ignored, and read as PHP reads them (leading spaces dropped; ` `, `.`
/// and `[` as `_`), with `-` as `_` too (the header spelling).
pub fn same_parameter(a: &str, b: &str) -> bool {
    fold_parameter(a) == fold_parameter(b)
}

/// A parameter name as PHP registers it (and then lower case, `-` as `_`):
/// cut at a NUL, leading spaces dropped, `name[…]` an array named `name`,
/// and ` `, `.` and an unmatched `[` read as `_`.
fn fold_parameter(name: &str) -> Vec<u8> {
    let name = name.split('\0').next().unwrap_or("").trim_start_matches(' ');
    let name = match name.find('[') {
        Some(open) if name[open..].contains(']') => &name[..open],
        _ => name,
    };
    name.bytes().map(|c| if matches!(c, b' ' | b'.' | b'[' | b'-') { b'_' } else { c.to_ascii_lowercase() }).collect()
}

/// True when two header names reach an upstream as the same header.
pub fn same_header(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// The name as upstreams compare it: lower case, and every other character
/// than a letter or digit as `-` (CGI servers map `-` and `_`, lighttpd every
/// non-alphanumeric character, to `_` in `HTTP_X_FORWARDED_FOR`).
pub(crate) fn canonical(name: &str) -> String {
    name.bytes().map(|b| fold(b) as char).collect()
}

fn fold(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() { b.to_ascii_lowercase() } else { b'-' }
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
