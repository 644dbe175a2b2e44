//! `wit()`: the WIT world a permit's components are built against. One
//! interface per integration, named after it, whose doc comments list the
//! rules; the shared types live in `wit/scoped-fetch.wit` ([`SCOPED_FETCH_WIT`]),
//! which uses `wasi:io/poll` ([`WASI_IO_POLL_WIT`]).

use std::fmt::Write;

use crate::compile::CompiledPermit;
use crate::names::IntegrationName;

/// The shared `oauth3:scoped-fetch` package every generated world uses.
pub const SCOPED_FETCH_WIT: &str = include_str!("../../wit/scoped-fetch.wit");

/// The `wasi:io@0.2.0` `poll` interface [`SCOPED_FETCH_WIT`] uses for `pollable`.
pub const WASI_IO_POLL_WIT: &str = include_str!("../../wit/deps/io/poll.wit");

/// The package of every permit's world: a component for a permit imports
/// `oauth3:permit/<integration>` (see [`IntegrationName::wit_interface`]).
pub const PERMIT_PACKAGE: &str = "oauth3:permit";

/// The shared types interface, as components import it.
pub const SCOPED_FETCH_TYPES: &str = "oauth3:scoped-fetch/types@0.1.0";

impl IntegrationName {
    /// The name of the integration's WIT interface: `slack_chat` →
    /// `slack-chat`. Valid integration names are lower-case words joined by
    /// `_`, each starting with a letter, so this is a WIT identifier (one
    /// that is a keyword is written `%list` in WIT text).
    pub fn wit_interface(&self) -> String {
        self.as_ref().replace('_', "-")
    }

    /// [`IntegrationName::wit_interface`] as an identifier in WIT text:
    /// `%`-escaped where it is a keyword (`%list`).
    pub fn wit_identifier(&self) -> String {
        let kebab = self.wit_interface();
        if WIT_KEYWORDS.contains(&kebab.as_str()) { format!("%{kebab}") } else { kebab }
    }

    /// The import a component for the permit uses to call this integration,
    /// e.g. `oauth3:permit/slack-chat`.
    pub fn wit_import(&self) -> String {
        format!("{PERMIT_PACKAGE}/{}", self.wit_interface())
    }
}

impl CompiledPermit {
    /// The permit's world (package `oauth3:permit`, world `permit`) as one
    /// self-contained WIT document: the permit's package first, then the
    /// packages it uses (`oauth3:scoped-fetch`, `wasi:io`) nested, so
    /// `wit_bindgen::generate!` and `wasm-tools` accept it as is.
    pub fn wit(&self) -> String {
        let mut out = format!("package {PERMIT_PACKAGE};\n");
        let summary = self.describe();
        for (integration, described) in self.integrations.iter().zip(&summary.integrations) {
            let _ =
                writeln!(out, "\n/// `{}`: calls to {}.\n///\n/// Allowed:", integration.name, integration.base_url());
            for rule in &described.rules {
                let _ = writeln!(out, "/// - {}", one_line(&rule.text));
            }
            interface(&mut out, &integration.name);
        }
        let _ = writeln!(out, "\n/// A component for permit {}.\nworld permit {{", self.hash);
        for integration in self.integrations.iter() {
            let _ = writeln!(out, "    import {};", integration.name.wit_identifier());
        }
        out.push_str("    /// Runs the component: `args` is the execution's arguments as JSON;\n");
        out.push_str("    /// the result is its output.\n");
        out.push_str("    export run: func(args: string) -> result<string, string>;\n}\n");
        out.push('\n');
        out.push_str(&nested(SCOPED_FETCH_WIT));
        out.push('\n');
        out.push_str(&nested(WASI_IO_POLL_WIT));
        out
    }
}

/// The `oauth3:permit` package with one interface per name (no world, no
/// rule docs), self-contained like [`CompiledPermit::wit`]: what tooling
/// needs to build against or adapt to the integrations' interfaces, which
/// depend on the names alone.
pub fn interfaces_wit(names: &[IntegrationName]) -> String {
    let mut out = format!("package {PERMIT_PACKAGE};\n");
    for name in names {
        out.push('\n');
        interface(&mut out, name);
    }
    out.push('\n');
    out.push_str(&nested(SCOPED_FETCH_WIT));
    out.push('\n');
    out.push_str(&nested(WASI_IO_POLL_WIT));
    out
}

/// One integration's interface: `call` and `fetch`.
fn interface(out: &mut String, name: &IntegrationName) {
    let _ = writeln!(
        out,
        "interface {} {{\n    \
         use oauth3:scoped-fetch/types@0.1.0.{{request-options, response, call-error, future-response}};\n\n    \
         /// Sends one request through the gateway, which checks it against the\n    \
         /// permit's rules and adds credentials this component never sees, and\n    \
         /// waits for the response.\n    \
         call: func(method: string, path: string, options: request-options) -> result<response, call-error>;\n\n    \
         /// Starts the same request and returns at once; wait on the result's\n    \
         /// `subscribe()` pollable to run several calls concurrently.\n    \
         fetch: func(method: string, path: string, options: request-options) -> future-response;\n}}",
        name.wit_identifier()
    );
}

/// A WIT file `package p;` + body, as a nested `package p { body }`.
fn nested(file: &str) -> String {
    let (head, body) = file.split_once('\n').unwrap_or((file, ""));
    let package = head.trim().trim_start_matches("package ").trim_end_matches(';');
    let mut out = format!("package {package} {{\n");
    for line in body.trim_matches('\n').lines() {
        if !line.is_empty() {
            out.push_str("    ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("}\n");
    out
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
