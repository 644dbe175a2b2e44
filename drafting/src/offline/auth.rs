//! The credential: which security scheme the picked operations accept, and
//! which of the intent's secret hints fills it.

use oauth3_policy::{BasicAuth, Inject, is_secret_name};

use crate::goal::split_words;
use crate::openapi::{ApiDoc, Operation, SecurityScheme};

/// How the credential is injected.
#[derive(Debug, Default)]
pub(super) struct Auth {
    /// Headers and query parameters added by egress.
    pub inject: Inject,
    /// The secrets used (two for an HTTP Basic key and secret).
    pub secrets: Vec<String>,
    /// The query parameter carrying the key, never allowed to the agent.
    pub query_name: Option<String>,
    /// Rationale lines.
    pub rationale: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Where a scheme puts the secret.
enum Place {
    Header(String, String),
    Query(String),
}

/// Derives the injection for `ops`; `suggest` is an example secret name
/// for the error when no hint is given.
pub(super) fn auth(api: &ApiDoc, ops: &[&Operation], hints: &[String], suggest: &str) -> Result<Auth, String> {
    // Operations with an empty alternative (`{}`) may be called without credentials.
    let needing: Vec<&[Vec<String>]> = ops
        .iter()
        .map(|op| api.security_for(op))
        .filter(|alts| !alts.is_empty() && alts.iter().all(|a| !a.is_empty()))
        .collect();
    let Some(first) = needing.first() else {
        let mut out = Auth {
            rationale: vec!["auth: none (the docs declare no security for these operations)".into()],
            ..Auth::default()
        };
        if !hints.is_empty() && api.security_schemes.is_empty() {
            // GitHub's and OpenAI's published descriptions declare no scheme at all.
            out.warnings.push(format!(
                "the docs declare no security scheme, so no credential is injected and the secret hint{} {} {} \
                 unused; if the API needs one, add it to `inject` by hand (e.g. `Authorization: Bearer {{{}}}`)",
                if hints.len() == 1 { "" } else { "s" },
                hints.join(", "),
                if hints.len() == 1 { "is" } else { "are" },
                hints[0]
            ));
        }
        return Ok(out);
    };
    // Every OAuth 2 / OpenID Connect / bearer scheme takes the same thing, a
    // bearer token: Google requires `Oauth2 + Oauth2c` together, Open Banking
    // one scheme for consents and another for payments. They count as one.
    let bearer =
        |name: &String| matches!(api.security_schemes.get(name), Some(SecurityScheme::Bearer | SecurityScheme::OAuth2));
    let first_bearer: Option<&String> = needing.iter().flat_map(|alts| alts.iter().flatten()).find(|n| bearer(n));
    let canonical = |name: &'_ String| -> String { if bearer(name) { "(bearer)".to_owned() } else { name.clone() } };
    let single = |alt: &Vec<String>| -> Option<String> {
        let mut kinds: Vec<String> = alt.iter().map(canonical).collect();
        kinds.dedup();
        match &kinds[..] {
            [one] => Some(one.clone()),
            _ => None,
        }
    };
    // Single-credential alternatives every operation accepts, in document order.
    let mut accepted: Vec<String> = first
        .iter()
        .filter_map(single)
        .filter(|name| needing.iter().all(|alts| alts.iter().any(|a| single(a).as_ref() == Some(name))))
        .collect();
    accepted.dedup();
    let names: Vec<&String> = accepted
        .iter()
        .filter_map(|n| if n == "(bearer)" { first_bearer } else { first.iter().flatten().find(|f| *f == n) })
        .collect();
    if names.is_empty() {
        let all: Vec<String> = first.iter().map(|alt| alt.join(" + ")).collect();
        return Err(format!(
            "the operations need credentials one secret cannot supply ({}); ask for them in separate intents",
            all.join(" or ")
        ));
    }
    let mut rationale = Vec::new();
    let mut usable: Vec<(u8, &String, &SecurityScheme)> = Vec::new();
    // Two hints that read as a key and its secret are what HTTP Basic takes.
    let pair = basic_pair(hints);
    for name in &names {
        match api.security_schemes.get(*name) {
            None => rationale.push(format!("auth: scheme `{name}` is required but not defined; skipped")),
            Some(scheme @ SecurityScheme::Basic) => usable.push((if pair.is_some() { 0 } else { 2 }, name, scheme)),
            Some(scheme @ (SecurityScheme::Bearer | SecurityScheme::OAuth2)) => usable.push((1, name, scheme)),
            Some(scheme @ SecurityScheme::ApiKey { location, .. }) if location == "header" => {
                usable.push((1, name, scheme))
            }
            Some(scheme @ SecurityScheme::ApiKey { location, .. }) if location == "query" => {
                usable.push((3, name, scheme))
            }
            Some(other) => rationale.push(format!("auth: `{name}` ({}) cannot be injected; skipped", kind(other))),
        }
    }
    // Basic for a key-and-secret pair, then one token in a header, then Basic
    // with one secret, then query keys (which leak into logs); document order
    // otherwise.
    usable.sort_by_key(|(rank, ..)| *rank);
    let Some(&(_, name, scheme)) = usable.first() else {
        let offered: Vec<String> = names
            .iter()
            .map(|n| format!("`{n}` ({})", api.security_schemes.get(*n).map_or("undefined", kind)))
            .collect();
        return Err(format!(
            "the API only offers {}, which the spec cannot inject; give the docs of an API that accepts a bearer \
             token, an API key or HTTP Basic credentials",
            offered.join(", ")
        ));
    };
    if let SecurityScheme::Basic = scheme {
        return basic(api, name, hints, suggest, pair, rationale);
    }
    let hint = choose_hint(api, name, hints, suggest, scheme)?;
    let mut out = Auth { secrets: vec![hint.clone()], rationale, ..Auth::default() };
    let how = match place(scheme) {
        Place::Header(header, value) => {
            let value = value.replace("{}", &format!("{{{hint}}}"));
            let shown = format!("{header}: {value}");
            out.inject.headers.insert(header, value);
            shown
        }
        Place::Query(param) => {
            out.warnings.push(format!(
                "the API key travels in the URL (query parameter `{param}`), where upstream logs and proxies may \
                 record it"
            ));
            out.inject.query.insert(param.clone(), format!("{{{hint}}}"));
            out.query_name = Some(param.clone());
            format!("query parameter {param}={{{hint}}}")
        }
    };
    let from =
        if hints.len() == 1 { "the only secret hint" } else { "the secret hint matching the scheme or API name" };
    out.rationale.push(format!("auth: `{name}` ({}) → {how}; secret {hint} is {from}", kind(scheme)));
    Ok(out)
}

/// HTTP Basic: a key (or user name) and its secret (or password) as username
/// and password, or else one hint, chosen as for a token, as the username
/// with an empty password (as APIs that take a key as the username expect).
fn basic(
    api: &ApiDoc,
    name: &str,
    hints: &[String],
    suggest: &str,
    pair: Option<(&String, &String)>,
    rationale: Vec<String>,
) -> Result<Auth, String> {
    let (username, password, from) = match pair {
        Some((username, password)) => (
            username.clone(),
            Some(password.clone()),
            format!("secrets {username} and {password} read as a key or user name and its secret or password"),
        ),
        None => {
            let hint = choose_hint(api, name, hints, suggest, &SecurityScheme::Basic)?;
            let from = if hints.len() == 1 {
                "the only secret hint"
            } else {
                "the secret hint matching the scheme or API name"
            };
            let from = format!("secret {hint} is {from}");
            (hint, None, from)
        }
    };
    let template = |secret: &String| format!("{{{secret}}}");
    let mut out = Auth { rationale, ..Auth::default() };
    out.inject.basic = Some(BasicAuth {
        username: template(&username),
        password: password.as_ref().map(template).unwrap_or_default(),
    });
    let how = match &password {
        Some(password) => format!("username {{{username}}}, password {{{password}}}"),
        None => {
            out.warnings.push(format!(
                "the API takes HTTP Basic credentials: {username} is sent as the username with an empty password; if \
                 it needs a password too, set `inject.basic.password`"
            ));
            format!("username {{{username}}}, empty password")
        }
    };
    out.rationale
        .push(format!("auth: `{name}` (http basic) → HTTP Basic {how}, base64-encoded by the gateway; {from}"));
    out.secrets = std::iter::once(username).chain(password).collect();
    Ok(out)
}

/// Words of a secret name that make it the Basic username, or the password.
const USER_WORDS: &[&str] = &["user", "username", "login", "email", "id", "sid", "key", "apikey"];
const PASSWORD_WORDS: &[&str] = &["secret", "password", "pass", "passwd", "pwd", "token"];

/// Two hints that read as a key or user name and its secret or password
/// (`MAILER_API_KEY` + `MAILER_API_SECRET`, `JIRA_EMAIL` + `JIRA_API_TOKEN`),
/// as (username, password): one has a password word, the other a user word
/// and no password word, and their other words overlap (or one has none), so
/// secrets of two unrelated APIs (`GITHUB_TOKEN`, `STRIPE_KEY`) never pair.
fn basic_pair(hints: &[String]) -> Option<(&String, &String)> {
    let [a, b] = hints else { return None };
    if !is_secret_name(a) || !is_secret_name(b) {
        return None;
    }
    let words = |hint: &str| -> Vec<String> {
        hint.split('_').filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect()
    };
    let has = |words: &[String], list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let (words_a, words_b) = (words(a), words(b));
    let secretish = |w: &[String]| has(w, PASSWORD_WORDS);
    let userish = |w: &[String]| has(w, USER_WORDS) && !secretish(w);
    let (username, password, user_words, password_words) = if userish(&words_a) && secretish(&words_b) {
        (a, b, words_a, words_b)
    } else if userish(&words_b) && secretish(&words_a) {
        (b, a, words_b, words_a)
    } else {
        return None;
    };
    let rest = |words: Vec<String>| -> Vec<String> {
        words
            .into_iter()
            .filter(|w| !USER_WORDS.contains(&w.as_str()) && !PASSWORD_WORDS.contains(&w.as_str()))
            .collect()
    };
    let (user_rest, password_rest) = (rest(user_words), rest(password_words));
    let related =
        user_rest.is_empty() || password_rest.is_empty() || user_rest.iter().any(|w| password_rest.contains(w));
    related.then_some((username, password))
}

fn place(scheme: &SecurityScheme) -> Place {
    match scheme {
        SecurityScheme::ApiKey { location, name } if location == "query" => Place::Query(name.clone()),
        SecurityScheme::ApiKey { name, .. } => Place::Header(name.clone(), "{}".into()),
        _ => Place::Header("Authorization".into(), "Bearer {}".into()),
    }
}

fn kind(scheme: &SecurityScheme) -> &str {
    match scheme {
        SecurityScheme::Bearer => "http bearer",
        SecurityScheme::Basic => "http basic",
        SecurityScheme::ApiKey { location, .. } if location == "query" => "API key in the query",
        SecurityScheme::ApiKey { location, .. } if location == "header" => "API key in a header",
        SecurityScheme::ApiKey { .. } => "API key in a cookie",
        SecurityScheme::OAuth2 => "OAuth 2 / OpenID Connect bearer token",
        SecurityScheme::Other(kind) => kind,
    }
}

/// The hint to use: the only one, or the one whose words best match the
/// scheme's name and the API's title.
fn choose_hint(
    api: &ApiDoc,
    scheme_name: &str,
    hints: &[String],
    suggest: &str,
    scheme: &SecurityScheme,
) -> Result<String, String> {
    let valid = |h: &String| {
        h.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(bad) = hints.iter().find(|h| !valid(h)) {
        let shown: String = bad.chars().take(40).collect();
        return Err(format!("secret hint `{shown}` is not a secret name (letters, digits and `_`)"));
    }
    match hints {
        [] => Err(format!(
            "the API requires a credential (`{scheme_name}`, {}); name the owner's secret in secret_hints, e.g. \
             [\"{suggest}\"]",
            kind(scheme)
        )),
        [one] => Ok(one.clone()),
        many => {
            // "GitHub" is one word to a hint (GITHUB_TOKEN), two to camelCase.
            let whole = |text: &str| -> Vec<String> {
                let mut words: Vec<String> = text
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_ascii_lowercase)
                    .collect();
                words.extend(split_words(text));
                words
            };
            let mut known = whole(scheme_name);
            known.extend(api.title.iter().flat_map(|t| whole(t)));
            let score = |h: &String, known: &[String]| {
                h.split('_').filter(|w| !w.is_empty()).filter(|w| known.contains(&w.to_ascii_lowercase())).count()
            };
            // Among hints that name this API equally, the one named for what
            // the scheme carries: a token for a bearer scheme
            // (XERO_ACCESS_TOKEN, not XERO_TENANT_ID), a key for an API key.
            let carried: Vec<String> = match scheme {
                SecurityScheme::Bearer | SecurityScheme::OAuth2 => {
                    vec!["token".into(), "access".into(), "bearer".into()]
                }
                SecurityScheme::ApiKey { .. } => vec!["key".into(), "apikey".into(), "token".into()],
                _ => vec![],
            };
            let rank = |h: &String| (score(h, &known), score(h, &carried));
            let best = many.iter().map(rank).max().unwrap_or((0, 0));
            let top: Vec<&String> = many.iter().filter(|h| rank(h) == best).collect();
            match top.as_slice() {
                [one] if best.0 > 0 => Ok((*one).clone()),
                _ => Err(format!(
                    "ambiguous secret hints: {} — none matches the scheme `{scheme_name}` or the API title{} better \
                     than the others; give only the secret this API uses",
                    many.join(", "),
                    api.title.as_deref().map(|t| format!(" \"{t}\"")).unwrap_or_default()
                )),
            }
        }
    }
}
