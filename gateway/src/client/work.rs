//! The client's permit and execution commands: request and show permits,
//! approve or deny, revoke, run code under a permit, read the audit log.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::commands::{ClientArgs, print, signed_in, text};
use crate::offline::read_json;

/// `oauth3 permit request`: a spec (`{version, integrations}`, a list of
/// integrations, or one) or an intent, for its owner to approve.
pub async fn request(
    client: &ClientArgs,
    spec: Option<&Path>,
    intent: Option<&Path>,
    description: &str,
    extend: Option<&str>,
) -> Result<(), String> {
    let mut body = json!({"description": description});
    match (spec, intent) {
        (Some(path), None) => {
            let spec = read_json::<Value>(path)?;
            body["capabilities"] = match spec {
                // A whole spec is checked here (its version too), then its
                // integrations go, normalised.
                Value::Object(ref map) if map.contains_key("integrations") => {
                    let parsed = oauth3_policy::PermitSpec::from_json(&spec.to_string())
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    serde_json::to_value(&parsed.integrations).map_err(|e| e.to_string())?
                }
                Value::Array(_) => spec,
                one => json!([one]),
            };
        }
        (None, Some(path)) => body["intent"] = read_json::<Value>(path)?,
        _ => return Err("give --spec or --intent".into()),
    }
    if let Some(permit) = extend {
        body["permit_id"] = json!(permit);
    }
    // Drafting fetches the docs and may ask an LLM: a while.
    let spinner = if intent.is_some() { waiting(client, "drafting the spec") } else { None };
    let requested = signed_in(client)?.call(Method::POST, "/permit", Some(&body)).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let requested = requested?;
    print(client, &requested, || {
        let mut lines = vec![
            format!("requested {} for permit {}", text(&requested["request_id"]), text(&requested["permit_id"])),
            format!("approve at {}", text(&requested["approval_url"])),
        ];
        for capability in requested["capabilities"].as_array().into_iter().flatten() {
            lines.push(format!("  {}", text(&capability["signature"])));
        }
        lines.join("\n")
    });
    Ok(())
}

/// `oauth3 permit show ID`: a request (`req_…`) or a permit (`prm_…`).
pub async fn show(client: &ClientArgs, id: &str) -> Result<(), String> {
    check_id(id)?;
    let path =
        if id.starts_with("req_") { format!("/permit/{}", segment(id)) } else { format!("/permits/{}", segment(id)) };
    let shown = signed_in(client)?.call(Method::GET, &path, None).await?;
    print(client, &shown, || {
        format!(
            "{} {}\nspec_hash {}\n{}",
            id,
            text(&shown["status"]),
            text(&shown["spec_hash"]),
            shown["summary"].as_str().unwrap_or_default().trim_end()
        )
    });
    Ok(())
}

/// `oauth3 approve ID`: reads what is asked, shows it and, on a terminal,
/// asks first (elsewhere `--yes` must say so); the decision binds the spec
/// hash read, so a request changed meanwhile is refused.
pub async fn decide(client: &ClientArgs, id: &str, deny: bool, expires: Option<&str>, yes: bool) -> Result<(), String> {
    use std::io::IsTerminal;
    check_id(id)?;
    let asking = std::io::stdin().is_terminal() && !yes;
    if !asking && !yes {
        return Err("standard input is not a terminal, so nothing can be asked: add --yes to decide unseen".into());
    }
    let api = signed_in(client)?;
    let path = format!("/approve/{}", segment(id));
    let mut body = json!({"action": if deny { "deny" } else { "approve" }});
    if let Some(expires) = expires {
        let duration = humantime::parse_duration(expires).map_err(|e| format!("--expires {expires}: {e}"))?;
        body["expires_in"] = json!(duration.as_secs());
    }
    let asked = api.call(Method::GET, &path, None).await?;
    let hash = asked["spec_hash"].as_str().ok_or("the gateway did not say which spec is asked for")?;
    body["spec_hash"] = json!(hash);
    if asking {
        eprintln!("{} asks: {}", text(&asked["agent_name"]), text(&asked["description"]));
        if let Some(extends) = asked["extends"].as_str() {
            eprintln!("(extends the permit's current spec {})", text(&json!(extends)));
        }
        eprint!("{}", text(&asked["summary"]));
        eprintln!("spec_hash {}", text(&asked["spec_hash"]));
        eprint!("{} this? [y/N] ", if deny { "Deny" } else { "Approve" });
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err("not decided".into());
        }
    }
    let decided = api.call(Method::POST, &path, Some(&body)).await?;
    print(client, &decided, || {
        let expiry = decided["expires_at"].as_str().map_or("no expiry".to_owned(), |at| format!("until {at}"));
        format!("{} {} (permit {}, {expiry})", id, text(&decided["status"]), text(&decided["permit_id"]))
    });
    Ok(())
}

/// `oauth3 revoke PERMIT`.
pub async fn revoke(client: &ClientArgs, permit: &str) -> Result<(), String> {
    check_id(permit)?;
    let path = format!("/permits/{}/revoke", segment(permit));
    let revoked = signed_in(client)?.call(Method::POST, &path, None).await?;
    print(client, &revoked, || format!("{permit} revoked"));
    Ok(())
}

/// `oauth3 run`: submits a script (or a `.wasm` component), prints what it
/// prints as it comes (whole lines; all of it at the end with `--json`);
/// false when it failed or a call was denied.
pub async fn run(
    client: &ClientArgs,
    permit: &str,
    code: &Path,
    args: Option<&str>,
    action_id: Option<&str>,
) -> Result<bool, String> {
    check_id(permit)?;
    let api = signed_in(client)?;
    let bytes = std::fs::read(code).map_err(|e| format!("{}: {e}", code.display()))?;
    let action = match action_id {
        Some(id) => id.to_owned(),
        None => format!("cli-{}", crate::keys::hex(&crate::keys::random_bytes::<8>().map_err(|e| e.to_string())?)),
    };
    let mut body = json!({"permit_id": permit, "action_id": action});
    if bytes.starts_with(b"\0asm") {
        body["component"] = json!(base64::engine::general_purpose::STANDARD.encode(&bytes));
    } else {
        body["code"] = json!(String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", code.display()))?);
    }
    if let Some(args) = args {
        body["args"] = serde_json::from_str(args).map_err(|e| format!("--args: not JSON ({e})"))?;
    }
    let accepted = api.call(Method::POST, "/execute", Some(&body)).await?;
    let id = accepted["request_id"].as_str().ok_or("the gateway returned no request id")?.to_owned();
    check_id(&id)?;
    // Said at once, so an interrupted wait can be taken up again.
    eprintln!("submitted {id}");
    let spinner = waiting(client, &format!("waiting for {id}"));
    // Asked often enough to show output as it comes; with --json, only the end.
    let timeout = if client.json { 30 } else { 1 };
    let mut printed = 0;
    let done = loop {
        let asked = std::time::Instant::now();
        let path = format!("/execute/{}/status?wait=true&timeout={timeout}", segment(&id));
        let status = api.call(Method::GET, &path, None).await?;
        let so_far = match status["status"].as_str() {
            Some("completed" | "failed") => break status,
            Some("running") => status["stdout_so_far"].as_str().unwrap_or_default(),
            Some("queued") => "",
            other => return Err(format!("{id}: unexpected status {}", text(&json!(other)))),
        };
        if !client.json && so_far.len() > printed && so_far.is_char_boundary(printed) {
            let new = crate::visible::shown(&so_far[printed..]);
            match &spinner {
                Some(spinner) => spinner.suspend(|| print!("{new}")),
                None => print!("{new}"),
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
            printed = so_far.len();
        }
        // A gateway that answers at once (it is stopping) is not asked in a tight loop.
        if asked.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let result = &done["result"];
    let denied: Vec<String> = result["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|call| call["decision"] == "deny")
        .map(|call| format!("denied: {} {}: {}", text(&call["method"]), text(&call["url"]), text(&call["reason"])))
        .collect();
    let passed = done["status"] == "completed" && denied.is_empty();
    if client.json {
        println!("{done:#}");
    } else {
        // The rest: what was not shown while it ran (all of it, if nothing was).
        let stdout = result["stdout"].as_str().unwrap_or_default();
        let rest = if stdout.is_char_boundary(printed) { stdout.get(printed..).unwrap_or_default() } else { stdout };
        print!("{}", crate::visible::shown(rest));
        if let Some(output) = result["output"].as_str() {
            println!("{}", crate::visible::shown(output));
        }
        eprint!("{}", crate::visible::shown(result["stderr"].as_str().unwrap_or_default()));
        for line in &denied {
            eprintln!("{line}");
        }
        if let Some(code) = result["error"]["code"].as_str() {
            let message = text(&result["error"]["message"]);
            let message = message.strip_prefix(&format!("{code}: ")).unwrap_or(&message);
            eprintln!("failed: {code}: {message}");
        }
    }
    Ok(passed)
}

/// `oauth3 audit`: the newest calls, oldest first; with `follow`, every new
/// one as it comes (asked for every 2 s) until interrupted.
pub async fn audit(client: &ClientArgs, permit: Option<&str>, follow: bool) -> Result<(), String> {
    if let Some(permit) = permit {
        check_id(permit)?;
    }
    let api = signed_in(client)?;
    let query = permit.map(|p| format!("&permit_id={}", segment(p))).unwrap_or_default();
    let page = api.call(Method::GET, &format!("/audit?limit=100{query}"), None).await?;
    let mut entries: Vec<Value> = page["entries"].as_array().cloned().unwrap_or_default();
    entries.reverse();
    if !follow {
        entries.iter().for_each(|entry| print_entry(client, entry));
        return Ok(());
    }
    // Ids are handed out before their rows commit, so a lower id can appear
    // after a higher one (concurrent calls, other replicas). The cursor
    // only passes an id once it has been seen for SETTLE; until then, later
    // ids are asked for again and the ones already printed skipped. An
    // allowed call's entry is written before the call is sent: it is
    // printed once its answer is in, or once settled without one.
    // (id, first seen, printed)
    let mut unsettled: Vec<(i64, std::time::Instant, bool)> = Vec::new();
    for entry in &entries {
        let Some(id) = entry["id"].as_i64() else { continue };
        let answered = answered(entry);
        if answered {
            print_entry(client, entry);
        }
        unsettled.push((id, std::time::Instant::now(), answered));
    }
    // Below the first page's lowest entry still on the wire, so that it is asked for again.
    let highest = entries.iter().filter_map(|e| e["id"].as_i64()).max().unwrap_or(0);
    let waiting = unsettled.iter().filter(|(_, _, printed)| !printed).map(|(id, _, _)| *id - 1).min();
    let mut cursor = waiting.map_or(highest, |w| w.min(highest));
    unsettled.retain(|(id, _, _)| *id > cursor);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut after = cursor;
        loop {
            let path = format!("/audit?limit={FOLLOW_PAGE}&after={after}{query}");
            let page = api.call(Method::GET, &path, None).await?;
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            for entry in &entries {
                let Some(id) = entry["id"].as_i64() else { continue };
                after = after.max(id);
                let answered = answered(entry);
                let seen = match unsettled.iter_mut().find(|(seen, _, _)| *seen == id) {
                    Some(seen) => seen,
                    None => {
                        unsettled.push((id, std::time::Instant::now(), false));
                        unsettled.last_mut().expect("just pushed")
                    }
                };
                if !seen.2 && (answered || seen.1.elapsed() >= SETTLE) {
                    print_entry(client, entry);
                    seen.2 = true;
                }
            }
            if (entries.len() as i64) < FOLLOW_PAGE {
                break;
            }
        }
        let settled = |(_, seen, printed): &(i64, std::time::Instant, bool)| *printed && seen.elapsed() >= SETTLE;
        if let Some(highest) = unsettled.iter().filter(|e| settled(e)).map(|(id, _, _)| *id).max() {
            // Never past an entry not printed yet.
            let waiting = unsettled.iter().filter(|(_, _, printed)| !printed).map(|(id, _, _)| *id - 1).min();
            cursor = cursor.max(waiting.map_or(highest, |w| highest.min(w)));
        }
        unsettled.retain(|(id, _, _)| *id > cursor);
    }
}

/// True when an audit entry's call has ended: refused, failed (a reason),
/// or answered (a status). An allowed call's entry is written before it is
/// sent, and completed after.
fn answered(entry: &Value) -> bool {
    entry["decision"] != "allow" || !entry["status"].is_null() || !entry["reason"].is_null()
}

/// Calls asked for at once while following.
const FOLLOW_PAGE: i64 = 500;

/// How long an audit id may wait for a lower one to commit.
const SETTLE: Duration = Duration::from_secs(10);

fn print_entry(client: &ClientArgs, entry: &Value) {
    if client.json {
        println!("{entry}");
        return;
    }
    let reason = entry["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
    println!(
        "{} {} {} {} {}{reason}",
        text(&entry["started_at"]),
        text(&entry["decision"]),
        text(&entry["method"]),
        text(&entry["url"]),
        entry["status"].as_u64().map_or("-".to_owned(), |s| s.to_string())
    );
}

/// A spinner on standard error while a long wait lasts: on a terminal only,
/// and never with `--json`.
fn waiting(client: &ClientArgs, message: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if client.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    Some(spinner)
}

/// An id the gateway handed out (`req_…`, `prm_…`, `exe_…`): letters,
/// digits and `_` only, so it is one path segment as it stands.
fn check_id(id: &str) -> Result<(), String> {
    let well_formed = id.contains('_') && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if well_formed { Ok(()) } else { Err(format!("{}: not a request, permit or execution id", text(&json!(id)))) }
}

/// One path segment, percent-encoded.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
