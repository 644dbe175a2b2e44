//! Integration names: one grammar, used by the spec, the sandbox (each name
//! is a JavaScript function and a WIT interface) and the drafters.

use std::fmt;
use std::str::FromStr;

/// An integration's name, parsed once in the one grammar: lower-case words
/// joined by `_` (so the WIT name is the same words joined by `-`), at most
/// 64 bytes, not a JavaScript reserved word or a sandbox global.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationName(String);

impl IntegrationName {
    /// `text` as a name, or why it is not one (quoting it).
    pub fn parse(text: &str) -> Result<IntegrationName, String> {
        check(text).map(|()| IntegrationName(text.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IntegrationName {
    type Err = String;

    fn from_str(text: &str) -> Result<IntegrationName, String> {
        IntegrationName::parse(text)
    }
}

impl fmt::Display for IntegrationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for IntegrationName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IntegrationName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for IntegrationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for IntegrationName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for IntegrationName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<IntegrationName, D::Error> {
        let text = String::deserialize(deserializer)?;
        IntegrationName::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn check(name: &str) -> Result<(), String> {
    let words_ok = !name.is_empty()
        && name.len() <= 64
        && name.split('_').all(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !words_ok {
        return Err(format!(
            "'{name}' is not allowed: use lower-case words joined by '_', each starting with a letter (e.g. github, slack_chat), at most 64 bytes"
        ));
    }
    if RESERVED_INTEGRATION_NAMES.contains(&name) {
        return Err(format!("'{name}' is a JavaScript reserved word or a sandbox global; choose another name"));
    }
    Ok(())
}

/// Names an integration may not take: JavaScript reserved words and literals,
/// and the sandbox's globals (and names agents might expect to find there).
pub const RESERVED_INTEGRATION_NAMES: &[&str] = &[
    // JavaScript reserved words and literals
    "arguments",
    "async",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "of",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "var",
    "void",
    "while",
    "with",
    "yield",
    // sandbox globals, and names agents might expect to find there
    "args",
    "console",
    "escape",
    "exports",
    "fetch",
    "global",
    "module",
    "oauth3",
    "process",
    "require",
    "self",
    "unescape",
    "window",
];
