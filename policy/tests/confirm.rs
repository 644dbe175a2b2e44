//! Rules marked `confirm`: a call they allow is allowed only with the
//! owner's confirmation, and a rule without `confirm` that allows the same
//! call wins.

use oauth3_policy::{CompileOptions, Decision, OutboundRequest, PermitSpec};

fn permit(rules: serde_json::Value) -> oauth3_policy::CompiledPermit {
    let spec = serde_json::json!({
        "version": 1,
        "integrations": [{"name": "mail", "base_url": "https://api.mail.example", "rules": rules}]
    });
    PermitSpec::from_json(&spec.to_string()).unwrap().compile(&CompileOptions::default()).unwrap()
}

fn confirm(decision: &Decision) -> Option<bool> {
    match decision {
        Decision::Allow(allow) => Some(allow.confirm),
        Decision::Deny(_) => None,
    }
}

#[test]
fn a_call_a_confirm_rule_allows_needs_confirmation() {
    let permit = permit(serde_json::json!([
        {"method": "POST", "path": "/messages", "body": {"type": "object"}, "confirm": true},
        {"method": "GET", "path": "/messages"}
    ]));
    let send = OutboundRequest::new("mail", "POST", "/messages").with_body(b"{}");
    assert_eq!(confirm(&permit.decide(&send)), Some(true));
    assert_eq!(confirm(&permit.decide(&OutboundRequest::new("mail", "GET", "/messages"))), Some(false));
    // `confirm` widens nothing: what no rule allows is still denied.
    let other = OutboundRequest::new("mail", "POST", "/messages/1").with_body(b"{}");
    assert_eq!(confirm(&permit.decide(&other)), None);
    let not_json = OutboundRequest::new("mail", "POST", "/messages").with_body(b"x");
    assert_eq!(confirm(&permit.decide(&not_json)), None);
}

#[test]
fn a_rule_without_confirm_wins_over_one_with_it_whatever_their_order() {
    let pinned = serde_json::json!({"method": "POST", "path": "/messages", "body": {"type": "object",
        "required": ["to"], "properties": {"to": {"const": "alice@example.com"}}}});
    let open = serde_json::json!({"method": "POST", "path": "/messages", "body": {"type": "object"}, "confirm": true});
    for rules in [serde_json::json!([open.clone(), pinned.clone()]), serde_json::json!([pinned, open])] {
        let permit = permit(rules);
        let to_alice = OutboundRequest::new("mail", "POST", "/messages").with_body(br#"{"to":"alice@example.com"}"#);
        assert_eq!(confirm(&permit.decide(&to_alice)), Some(false));
        let to_other = OutboundRequest::new("mail", "POST", "/messages").with_body(br#"{"to":"m@evil.example"}"#);
        assert_eq!(confirm(&permit.decide(&to_other)), Some(true));
    }
}

#[test]
fn confirm_is_part_of_what_the_owner_approves() {
    let spec = |confirm: bool| {
        let mut rule = serde_json::json!({"method": "POST", "path": "/messages"});
        if confirm {
            rule["confirm"] = true.into();
        }
        let text = serde_json::json!({"version": 1, "integrations": [
            {"name": "mail", "base_url": "https://api.mail.example", "rules": [rule]}]})
        .to_string();
        PermitSpec::from_json(&text).unwrap()
    };
    assert_ne!(spec(true).spec_hash(), spec(false).spec_hash());
    // Absent and `false` are the same spec: existing approvals keep their hash.
    let explicit_false = PermitSpec::from_json(
        r#"{"version":1,"integrations":[{"name":"mail","base_url":"https://api.mail.example",
            "rules":[{"method":"POST","path":"/messages","confirm":false}]}]}"#,
    )
    .unwrap();
    assert_eq!(explicit_false.spec_hash(), spec(false).spec_hash());
}

#[test]
fn the_owner_is_told_which_calls_wait_and_which_values_are_pinned() {
    let permit = permit(serde_json::json!([
        {"method": "POST", "path": "/payments", "body": {"type": "object", "additionalProperties": false,
            "required": ["amount"], "properties": {
                "amount": {"type": "string", "const": "84.20"},
                "cc": {"type": "array", "items": {"enum": ["a@example.com", "b@example.com"]}},
                "creditor": {"type": "object", "properties": {"iban": {"const": "DE89370400440532013000"}}}}}},
        {"method": "POST", "path": "/messages", "body": {"type": "object"}, "confirm": true}
    ]));
    let text = permit.describe().to_string();
    assert!(text.contains("amount (string, required, exactly \"84.20\")"), "{text}");
    assert!(text.contains("pinned: creditor.iban = \"DE89370400440532013000\""), "{text}");
    assert!(text.contains("cc (array, items one of \"a@example.com\", \"b@example.com\")"), "{text}");
    assert!(
        text.contains("POST https://api.mail.example/messages — body: JSON matching a schema; each call waits for your confirmation of the exact request"),
        "{text}"
    );
}
