//! Secret templates such as `Bearer {GITHUB_TOKEN}`: parsed when a spec is
//! compiled, filled in only by egress.

use std::fmt;

/// A parsed inject value: literal text with `{NAME}` secret references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Secret(String),
}

/// A template named a secret the resolver does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {0} is not set")]
pub struct MissingSecret(pub String);

impl Template {
    /// Parses `text`. `{NAME}` names a secret (`NAME` is a letter or `_`
    /// followed by letters, digits or `_`); `{{` and `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("unclosed '{{' at byte {at}; write '{{{{' for a literal brace"))?;
                    let name = &rest[..end];
                    if !is_secret_name(name) {
                        return Err(format!(
                            "'{{{name}}}' is not a secret reference: names are a letter or '_' followed by letters, digits or '_'"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Secret(name.to_owned()));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => return Err(format!("unmatched '}}' at byte {at}; write '}}}}' for a literal brace")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The secret names referenced, in order of appearance.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills in secrets from `lookup`. Only egress should call this.
    pub fn render<S: AsRef<str>>(&self, mut lookup: impl FnMut(&str) -> Option<S>) -> Result<String, MissingSecret> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Secret(name) => {
                    let value = lookup(name).ok_or_else(|| MissingSecret(name.clone()))?;
                    out.push_str(value.as_ref());
                }
            }
        }
        Ok(out)
    }
}

/// Shows the template as written, with secret names (never values).
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => write!(f, "{}", text.replace('{', "{{").replace('}', "}}"))?,
                Part::Secret(name) => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

/// Whether `name` can name a secret: `[A-Za-z_][A-Za-z0-9_]{0,127}`.
pub fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True when `text` contains something that looks like a `{NAME}` reference;
/// used to refuse templates outside `inject`.
pub(crate) fn mentions_template(text: &str) -> bool {
    text.split('{').skip(1).any(|rest| rest.split_once('}').is_some_and(|(name, _)| is_secret_name(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_secrets_and_escaped_braces() {
        let t = Template::parse("Bearer {TOKEN} {{x}}").unwrap();
        assert_eq!(t.secrets().collect::<Vec<_>>(), ["TOKEN"]);
        assert_eq!(t.render(|n| (n == "TOKEN").then_some("abc")).unwrap(), "Bearer abc {x}");
        assert_eq!(t.to_string(), "Bearer {TOKEN} {{x}}");
    }

    #[test]
    fn reports_missing_secret_by_name() {
        let t = Template::parse("{A}{B}").unwrap();
        assert_eq!(t.render(|n| (n == "A").then_some("1")), Err(MissingSecret("B".into())));
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in ["{", "}", "{1X}", "{A B}", "{}", "x{A"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
