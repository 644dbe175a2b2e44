//! `wit()`: the WIT world a permit's components are built against. One
//! interface per integration, named after it, whose doc comments list the
//! rules; the shared types live in `wit/scoped-fetch.wit` ([`SCOPED_FETCH_WIT`]).

use std::fmt::Write;

use crate::compile::CompiledPermit;

/// The shared `oauth3:scoped-fetch` package every generated world uses.
pub const SCOPED_FETCH_WIT: &str = include_str!("../../wit/scoped-fetch.wit");

impl CompiledPermit {
    /// The permit's world, package `oauth3:permit`, world `permit`. Resolve it
    /// together with [`SCOPED_FETCH_WIT`].
    pub fn wit(&self) -> String {
        let mut out = String::from("package oauth3:permit;\n");
        let summary = self.describe();
        for (integration, described) in self.integrations.iter().zip(&summary.integrations) {
            let name = wit_name(integration.name.as_str());
            let _ =
                writeln!(out, "\n/// `{}`: calls to {}.\n///\n/// Allowed:", integration.name, integration.base_url());
            for rule in &described.rules {
                let _ = writeln!(out, "/// - {}", one_line(&rule.text));
            }
            let _ = writeln!(
                out,
                "interface {name} {{\n    use oauth3:scoped-fetch/types@0.1.0.{{request-options, response, call-error}};\n\n    \
                 /// Sends one request through the gateway, which checks it against the\n    \
                 /// rules above and adds credentials this component never sees.\n    \
                 call: func(method: string, path: string, options: request-options) -> result<response, call-error>;\n}}"
            );
        }
        let _ = writeln!(out, "\n/// A component for permit {}.\nworld permit {{", self.hash);
        for integration in self.integrations.iter() {
            let _ = writeln!(out, "    import {};", wit_name(integration.name.as_str()));
        }
        out.push_str("    /// Runs the component: `args` is the execution's arguments as JSON;\n");
        out.push_str("    /// the result is its output.\n");
        out.push_str("    export run: func(args: string) -> result<string, string>;\n}\n");
        out
    }
}

/// `slack_chat` → `slack-chat`, `%`-escaped where it is a WIT keyword.
/// Valid integration names are lower-case words joined by `_`, each starting
/// with a letter, so this is always a valid WIT identifier.
fn wit_name(name: &str) -> String {
    let kebab = name.replace('_', "-");
    if WIT_KEYWORDS.contains(&kebab.as_str()) { format!("%{kebab}") } else { kebab }
}

fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

const WIT_KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "error-context",
    "export",
    "f32",
    "f64",
    "flags",
    "float32",
    "float64",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
];
