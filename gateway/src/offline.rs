//! What the binary does without a running gateway (`oauth3 spec ...`).

use std::io::Read;
use std::path::Path;

use oauth3_policy::{CompileOptions, HostPort, PermitSpec};

use crate::error::{Error, Result};

/// The WIT world of the spec at `path` (`-`: standard input), compiled as
/// the gateway would, with `insecure_upstreams` allowed over plain http.
pub fn spec_wit(path: &Path, insecure_upstreams: &[String]) -> Result<String> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(Error::io("reading the spec from stdin"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?
    };
    let insecure_upstreams = insecure_upstreams
        .iter()
        .map(|s| s.parse::<HostPort>().map_err(|e| Error::Config(format!("--insecure-upstream {s}: {e}"))))
        .collect::<Result<_>>()?;
    let options = CompileOptions { insecure_upstreams, ..CompileOptions::default() };
    Ok(PermitSpec::from_json(&text)?.compile(&options)?.wit())
}
