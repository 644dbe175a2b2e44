//! Reading a fetched doc's bytes: text in its declared charset (UTF-8 when
//! none is named), then an API description (OpenAPI 3.x / Swagger 2.0, JSON
//! or YAML), HTML converted to text (scripts and styles dropped), Markdown or
//! plain text. Binary content is refused.

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use url::Url;

use crate::error::{DraftError, Result};
use crate::model::{DocContent, DocKind};
use crate::openapi::ApiDoc;

/// Width HTML is wrapped at when converted to text.
const HTML_TEXT_WIDTH: usize = 200;

/// Reads `body`, fetched for `given` from `final_url` with `content_type`.
pub(super) async fn read(
    given: &str,
    final_url: &Url,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(DocKind, DocContent)> {
    let unusable = |why: String| DraftError::DocUnusable(format!("{given}: {why}"));
    let essence = content_type.map(essence).unwrap_or_default();
    let text = decode(content_type, body).await.map_err(&unusable)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let ext = extension(final_url);

    let json_declared = essence.ends_with("json") || ext == "json";
    let yaml_declared = essence.ends_with("yaml") || essence.ends_with("yml") || ext == "yaml" || ext == "yml";
    let html_declared = matches!(essence.as_str(), "text/html" | "application/xhtml+xml");
    if (html_declared || looks_like_html(text)) && !json_declared && !yaml_declared {
        let converted = html2text::from_read(text.as_bytes(), HTML_TEXT_WIDTH)
            .map_err(|e| unusable(format!("the HTML could not be converted to text ({e})")))?;
        return Ok((DocKind::Html, DocContent::Text(converted)));
    }

    let trimmed = text.trim_start();
    if json_declared || trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                let pretty = || serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_owned());
                return structured(&value, final_url, pretty).map_err(unusable);
            }
            Err(e) if json_declared && !yaml_declared => return Err(unusable(format!("not valid JSON ({e})"))),
            Err(_) => {}
        }
    }
    let api_like = looks_like_api_yaml(text);
    if yaml_declared || api_like {
        match parse_yaml(text) {
            Ok(value) => return structured(&value, final_url, || text.to_owned()).map_err(unusable),
            Err(e) if api_like => return Err(unusable(format!("not valid YAML ({e})"))),
            Err(_) => {}
        }
    }
    let markdown = matches!(essence.as_str(), "text/markdown" | "text/x-markdown")
        || matches!(ext.as_str(), "md" | "markdown" | "mdx");
    let kind = if markdown { DocKind::Markdown } else { DocKind::Text };
    Ok((kind, DocContent::Text(text.to_owned())))
}

/// A parsed JSON or YAML value: an API description when it says it is one
/// (`openapi` or `swagger` at the top), otherwise text.
fn structured(
    value: &Value,
    final_url: &Url,
    as_text: impl FnOnce() -> String,
) -> Result<(DocKind, DocContent), String> {
    let swagger = value.get("swagger").is_some();
    if (swagger || value.get("openapi").is_some())
        && let Some(api) = ApiDoc::from_value(value, final_url)?
    {
        let kind = if swagger { DocKind::Swagger } else { DocKind::Openapi };
        return Ok((kind, DocContent::Api(Box::new(api))));
    }
    Ok((DocKind::Text, DocContent::Text(as_text())))
}

/// YAML into a JSON value (non-string keys such as `200:` become strings,
/// merge keys are applied).
fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    // A failed merge leaves the document as written; the parser judges it.
    let _ = yaml.apply_merge();
    serde_json::to_value(yaml).map_err(|e| e.to_string())
}

/// The body as text: strict UTF-8 unless the Content-Type names another
/// charset; refused when it holds control characters (binary).
async fn decode(content_type: Option<&str>, body: &[u8]) -> Result<String, String> {
    let charset = content_type.and_then(|ct| param(ct, "charset"));
    let text = match charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8 text (binary?)".to_owned())?
        }
        Some(label) => {
            // reqwest's charset decoding (encoding_rs), over bytes already read.
            let response = http::Response::builder()
                .header(CONTENT_TYPE, content_type.unwrap_or_default())
                .body(body.to_vec())
                .map_err(|_| format!("unreadable charset {label}"))?;
            let text = reqwest::Response::from(response)
                .text_with_charset("utf-8")
                .await
                .map_err(|_| format!("not readable as {label} text"))?;
            if text.contains('\u{fffd}') {
                return Err(format!("not valid {label} text"));
            }
            text
        }
    };
    if text.chars().any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')) {
        return Err("binary, not text".into());
    }
    Ok(text)
}

/// `type/subtype`, lower case.
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// A Content-Type parameter's value, lower case, unquoted.
fn param(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// The last path segment's extension, lower case.
fn extension(url: &Url) -> String {
    let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default();
    last.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default()
}

fn looks_like_html(text: &str) -> bool {
    let start: String = text.trim_start().chars().take(9).collect::<String>().to_ascii_lowercase();
    start.starts_with("<!doctype") || start.starts_with("<html")
}

/// A top-level `openapi:` or `swagger:` key on a line of its own.
fn looks_like_api_yaml(text: &str) -> bool {
    text.lines().any(|line| {
        ["openapi", "swagger", "\"openapi\"", "\"swagger\"", "'openapi'", "'swagger'"]
            .iter()
            .any(|key| line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn html_loses_scripts_and_styles() {
        let html = "<!DOCTYPE html><html><head><style>.x{color:red}</style><script>var secret = 1;</script></head>\
                    <body><h1>Issues API</h1><script>alert('hi')</script><style>p{}</style><p>GET /issues</p></body></html>";
        let (kind, content) = read("u", &url("https://d.example/x"), None, html.as_bytes()).await.unwrap();
        assert_eq!(kind, DocKind::Html);
        let DocContent::Text(text) = content else { panic!("text expected") };
        assert!(text.contains("Issues API") && text.contains("GET /issues"), "{text}");
        assert!(!text.contains("secret") && !text.contains("alert") && !text.contains("color"), "{text}");
    }

    #[tokio::test]
    async fn latin1_is_decoded_and_binary_refused() {
        let (_, content) =
            read("u", &url("https://d.example/x.txt"), Some("text/plain; charset=ISO-8859-1"), b"caf\xe9")
                .await
                .unwrap();
        assert_eq!(content, DocContent::Text("café".into()));
        let err = read("u", &url("https://d.example/x"), None, b"\x89PNG\r\n\x1a\n\0\0").await.unwrap_err();
        assert!(matches!(err, DraftError::DocUnusable(_)), "{err:?}");
        let err = read("u", &url("https://d.example/x"), None, b"abc\0def").await.unwrap_err();
        assert!(err.to_string().contains("binary"), "{err}");
    }

    #[test]
    fn yaml_with_numeric_keys_reads_as_json() {
        let value = parse_yaml(
            "openapi: 3.0.0\npaths:\n  /x:\n    get:\n      responses:\n        200:\n          description: ok\n",
        )
        .unwrap();
        assert_eq!(value["paths"]["/x"]["get"]["responses"]["200"]["description"], "ok");
    }

    #[test]
    fn content_type_parts() {
        assert_eq!(essence("Application/JSON; charset=utf-8"), "application/json");
        assert_eq!(param("text/plain; Charset=\"UTF-8\"", "charset").as_deref(), Some("utf-8"));
        assert_eq!(extension(&url("https://x.example/a/spec.YAML?x=1")), "yaml");
        assert!(looks_like_api_yaml("# c\nswagger: '2.0'\n"));
        assert!(!looks_like_api_yaml("  openapi: 3\n"));
    }
}
