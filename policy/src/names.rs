//! Integration names: one grammar, used by the spec, the sandbox (each name
//! is a JavaScript function and a WIT interface) and the drafters.

/// Lower-case words joined by `_` (so the WIT name is the same words joined by
/// `-`), not a JavaScript reserved word or a sandbox global.
pub fn check_integration_name(name: &str) -> Result<(), String> {
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
