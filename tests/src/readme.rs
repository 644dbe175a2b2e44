//! The root README's code blocks, which tests run as written.

/// The code block between `<!-- {name}:begin -->` and `<!-- {name}:end -->`
/// in the root README, without its fence.
pub fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme
        .split(&format!("<!-- {name}:begin -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- {name}:end -->")).next())
        .unwrap_or_else(|| panic!("README.md has a {name} block between markers"));
    let block = block.trim();
    let body = block.split_once('\n').map_or("", |(_, rest)| rest);
    body.trim_end().trim_end_matches("```").to_owned()
}
