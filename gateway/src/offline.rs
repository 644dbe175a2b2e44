//! What the binary does without a running gateway (`oauth3 spec ...`), on
//! `oauth3-policy` alone.

use std::io::Read;
use std::path::Path;

use oauth3_policy::{CompileOptions, CompiledPermit, HostPort, PermitSpec};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::views::SpecView;

/// The WIT world of the spec at `path` (`-`: standard input), compiled as
/// the gateway would, with `insecure_upstreams` allowed over plain http.
pub fn spec_wit(path: &Path, insecure_upstreams: &[String]) -> Result<String> {
    Ok(compile(&read(path)?, insecure_upstreams)?.wit())
}

/// `oauth3 spec lint`'s verdict.
#[derive(Debug, Serialize)]
pub struct Lint {
    /// Whether the gateway would take it.
    pub valid: bool,
    /// What an approval would bind, when valid.
    pub spec_hash: Option<String>,
    /// What the owner will see flagged: one line per integration risk
    /// (`name: risk`) and per flagged rule (`name: rule [risk; …]`).
    pub risks: Vec<String>,
    /// What is wrong with it, when not valid.
    pub error: Option<String>,
}

/// Checks the spec at `path` as the gateway would. Errs only when it cannot
/// be read or an option is malformed; a bad spec is a [`Lint`] with `valid`
/// false.
pub fn spec_lint(path: &Path, insecure_upstreams: &[String]) -> Result<Lint> {
    let text = read(path)?;
    let options = options(insecure_upstreams)?;
    let compiled = PermitSpec::from_json(&text).map_err(Error::from).and_then(|spec| Ok(spec.compile(&options)?));
    Ok(match compiled {
        Ok(compiled) => {
            let summary = compiled.describe();
            let mut risks = Vec::new();
            for integration in &summary.integrations {
                for risk in &integration.risks {
                    risks.push(format!("{}: {}", integration.name, risk.message()));
                }
                for rule in integration.rules.iter().filter(|rule| !rule.risks.is_empty()) {
                    let flagged: Vec<&str> = rule.risks.iter().map(|risk| risk.message()).collect();
                    risks.push(format!("{}: {} [{}]", integration.name, rule.text, flagged.join("; ")));
                }
            }
            Lint { valid: true, spec_hash: Some(compiled.spec_hash().to_string()), risks, error: None }
        }
        Err(error) => Lint { valid: false, spec_hash: None, risks: Vec::new(), error: Some(error.chain().to_string()) },
    })
}

/// The spec at `path` as the gateway shows it to the owner: the view
/// `POST /draft` answers with.
pub fn spec_describe(path: &Path, insecure_upstreams: &[String]) -> Result<SpecView> {
    Ok(SpecView::of(&compile(&read(path)?, insecure_upstreams)?))
}

fn compile(text: &str, insecure_upstreams: &[String]) -> Result<CompiledPermit> {
    Ok(PermitSpec::from_json(text)?.compile(&options(insecure_upstreams)?)?)
}

fn options(insecure_upstreams: &[String]) -> Result<CompileOptions> {
    let insecure_upstreams = insecure_upstreams
        .iter()
        .map(|s| s.parse::<HostPort>().map_err(|e| Error::Config(format!("--insecure-upstream {s}: {e}"))))
        .collect::<Result<_>>()?;
    Ok(CompileOptions { insecure_upstreams, ..CompileOptions::default() })
}

/// The spec at `path` (`-`: standard input), as text.
fn read(path: &Path) -> Result<String> {
    let context = if path == Path::new("-") {
        "reading the spec from stdin".to_owned()
    } else {
        format!("reading {}", path.display())
    };
    let bytes = read_input(path).map_err(Error::io(context.clone()))?;
    String::from_utf8(bytes).map_err(|_| Error::Config(format!("{context}: not UTF-8")))
}

/// The bytes of the file a command is given, or of standard input for `-`,
/// as every command that takes a file reads it.
pub(crate) fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(path)
}

/// The JSON file a client command is given (`-`: standard input), parsed.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::result::Result<T, String> {
    let bytes = read_input(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
