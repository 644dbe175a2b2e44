//! Does a rule correspond to a documented operation? Full paths are compared
//! segment by segment (base_url path + rule glob against server path +
//! template): a literal matches the same literal or a `{param}`, `*` matches
//! only a whole `{param}`, `pre*suf` only a `{param}` inside at least that
//! text (`*.json` a `{Sid}.json`), and `**` matches any rest.

use url::Url;

use crate::openapi::ApiDoc;

/// One segment of a rule's full path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleSeg<'a> {
    Literal(&'a str),
    Star,
    DoubleStar,
    /// One `*` inside a segment, with this text before and after it.
    Affix(&'a str, &'a str),
}

/// One segment of a documented operation's full path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocSeg<'a> {
    Literal(&'a str),
    /// `{param}` (empty prefix and suffix) or `v{n}.json`-like.
    Param {
        prefix: &'a str,
        suffix: &'a str,
        /// The parameter's name (for `{a}-{b}`, `a}-{b`).
        name: &'a str,
        /// One parameter, not several (`{a}-{b}`).
        single: bool,
    },
}

/// One documented operation under one of its servers.
pub(super) struct DocumentedOp<'a> {
    method: &'a str,
    /// The operation itself.
    op: &'a crate::openapi::Operation,
    /// The intent names it in `operations`.
    named: bool,
    segments: Vec<DocSeg<'a>>,
    /// `GET /v1/users/{id}`, for messages.
    display: String,
}

/// How a rule relates to the documented operations.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Coverage {
    /// It allows only documented paths (up to `**`).
    Documented,
    /// It would match the named operation if its `*` did not stand for a
    /// literal segment there: it allows undocumented paths.
    StarOverLiteral(String),
    /// No operation of that method matches.
    Undocumented,
}

/// Every operation in `apis`, under each of its servers' paths (under `/`
/// when it declares none); `named` holds, per API, the indices of the
/// operations the intent names.
pub(super) fn documented_ops<'a>(
    apis: &[&'a ApiDoc],
    server_paths: &'a [Vec<String>],
    named: &[Vec<usize>],
) -> Vec<DocumentedOp<'a>> {
    let mut ops = Vec::new();
    for (a, (api, prefixes)) in apis.iter().zip(server_paths).enumerate() {
        for prefix in prefixes {
            for (i, op) in api.operations.iter().enumerate() {
                let mut segments: Vec<DocSeg<'a>> = split(prefix).map(DocSeg::Literal).collect();
                segments.extend(split(&op.path).map(doc_seg));
                let display = format!("{} {}{}", op.method, prefix, op.path);
                let named = named.get(a).is_some_and(|n| n.contains(&i));
                ops.push(DocumentedOp { method: &op.method, op, named, segments, display });
            }
        }
    }
    ops
}

/// The path prefixes of `api`'s servers (`""` for none or `/`).
pub(super) fn server_paths(api: &ApiDoc) -> Vec<String> {
    let mut paths: Vec<String> = api
        .servers
        .iter()
        .filter_map(|s| Url::parse(&s.url).ok())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .collect();
    if paths.is_empty() {
        paths.push(String::new());
    }
    paths.sort();
    paths.dedup();
    paths
}

/// How `method` on `base_path` + `rule_path` relates to `ops`.
pub(super) fn coverage(method: &str, base_path: &str, rule_path: &str, ops: &[DocumentedOp<'_>]) -> Coverage {
    let rule = rule_segments(base_path, rule_path);
    let same_method = || ops.iter().filter(|op| op.method == method);
    if same_method().any(|op| matches(&rule, &op.segments, false)) {
        // A write whose wildcard also stands over another write's literal
        // segment allows that one too (`POST …/IncomingPhoneNumbers/*.json`
        // updates a number, and buys one at `…/Local.json`).
        let sibling = || {
            same_method().find(|op| {
                !rule.contains(&RuleSeg::DoubleStar)
                    && matches(&rule, &op.segments, true)
                    && !matches(&rule, &op.segments, false)
            })
        };
        if super::is_write(method)
            && let Some(op) = sibling()
        {
            return Coverage::StarOverLiteral(op.display.clone());
        }
        return Coverage::Documented;
    }
    match same_method().find(|op| matches(&rule, &op.segments, true)) {
        Some(op) => Coverage::StarOverLiteral(op.display.clone()),
        None => Coverage::Undocumented,
    }
}

/// True when `method` on `base_path` + `rule_path` allows only paths of
/// operations the intent names.
pub(super) fn named(method: &str, base_path: &str, rule_path: &str, ops: &[DocumentedOp<'_>]) -> bool {
    let rule = rule_segments(base_path, rule_path);
    let same = || ops.iter().filter(|op| op.method == method);
    if rule.contains(&RuleSeg::DoubleStar) {
        // A `**` reaches every operation under it: all must be named.
        let reached: Vec<&DocumentedOp<'_>> = same().filter(|op| matches(&rule, &op.segments, true)).collect();
        return !reached.is_empty() && reached.iter().all(|op| op.named);
    }
    same().any(|op| op.named && matches(&rule, &op.segments, false))
}

/// Every documented operation `method` on `base_path` + `rule_path` can
/// reach, with the names of its path parameters the rule leaves open: those
/// under a `*` or a `**` (all of them for an operation a `*` reaches only by
/// standing over a literal segment).
pub(super) fn operations_reached<'a>(
    method: &str,
    base_path: &str,
    rule_path: &str,
    ops: &[DocumentedOp<'a>],
) -> Vec<(&'a crate::openapi::Operation, Vec<&'a str>)> {
    let rule = rule_segments(base_path, rule_path);
    let mut out = Vec::new();
    for op in ops.iter().filter(|op| op.method == method) {
        if !rule.contains(&RuleSeg::DoubleStar) && matches(&rule, &op.segments, false) {
            let open = rule
                .iter()
                .zip(&op.segments)
                .filter_map(|(r, d)| match (r, d) {
                    (RuleSeg::Star | RuleSeg::Affix(..), DocSeg::Param { name, .. }) => Some(*name),
                    _ => None,
                })
                .collect();
            out.push((op.op, open));
        } else if matches(&rule, &op.segments, true) {
            let all = op.segments.iter().filter_map(|d| match d {
                DocSeg::Param { name, .. } => Some(*name),
                DocSeg::Literal(_) => None,
            });
            out.push((op.op, all.collect()));
        }
    }
    out
}

fn rule_segments<'a>(base_path: &'a str, rule_path: &'a str) -> Vec<RuleSeg<'a>> {
    split(base_path)
        .map(RuleSeg::Literal)
        .chain(split(rule_path).map(|s| match s {
            "*" => RuleSeg::Star,
            "**" => RuleSeg::DoubleStar,
            _ => match s.split_once('*') {
                Some((prefix, suffix)) => RuleSeg::Affix(prefix, suffix),
                None => RuleSeg::Literal(s),
            },
        }))
        .collect()
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn doc_seg(segment: &str) -> DocSeg<'_> {
    match (segment.find('{'), segment.rfind('}')) {
        (Some(open), Some(close)) if open < close => DocSeg::Param {
            prefix: &segment[..open],
            suffix: &segment[close + 1..],
            name: &segment[open + 1..close],
            single: segment.matches(['{', '}']).count() == 2,
        },
        _ => DocSeg::Literal(segment),
    }
}

/// True when every path `rule` allows is one `doc` documents (`**` aside);
/// `lax` also lets `*` stand for a literal or a partial parameter.
fn matches(rule: &[RuleSeg<'_>], doc: &[DocSeg<'_>], lax: bool) -> bool {
    match rule.split_first() {
        None => doc.is_empty(),
        Some((RuleSeg::DoubleStar, rest)) => (0..=doc.len()).any(|skip| matches(rest, &doc[skip..], lax)),
        Some((seg, rest)) => {
            doc.split_first().is_some_and(|(first, tail)| segment_ok(*seg, *first, lax) && matches(rest, tail, lax))
        }
    }
}

fn segment_ok(rule: RuleSeg<'_>, doc: DocSeg<'_>, lax: bool) -> bool {
    match (rule, doc) {
        (RuleSeg::Literal(a), DocSeg::Literal(b)) => a == b,
        (RuleSeg::Literal(a), DocSeg::Param { prefix, suffix, .. }) => {
            a.len() > prefix.len() + suffix.len() && a.starts_with(prefix) && a.ends_with(suffix)
        }
        (RuleSeg::Star, DocSeg::Param { prefix: "", suffix: "", .. }) => true,
        (RuleSeg::Star, _) => lax,
        // Within the documented text: `*.json` or `CA*.json` over `{Sid}.json`.
        (RuleSeg::Affix(a, b), DocSeg::Param { prefix, suffix, single, .. }) => {
            (single && a.starts_with(prefix) && b.ends_with(suffix)) || lax
        }
        (RuleSeg::Affix(..), DocSeg::Literal(_)) => lax,
        (RuleSeg::DoubleStar, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{Operation, Server};

    fn api(servers: &[&str], ops: &[(&str, &str)]) -> ApiDoc {
        ApiDoc {
            version: "3.0.0".into(),
            title: None,
            servers: servers.iter().map(|s| Server { url: (*s).into(), declared: (*s).into() }).collect(),
            operations: ops.iter().map(|(method, path)| Operation::new(method, path)).collect(),
            security_schemes: Default::default(),
            security: vec![],
        }
    }

    fn cov(doc: &ApiDoc, method: &str, base: &str, rule: &str) -> Coverage {
        let paths = vec![server_paths(doc)];
        let ops = documented_ops(&[doc], &paths, &[]);
        coverage(method, base, rule, &ops)
    }

    #[test]
    fn segments_compare_as_documented() {
        let doc = api(
            &["https://api.x.com/v1"],
            &[
                ("GET", "/repos/{owner}/{repo}/issues"),
                ("GET", "/repos/{owner}/{repo}/issues/comments"),
                ("GET", "/files/{name}.json"),
            ],
        );
        assert_eq!(cov(&doc, "GET", "/v1", "/repos/o/r/issues"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "", "/v1/repos/*/*/issues"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "/v1", "/files/a.json"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "/v1", "/files/*"), Coverage::StarOverLiteral("GET /v1/files/{name}.json".into()));
        assert_eq!(cov(&doc, "GET", "/v1", "/files/*.json"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "/v1", "/files/report-*.json"), Coverage::Documented);
        // Wider than documented: `*.js` also matches `x.js`, not only `….json`.
        assert_eq!(
            cov(&doc, "GET", "/v1", "/files/*.js"),
            Coverage::StarOverLiteral("GET /v1/files/{name}.json".into())
        );
        assert_eq!(
            cov(&doc, "GET", "/v1", "/repos/o/r/issues/c*"),
            Coverage::StarOverLiteral("GET /v1/repos/{owner}/{repo}/issues/comments".into())
        );
        assert_eq!(
            cov(&doc, "GET", "/v1", "/repos/o/r/issues/*"),
            Coverage::StarOverLiteral("GET /v1/repos/{owner}/{repo}/issues/comments".into())
        );
        assert_eq!(cov(&doc, "POST", "/v1", "/repos/o/r/issues"), Coverage::Undocumented);
        // Two parameters in one segment are not one an affix may stand for.
        let pair = api(&[], &[("GET", "/rates/{from}-{to}.json")]);
        assert_eq!(cov(&pair, "GET", "", "/rates/EUR-USD.json"), Coverage::Documented);
        assert_eq!(
            cov(&pair, "GET", "", "/rates/*.json"),
            Coverage::StarOverLiteral("GET /rates/{from}-{to}.json".into())
        );
        assert_eq!(cov(&doc, "GET", "", "/repos/o/r/issues"), Coverage::Undocumented);
        assert_eq!(cov(&doc, "GET", "/v1", "/repos/o/r"), Coverage::Undocumented);
    }

    #[test]
    fn a_write_whose_wildcard_also_reaches_a_literal_sibling_is_not_documented() {
        let doc = api(
            &[],
            &[
                ("POST", "/Numbers/{Sid}.json"),
                ("POST", "/Numbers/Local.json"),
                ("GET", "/Numbers/{Sid}.json"),
                ("GET", "/Numbers/Local.json"),
            ],
        );
        // Updating a number would also buy one.
        assert_eq!(
            cov(&doc, "POST", "", "/Numbers/*.json"),
            Coverage::StarOverLiteral("POST /Numbers/Local.json".into())
        );
        assert_eq!(cov(&doc, "POST", "", "/Numbers/PN1.json"), Coverage::Documented);
        // Reads are judged as before.
        assert_eq!(cov(&doc, "GET", "", "/Numbers/*.json"), Coverage::Documented);
    }

    #[test]
    fn double_star_needs_a_documented_operation_under_its_prefix() {
        let doc = api(&[], &[("GET", "/repos/{owner}/{repo}/issues")]);
        assert_eq!(cov(&doc, "GET", "", "/repos/**"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "", "/**"), Coverage::Documented);
        assert_eq!(cov(&doc, "GET", "", "/users/**"), Coverage::Undocumented);
        assert_eq!(cov(&doc, "DELETE", "", "/**"), Coverage::Undocumented);
    }
}
