//! Per-segment path globs: `*` is exactly one segment, `**` any number of
//! segments (zero included), anything else is a literal segment in normal
//! form. Matching compares normal-form segments, so no decoding is needed.

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
                    _ if raw.contains('*') => {
                        return Err(format!(
                            "segment '{raw}' mixes '*' with text; '*' and '**' must be whole segments"
                        ));
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
    fn rejects_malformed_globs() {
        for bad in ["repos", "/repos/", "/a//b", "/issue-*", "/{owner}/x", "/**/**", "/a/../b", "/a%2Fb"] {
            assert!(PathGlob::parse(bad).is_err(), "{bad}");
        }
    }
}
