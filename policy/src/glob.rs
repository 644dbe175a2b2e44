//! Per-segment path globs: `*` is exactly one segment, `**` any number of
//! segments (zero included), one `*` inside a segment (`*.json`, `CA*`)
//! one segment with that fixed text around a non-empty rest, anything else
//! a literal segment in normal form. Matching compares normal-form
//! segments, so no decoding is needed.

use std::fmt;

use crate::path;

/// A compiled path glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    segments: Box<[Seg]>,
    /// Fixed-length globs (no `**`) only match paths of exactly this length.
    has_double_star: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(Box<str>),
    Star,
    DoubleStar,
    /// One segment that starts with `prefix` and ends with `suffix`, with
    /// at least one byte between them (Twilio's `{Sid}.json` as `*.json`).
    Affix {
        prefix: Box<str>,
        suffix: Box<str>,
    },
}

impl PathGlob {
    /// Parses a glob such as `/repos/*/issues/**`. The leading `/` is required.
    pub fn parse(glob: &str) -> Result<PathGlob, String> {
        let rest = glob.strip_prefix('/').ok_or("must start with '/'")?;
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for raw in rest.split('/') {
                let seg = match raw {
                    "*" => Seg::Star,
                    "**" if segments.last() == Some(&Seg::DoubleStar) => {
                        return Err("has '**/**'; one '**' already matches any number of segments".into());
                    }
                    "**" => Seg::DoubleStar,
                    _ if raw.contains("**") || raw.matches('*').count() > 1 => {
                        return Err(format!(
                            "segment '{raw}' has more than one '*'; '**' must be a whole segment, and a segment \
                             may hold one '*' with fixed text around it"
                        ));
                    }
                    _ if raw.contains('*') => {
                        let (prefix, suffix) = raw.split_once('*').unwrap_or((raw, ""));
                        for piece in [prefix, suffix].into_iter().filter(|p| !p.is_empty()) {
                            if piece.contains('{') {
                                return Err(format!(
                                    "segment '{raw}' looks like a path template; use '*' for the parameter"
                                ));
                            }
                            path::check_segment(piece).map_err(|why| format!("segment '{raw}' {why}"))?;
                        }
                        Seg::Affix { prefix: prefix.into(), suffix: suffix.into() }
                    }
                    _ if raw.contains('{') => {
                        return Err(format!("segment '{raw}' looks like a path template; use '*' for one segment"));
                    }
                    _ => {
                        path::check_segment(raw).map_err(|why| format!("segment '{raw}' {why}"))?;
                        Seg::Literal(raw.into())
                    }
                };
                segments.push(seg);
            }
        }
        let has_double_star = segments.contains(&Seg::DoubleStar);
        Ok(PathGlob { segments: segments.into(), has_double_star })
    }

    /// True when `path` (normal-form segments) matches.
    pub fn matches(&self, path: &[&str]) -> bool {
        if !self.has_double_star {
            return self.segments.len() == path.len() && self.segments.iter().zip(path).all(|(g, p)| seg_matches(g, p));
        }
        // Wildcard matching with backtracking to the last `**`: O(n·m) worst case.
        let (glob, mut g, mut p) = (&self.segments[..], 0, 0);
        let mut back: Option<(usize, usize)> = None;
        while p < path.len() {
            if g < glob.len() && glob[g] == Seg::DoubleStar {
                back = Some((g, p));
                g += 1;
            } else if g < glob.len() && seg_matches(&glob[g], path[p]) {
                g += 1;
                p += 1;
            } else if let Some((bg, bp)) = back {
                back = Some((bg, bp + 1));
                g = bg + 1;
                p = bp + 1;
            } else {
                return false;
            }
        }
        glob[g..].iter().all(|s| *s == Seg::DoubleStar)
    }

    /// True when the glob contains `**`.
    pub fn has_double_star(&self) -> bool {
        self.has_double_star
    }

    /// True when the glob contains `*` or `**`.
    pub fn has_wildcard(&self) -> bool {
        self.segments.iter().any(|s| !matches!(s, Seg::Literal(_)))
    }
}

fn seg_matches(glob: &Seg, segment: &str) -> bool {
    match glob {
        Seg::Literal(lit) => **lit == *segment,
        Seg::Star | Seg::DoubleStar => true,
        Seg::Affix { prefix, suffix } => {
            // The suffix must start at a character, not inside a
            // percent-escape: `x*20` is not `x%20`.
            let bytes = segment.as_bytes();
            let at = bytes.len().saturating_sub(suffix.len());
            let inside_escape = bytes[..at].ends_with(b"%") || (at >= 2 && bytes[at - 2] == b'%');
            segment.len() > prefix.len() + suffix.len()
                && segment.starts_with(&**prefix)
                && segment.ends_with(&**suffix)
                && !inside_escape
        }
    }
}

impl fmt::Display for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for seg in self.segments.iter() {
            match seg {
                Seg::Literal(lit) => write!(f, "/{lit}")?,
                Seg::Star => f.write_str("/*")?,
                Seg::DoubleStar => f.write_str("/**")?,
                Seg::Affix { prefix, suffix } => write!(f, "/{prefix}*{suffix}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        PathGlob::parse(glob).unwrap().matches(&path::segments(path).unwrap())
    }

    #[test]
    fn star_is_exactly_one_segment() {
        assert!(m("/repos/*/issues", "/repos/o/issues"));
        assert!(!m("/repos/*/issues", "/repos/issues"));
        assert!(!m("/repos/*/issues", "/repos/o/r/issues"));
    }

    #[test]
    fn double_star_is_any_number_of_segments() {
        assert!(m("/repos/**", "/repos"));
        assert!(m("/repos/**", "/repos/o/r/issues"));
        assert!(m("/a/**/z", "/a/z"));
        assert!(m("/a/**/z", "/a/b/c/z"));
        assert!(!m("/a/**/z", "/a/b/c"));
        assert!(m("/**/c/**/e", "/a/b/c/d/e"));
        assert!(!m("/repos/**", "/users/x"));
    }

    #[test]
    fn root_glob_matches_only_root() {
        assert!(m("/", "/"));
        assert!(!m("/", "/a"));
    }

    #[test]
    fn a_star_inside_a_segment_matches_one_segment_with_that_text_around_it() {
        assert!(m("/Calls/*.json", "/Calls/CA123.json"));
        assert!(m("/issue-*", "/issue-42"));
        assert!(m("/v*/users", "/v2/users"));
        // Something must stand for the star, and only within the segment.
        assert!(!m("/Calls/*.json", "/Calls/.json"));
        assert!(!m("/Calls/*.json", "/Calls/CA123.xml"));
        assert!(!m("/Calls/*.json", "/Calls/CA1/x.json"));
        assert!(!m("/Calls/*.json", "/Calls.json"));
        assert!(!m("/issue-*", "/issue-"));
        // Text is matched by characters, not inside a percent-escape.
        assert!(!m("/x*20", "/x%20"));
        assert!(m("/x*20", "/x%2020"));
        assert!(!m("/v*1", "/v%C3%A1"));
        assert_eq!(PathGlob::parse("/Calls/*.json").unwrap().to_string(), "/Calls/*.json");
    }

    #[test]
    fn rejects_malformed_globs() {
        for bad in [
            "repos",
            "/repos/",
            "/a//b",
            "/{owner}/x",
            "/**/**",
            "/a/../b",
            "/a%2Fb",
            "/a*b*c",
            "/a**",
            "/**.json",
            "/{Sid}*.json",
            "/..*",
            "/*%2F",
            "/*%zz",
        ] {
            assert!(PathGlob::parse(bad).is_err(), "{bad}");
        }
    }
}
