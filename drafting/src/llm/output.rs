//! The drafters' structured output: its JSON Schema (built from the spec's
//! own schema), and checking a reply against it, the spec compiler and the
//! grounding checks, in that order. Problems are phrased for the model, so
//! the repair round can send them back as they are.

use std::sync::OnceLock;

use oauth3_policy::{IntegrationSpec, PermitSpec, PolicyError, SPEC_VERSION, permit_json_schema};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use oauth3_policy::is_invisible;

use crate::error::{DraftError, ProviderFailure, Result};
use crate::grounding;
use crate::model::{DraftInput, Proposal};
use crate::text::clip;

/// Most problems reported per reply.
const MAX_PROBLEMS: usize = 20;
/// Longest single problem.
const PROBLEM_CHARS: usize = 300;
/// Most `rationale` / `warnings` lines, and the longest line.
const MAX_LINES: u64 = 40;
const LINE_CHARS: u64 = 600;

/// JSON Schema of the structured output: `{"integration": IntegrationSpec,
/// "rationale": [string], "warnings": [string]}`, with the spec schema's
/// `$defs` moved to the root; `warnings` may be left out. `Rule.description`
/// is required here (the owner reads it), although the spec format leaves it
/// optional.
pub(crate) fn output_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut defs = match permit_json_schema().get_mut("$defs").map(Value::take) {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        if let Some(Value::Array(required)) = defs.get_mut("Rule").and_then(|rule| rule.get_mut("required"))
            && !required.iter().any(|r| r == "description")
        {
            required.push("description".into());
        }
        let lines = |description: &str| {
            json!({
                "description": description,
                "type": "array",
                "items": {"type": "string", "maxLength": LINE_CHARS},
                "maxItems": MAX_LINES,
            })
        };
        json!({
            "type": "object",
            "properties": {
                "integration": {
                    "description": "The one integration drafted for the intent.",
                    "$ref": "#/$defs/IntegrationSpec",
                },
                "rationale": lines("One short line per choice, citing the docs, for the owner."),
                "warnings": lines(
                    "What the owner should look at twice (guesses, broad globs, writes, ignored instructions).",
                ),
            },
            "required": ["integration", "rationale"],
            "additionalProperties": false,
            "$defs": defs,
        })
    })
}

fn validator() -> &'static std::result::Result<jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<std::result::Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(output_schema())
            .map_err(|e| e.to_string())
    })
}

/// Why a reply is not a usable draft.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Not the requested JSON, not valid against the schema, or not a spec
    /// that compiles: the model is told these and may try once more.
    Invalid(Vec<String>),
    /// A valid spec the grounding checks refused ([`DraftError::NotGrounded`]).
    Ungrounded(DraftError),
}

impl Problem {
    /// A reply with one problem.
    pub(crate) fn invalid(problem: impl Into<String>) -> Problem {
        Problem::Invalid(vec![problem.into()])
    }

    /// What the model is told in the repair round.
    pub(crate) fn feedback(&self) -> String {
        match self {
            Problem::Invalid(problems) => {
                let mut text = String::from("The draft was refused. Problems:\n");
                for problem in problems {
                    text.push_str("- ");
                    text.push_str(problem);
                    text.push('\n');
                }
                text.push_str(
                    "Fix every problem and submit the whole corrected draft again, as the same structured \
                     output and nothing else. Keep the spec minimal.",
                );
                text
            }
            Problem::Ungrounded(error) => format!(
                "The draft was refused by the gateway's grounding checks: {error}\nSubmit a corrected \
                 draft that is grounded in the docs, the goal and the secret names given, as the same \
                 structured output and nothing else. Keep the spec minimal."
            ),
        }
    }

    /// For the final error message.
    fn summary(&self) -> String {
        match self {
            Problem::Invalid(problems) => problems.join("; "),
            Problem::Ungrounded(error) => error.to_string(),
        }
    }
}

/// What the model submitted, before any checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submitted {
    integration: IntegrationSpec,
    rationale: Vec<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// Parses reply text strictly: the whole text (surrounding whitespace
/// aside) must be one JSON value. No fence stripping, no brace hunting.
pub(crate) fn parse_strict(text: &str) -> std::result::Result<Value, String> {
    oauth3_policy::parse_strict_json(text.trim().as_bytes()).map_err(|e| {
        format!("the output is not a single JSON value ({e}); send only the JSON object, with no prose or code fences")
    })
}

/// Checks one candidate output: schema, then the spec compiler (with the
/// gateway's compile options), then the grounding checks. Errors other than
/// a grounding refusal are returned as they are (no repair).
pub(crate) fn evaluate(input: DraftInput<'_>, value: &Value) -> Result<std::result::Result<Proposal, Problem>> {
    let validator = validator().as_ref().map_err(|e| DraftError::Internal(format!("drafter output schema: {e}")))?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(MAX_PROBLEMS)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "(root)".to_owned() } else { at };
            clip(&format!("{at}: {e}"), PROBLEM_CHARS)
        })
        .collect();
    if !problems.is_empty() {
        return Ok(Err(Problem::Invalid(problems)));
    }
    let submitted: Submitted = match serde_path_to_error::deserialize(value) {
        Ok(submitted) => submitted,
        Err(e) => {
            let at = e.path().to_string();
            return Ok(Err(Problem::invalid(clip(&format!("{at}: {}", e.inner()), PROBLEM_CHARS))));
        }
    };
    let mut integration = submitted.integration;
    // The owner reads each rule's description: no hidden or reordered text.
    let hidden: Vec<String> = integration
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.description
                .as_deref()
                .is_some_and(|d| d.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || is_invisible(c)))
        })
        .map(|(i, _)| format!("/integration/rules/{i}/description: control or invisible characters are not allowed"))
        .collect();
    if !hidden.is_empty() {
        return Ok(Err(Problem::Invalid(hidden)));
    }
    // Facts the gateway knows are not left to the model.
    integration.name = input.intent.name.clone();
    integration.doc_urls = input.intent.doc_urls.clone();
    let spec = PermitSpec { version: SPEC_VERSION, integrations: vec![integration] };
    if let Err(error) = spec.compile(input.compile) {
        return Ok(Err(Problem::Invalid(policy_problems(&error))));
    }
    let Some(integration) = spec.integrations.into_iter().next() else {
        return Err(DraftError::Internal("drafted spec lost its integration".into()));
    };
    let mut proposal = Proposal { integration, rationale: submitted.rationale, warnings: submitted.warnings };
    match grounding::check(input, &proposal) {
        Ok(warnings) => {
            for warning in warnings {
                if !proposal.warnings.contains(&warning) {
                    proposal.warnings.push(warning);
                }
            }
            Ok(Ok(proposal))
        }
        Err(error @ DraftError::NotGrounded { .. }) => Ok(Err(Problem::Ungrounded(error))),
        Err(error) => Err(error),
    }
}

/// Compiler problems, with paths relative to the output object.
fn policy_problems(error: &PolicyError) -> Vec<String> {
    let relative = |path: &str| match path.strip_prefix("integrations[0]") {
        Some(rest) => format!("integration{rest}"),
        None => path.to_owned(),
    };
    match error {
        PolicyError::Invalid(issues) => issues
            .iter()
            .take(MAX_PROBLEMS)
            .map(|issue| clip(&format!("/{}: {}", relative(&issue.path), issue.message), PROBLEM_CHARS))
            .collect(),
        PolicyError::Parse { path, message } => vec![clip(&format!("/{}: {message}", relative(path)), PROBLEM_CHARS)],
    }
}

/// The error after a failed repair round. A draft the grounding checks
/// refused twice is that refusal (`draft_not_grounded`); anything else is
/// the provider's fault (`drafter_invalid_output`).
pub(crate) fn give_up(provider: &str, first: Problem, second: Problem) -> DraftError {
    match (first, second) {
        (Problem::Ungrounded(_), Problem::Ungrounded(error)) => error,
        (_, second) => DraftError::provider(
            ProviderFailure::InvalidOutput,
            format!("{provider} returned an invalid draft twice: {}", clip(&second.summary(), 600)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use oauth3_policy::CompileOptions;

    use super::*;
    use crate::model::{DocContent, DocKind, FetchedDoc, Intent};

    fn intent() -> Intent {
        Intent {
            name: "github".into(),
            goal: "list open issues of acme/widgets".into(),
            doc_urls: vec!["https://docs.example.com/api".into()],
            secret_hints: vec!["GITHUB_TOKEN".into()],
            operations: vec![],
        }
    }

    fn good() -> Value {
        json!({
            "integration": {
                "name": "github",
                "base_url": "https://api.github.com",
                "rules": [{"method": "GET", "path": "/repos/acme/widgets/issues", "description": "list issues"}],
                "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
                "secrets": ["GITHUB_TOKEN"],
                "rate_limit": {"max_calls": 30, "window_seconds": 60}
            },
            "rationale": ["base URL from the docs"],
            "warnings": []
        })
    }

    fn check(value: &Value) -> std::result::Result<Proposal, Problem> {
        let intent = intent();
        let compile = CompileOptions::default();
        let text = "The API is at https://api.github.com; GET /repos/{owner}/{repo}/issues lists issues.";
        let docs = [FetchedDoc {
            url: "https://docs.example.com/api".into(),
            sha256: "00".repeat(32),
            bytes: text.len(),
            kind: DocKind::Markdown,
            content: DocContent::Text(text.into()),
        }];
        evaluate(DraftInput { intent: &intent, docs: &docs, compile: &compile }, value).expect("no fatal error")
    }

    #[test]
    fn the_schema_has_its_defs_at_the_root_and_requires_rule_descriptions() {
        let schema = output_schema();
        assert_eq!(schema["properties"]["integration"]["$ref"], "#/$defs/IntegrationSpec");
        assert!(schema["$defs"]["IntegrationSpec"].is_object());
        assert!(schema["$defs"]["Rule"]["required"].as_array().is_some_and(|r| r.contains(&json!("description"))));
        assert_eq!(schema["properties"]["rationale"]["items"]["type"], "string");
        assert_eq!(schema["properties"]["warnings"]["maxItems"], MAX_LINES);
    }

    #[test]
    fn a_good_draft_passes() {
        let proposal = check(&good()).expect("valid");
        assert_eq!(proposal.integration.rules.len(), 1);
        assert_eq!(proposal.integration.doc_urls, vec!["https://docs.example.com/api".to_owned()]);
        assert_eq!(proposal.rationale, vec!["base URL from the docs".to_owned()]);
    }

    #[test]
    fn schema_problems_name_the_field() {
        let mut value = good();
        value["integration"]["rules"][0]["method"] = json!("get");
        value["integration"]["extra"] = json!(1);
        let Err(Problem::Invalid(problems)) = check(&value) else { panic!("should be invalid") };
        assert!(problems.iter().any(|p| p.starts_with("/integration/rules/0/method")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("extra")), "{problems:?}");
    }

    #[test]
    fn a_missing_rule_description_is_a_problem() {
        let mut value = good();
        value["integration"]["rules"][0].as_object_mut().map(|rule| rule.remove("description"));
        let Err(Problem::Invalid(problems)) = check(&value) else { panic!("should be invalid") };
        assert!(problems.iter().any(|p| p.contains("description")), "{problems:?}");
    }

    #[test]
    fn compile_problems_are_relative_to_the_output() {
        let mut value = good();
        value["integration"]["base_url"] = json!("http://api.github.com");
        let Err(Problem::Invalid(problems)) = check(&value) else { panic!("should be invalid") };
        assert!(problems.iter().any(|p| p.starts_with("/integration.base_url")), "{problems:?}");
    }

    #[test]
    fn a_base_url_the_docs_do_not_give_is_not_grounded() {
        let mut value = good();
        value["integration"]["base_url"] = json!("https://collector.example.net");
        let Err(Problem::Ungrounded(error)) = check(&value) else { panic!("should not be grounded") };
        assert!(matches!(error, DraftError::NotGrounded { .. }), "{error:?}");
    }

    #[test]
    fn strict_parsing_refuses_prose_and_fences() {
        assert!(parse_strict(" {\"a\": 1}\n").is_ok());
        assert!(parse_strict("Here you go: {\"a\": 1}").is_err());
        assert!(parse_strict("```json\n{\"a\": 1}\n```").is_err());
        assert!(parse_strict("{\"a\": 1} {\"b\": 2}").is_err());
    }

    #[test]
    fn duplicate_keys_trailing_data_and_deep_nesting_are_refused() {
        let twice = r#"{"integration": {"name": "github"}, "rationale": [], "integration": {"name": "x"}}"#;
        let Err(problem) = parse_strict(twice) else { panic!("duplicates accepted") };
        assert!(problem.contains("duplicate key \"integration\""), "{problem:?}");
        let nested = r#"{"integration": {"rules": [{"method": "GET", "method": "DELETE"}]}}"#;
        assert!(oauth3_policy::parse_strict_json(nested.as_bytes()).unwrap_err().contains("duplicate key \"method\""));
        assert!(parse_strict(r#"{"a": 1} {"b": 2}"#).is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_strict(&deep).is_err(), "no stack overflow, an error");
        assert_eq!(
            oauth3_policy::parse_strict_json(br#" {"a": [1, {"b": null}]} "#).unwrap(),
            json!({"a": [1, {"b": null}]})
        );
    }

    #[test]
    fn hidden_text_in_a_rule_description_is_a_problem() {
        for description in ["read\u{202e}etirw", "list\u{200b} issues", "a\u{1b}[2Jb"] {
            let mut value = good();
            value["integration"]["rules"][0]["description"] = json!(description);
            let Err(Problem::Invalid(problems)) = check(&value) else { panic!("{description:?} accepted") };
            assert!(problems[0].contains("invisible"), "{problems:?}");
        }
    }

    #[test]
    fn the_model_cannot_rename_the_integration_or_change_its_doc_urls() {
        let mut value = good();
        value["integration"]["name"] = json!("admin");
        value["integration"]["doc_urls"] = json!(["https://evil.example/"]);
        let proposal = check(&value).expect("valid");
        assert_eq!(proposal.integration.name, "github");
        assert_eq!(proposal.integration.doc_urls, vec!["https://docs.example.com/api".to_owned()]);
    }

    #[test]
    fn a_lower_case_write_method_is_refused_by_the_schema() {
        let mut value = good();
        value["integration"]["rules"][0]["method"] = json!("delete");
        assert!(matches!(check(&value), Err(Problem::Invalid(_))));
    }

    #[test]
    fn http_basic_credentials_pass_the_schema_the_compiler_and_grounding() {
        let mut value = good();
        value["integration"]["inject"] = json!({"basic": {"username": "{GITHUB_TOKEN}"}});
        let proposal = check(&value).expect("valid");
        let basic = proposal.integration.inject.basic.expect("kept");
        assert_eq!((basic.username.as_str(), basic.password.as_str()), ("{GITHUB_TOKEN}", ""));
    }

    #[test]
    fn malformed_http_basic_credentials_are_problems_the_model_is_told() {
        for (basic, problem) in [
            (json!({"user": "{GITHUB_TOKEN}"}), "/integration/inject/basic"),
            (json!({"username": "{GITHUB_TOKEN}:x"}), "inject.basic.username"),
        ] {
            let mut value = good();
            value["integration"]["inject"] = json!({"basic": basic});
            let Err(Problem::Invalid(problems)) = check(&value) else { panic!("{basic} accepted") };
            assert!(problems.iter().any(|p| p.contains(problem)), "{problems:?}");
        }
    }
}
