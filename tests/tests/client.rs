//! The `oauth3` client commands against the real gateway binary: sign up,
//! log in (the token kept in a 0600 file), and owners' secrets set from
//! standard input (never the command line), listed and removed; errors say
//! the gateway's code and message.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use oauth3_e2e::{Binary, fake_secret, oauth3_binary, run_oauth3, shared_cache_dir, within};

/// `oauth3 <args>` with only `env` set and `stdin` written.
fn oauth3(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (bool, String, String) {
    run_oauth3(args, env, stdin)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_owner_signs_up_logs_in_and_manages_secrets_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cache = shared_cache_dir().display().to_string();
    let gateway = Binary::start("gateway", &dir.path().join("data"), dir.path(), &[("OAUTH3_CACHE_DIR", cache)]);
    let config = dir.path().join("home/oauth3/config.json");
    let config_text = config.display().to_string();
    let env = [("OAUTH3_CONFIG", config_text.as_str())];

    let (ok, stdout, stderr) =
        oauth3(&["signup", "--role", "owner", "--name", "alice", "--url", &gateway.url, "--save"], &env, "");
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("signed up: owner owner_"), "{stdout}");
    let token = stdout.lines().find_map(|l| l.strip_prefix("token (shown once; `oauth3 login` keeps it): ")).unwrap();
    assert_eq!((mode(&config), mode(config.parent().unwrap())), (0o600, 0o700));
    assert!(std::fs::read_to_string(&config).unwrap().contains(token));

    // The value goes in on standard input: it is nowhere in the process's
    // command line while it waits for it.
    let secret = fake_secret();
    let mut child = Command::new(oauth3_binary())
        .args(["secrets", "set", "GITHUB_TOKEN"])
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(&secret));
    child.stdin.take().unwrap().write_all(format!("{secret}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "stored GITHUB_TOKEN\n");

    let (ok, listed, _) = oauth3(&["secrets", "list", "--json"], &env, "");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert!(ok);
    assert_eq!(listed["secrets"][0]["name"], "GITHUB_TOKEN");
    assert!(!listed.to_string().contains(&secret), "a value was listed");
    let (ok, text, _) = oauth3(&["secrets", "list"], &env, "");
    assert!(ok && text.starts_with("GITHUB_TOKEN  (updated "), "{text}");

    let (ok, stdout, _) = oauth3(&["secrets", "rm", "GITHUB_TOKEN"], &env, "");
    assert!(ok && stdout == "deleted GITHUB_TOKEN\n", "{stdout}");
    let (ok, _, stderr) = oauth3(&["secrets", "rm", "GITHUB_TOKEN"], &env, "");
    assert!(!ok && stderr == "oauth3: not_found: no secret named GITHUB_TOKEN\n", "{stderr}");
    assert_eq!(oauth3(&["secrets", "list"], &env, "").1, "no secrets\n");
    let (ok, _, stderr) = oauth3(&["secrets", "set", "EMPTY"], &env, "");
    assert!(!ok && stderr.contains("standard input was empty"), "{stderr}");
    let (ok, _, stderr) = oauth3(&["secrets", "set", "PEM"], &env, "line one\nline two\n");
    assert!(!ok && stderr.contains("more than one line"), "never stored cut short: {stderr}");
    // A value on the command line is not taken at all.
    let (ok, _, _) = oauth3(&["secrets", "set", "ARGV", &secret], &env, "");
    assert!(!ok);
    assert_eq!(oauth3(&["secrets", "list"], &env, "").1, "no secrets\n");
}

#[test]
fn login_keeps_only_a_token_the_gateway_accepts_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = shared_cache_dir().display().to_string();
    let gateway = Binary::start("gateway", &dir.path().join("data"), dir.path(), &[("OAUTH3_CACHE_DIR", cache)]);
    let config = dir.path().join("config.json").display().to_string();
    let env = [("OAUTH3_CONFIG", config.as_str())];
    let (_, stdout, _) =
        oauth3(&["signup", "--role", "owner", "--name", "o", "--url", &gateway.url, "--json"], &env, "");
    let owner: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let token = owner["token"].as_str().unwrap();

    let (ok, _, stderr) = oauth3(&["login", "--url", &gateway.url], &env, "not-a-token\n");
    assert!(!ok && stderr.starts_with("oauth3: unauthorized: "), "{stderr}");
    assert!(!Path::new(&config).exists(), "a refused token is not kept");
    let (ok, _, _) = oauth3(&["secrets", "list"], &env, "");
    assert!(!ok);

    let (ok, stdout, stderr) = oauth3(&["login", "--url", &gateway.url], &env, &format!("{token}\n"));
    assert!(ok && stdout.starts_with(&format!("signed in to {}", gateway.url)), "{stdout}{stderr}");
    assert!(oauth3(&["secrets", "list"], &env, "").0, "the saved URL and token are used");
    let with_other = [("OAUTH3_CONFIG", config.as_str()), ("OAUTH3_TOKEN", "forged")];
    let (ok, _, stderr) = oauth3(&["secrets", "list"], &with_other, "");
    assert!(!ok && stderr.starts_with("oauth3: unauthorized: "), "OAUTH3_TOKEN wins: {stderr}");
    let (ok, _, stderr) = oauth3(&["secrets", "list"], &[("OAUTH3_CONFIG", "/nonexistent/oauth3.json")], "");
    assert!(!ok && stderr.contains("no gateway URL"), "{stderr}");
    // The saved token goes to the saved gateway only, and never in clear
    // text over a network.
    let (ok, _, stderr) = oauth3(&["secrets", "list", "--url", "http://127.0.0.1:9"], &env, "");
    assert!(!ok && stderr.contains(&format!("the saved token is for {}", gateway.url)), "{stderr}");
    let remote = [("OAUTH3_CONFIG", config.as_str()), ("OAUTH3_TOKEN", token)];
    let (ok, _, stderr) = oauth3(&["secrets", "list", "--url", "http://oauth3.example"], &remote, "");
    assert!(!ok && stderr.contains("plain http would carry your token in the clear"), "{stderr}");

    // A `.env` where the command runs (a checked-out repository, say) steers
    // only the server, never a client command's gateway or token.
    let checkout = tempfile::tempdir().unwrap();
    std::fs::write(checkout.path().join(".env"), "OAUTH3_URL=http://127.0.0.1:9\nOAUTH3_TOKEN=planted\n").unwrap();
    let output = Command::new(oauth3_binary())
        .args(["secrets", "list"])
        .env_clear()
        .env("OAUTH3_CONFIG", "/nonexistent/oauth3.json")
        .current_dir(checkout.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("no gateway URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_from_the_cli_and_a_denied_call_exits_1_with_its_code() {
    let stub = oauth3_e2e::Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = Binary::for_stub(&stub, dir.path());
    let profile = |who: &str| dir.path().join(format!("{who}.json")).display().to_string();
    let (owner, agent) = (profile("owner"), profile("agent"));
    let as_owner = [("OAUTH3_CONFIG", owner.as_str())];
    let as_agent = [("OAUTH3_CONFIG", agent.as_str())];
    let url = gateway.url.as_str();
    assert!(oauth3(&["signup", "--role", "owner", "--name", "o", "--url", url, "--save"], &as_owner, "").0);
    assert!(oauth3(&["signup", "--role", "agent", "--name", "a", "--url", url, "--save"], &as_agent, "").0);
    assert!(oauth3(&["secrets", "set", "GITHUB_TOKEN"], &as_owner, &fake_secret()).0);

    let spec = serde_json::json!({"name": "github", "base_url": stub.url(),
        "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::json!({"version": 1, "integrations": [spec]}).to_string()).unwrap();
    let (ok, stdout, stderr) =
        oauth3(&["permit", "request", "--spec", &spec_path.display().to_string(), "--json"], &as_agent, "");
    assert!(ok, "{stderr}");
    let requested: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let (request, permit) = (requested["request_id"].as_str().unwrap(), requested["permit_id"].as_str().unwrap());
    // Offline, `spec lint` names the hash the gateway will ask the owner to bind.
    let spec_file = spec_path.display().to_string();
    let (ok, linted, _) = oauth3(&["spec", "lint", &spec_file, "--insecure-upstream", &stub.host_port()], &[], "");
    assert!(
        ok && linted.starts_with(&format!("valid: spec_hash {}", requested["spec_hash"].as_str().unwrap())),
        "{linted}"
    );
    let (ok, text, _) = oauth3(&["permit", "request", "--spec", &spec_path.display().to_string()], &as_agent, "");
    assert!(ok && text.contains("approve at http") && text.contains("github(method, path"), "{text}");

    // An approval that names another spec hash than the request's is refused.
    let (status, refused) = oauth3_e2e::call(
        url,
        "POST",
        &format!("/approve/{request}"),
        Some(profile_token(&owner).as_str()),
        Some(serde_json::json!({"action": "approve", "spec_hash": "0".repeat(64)})),
    )
    .await;
    assert_eq!((status.as_u16(), refused["error"]["code"].as_str()), (409, Some("spec_changed")), "{refused}");
    let (ok, _, stderr) = oauth3(&["approve", request], &as_owner, "");
    assert!(!ok && stderr.contains("add --yes to decide unseen"), "nothing is asked without a terminal: {stderr}");
    let (ok, stdout, stderr) = oauth3(&["approve", request, "--expires", "24h", "--yes"], &as_owner, "");
    assert!(ok && stdout.starts_with(&format!("{request} approved (permit {permit}, until ")), "{stdout}{stderr}");
    let (ok, shown, _) = oauth3(&["permit", "show", permit], &as_agent, "");
    assert!(ok && shown.starts_with(&format!("{permit} active\nspec_hash ")), "{shown}");

    let script = |name: &str, code: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, code).unwrap();
        path.display().to_string()
    };
    let list = script(
        "list.js",
        "const issues = await github('GET', `/repos/${args.repo}/issues`); console.log(issues.length);",
    );
    let (ok, stdout, stderr) =
        oauth3(&["run", "--permit", permit, &list, "--args", r#"{"repo": "octo/hello"}"#], &as_agent, "");
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "2\n");
    let denied = script("denied.js", "await github('DELETE', '/repos/octo/hello');");
    let (ok, _, stderr) = oauth3(&["run", "--permit", permit, &denied], &as_agent, "");
    assert!(!ok, "a denied call exits 1");
    assert!(stderr.contains("denied: DELETE /repos/octo/hello: path_not_allowed"), "{stderr}");
    let uncaught = "failed: uncaught: Error: github('DELETE', '/repos/octo/hello') failed: path_not_allowed";
    assert!(stderr.contains(uncaught), "{stderr}");
    assert!(stderr.ends_with("oauth3: the run failed or a call was denied\n"), "{stderr}");

    let (ok, audit, _) = oauth3(&["audit", "--permit", permit], &as_owner, "");
    let lines: Vec<&str> = audit.lines().collect();
    assert!(ok && lines.len() == 2, "{audit}");
    assert!(lines[0].contains(" allow GET ") && lines[0].ends_with(" 200"), "{audit}");
    assert!(lines[1].contains(" deny DELETE ") && lines[1].ends_with("(path_not_allowed)"), "{audit}");

    // `audit --follow` prints what is there, then each new call as it comes.
    let mut follow = Command::new(oauth3_binary())
        .args(["audit", "--follow", "--json", "--permit", permit])
        .env_clear()
        .envs(as_owner)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, receiver) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let _ = lines.send(line.unwrap());
        }
    });
    let next = || receiver.recv_timeout(std::time::Duration::from_secs(60)).expect("a line from audit --follow");
    let seen: Vec<serde_json::Value> = (0..2).map(|_| serde_json::from_str(&next()).unwrap()).collect();
    assert_eq!((seen[0]["decision"].as_str(), seen[1]["decision"].as_str()), (Some("allow"), Some("deny")));
    assert!(oauth3(&["run", "--permit", permit, &list, "--args", r#"{"repo": "octo/new"}"#], &as_agent, "").0);
    let new: serde_json::Value = serde_json::from_str(&next()).unwrap();
    assert!(new["url"].as_str().unwrap().ends_with("/repos/octo/new/issues"), "{new}");
    assert!(new["id"].as_i64() > seen[1]["id"].as_i64());
    follow.kill().unwrap();
    let _ = follow.wait();

    assert!(oauth3(&["revoke", permit], &as_owner, "").0);
    let (ok, _, stderr) = oauth3(&["run", "--permit", permit, &list], &as_agent, "");
    assert!(!ok && stderr.starts_with("oauth3: permit_not_active: "), "{stderr}");
}

/// The token a profile file holds.
fn profile_token(path: &str) -> String {
    let profile: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    profile["token"].as_str().unwrap().to_owned()
}

/// `oauth3 approve ID` in a terminal (a pty, by util-linux `script`), answering `answer`.
fn approve_in_a_terminal(request: &str, env: &[(&str, &str)], answer: &str) -> (bool, String) {
    use std::io::Write;
    let command = format!("{} approve {request}", oauth3_binary().display());
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_clear()
        .envs(env.iter().copied())
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script`");
    // The answer is typed once the question is up; stdin stays open until
    // the session ends (`script` may end it at EOF).
    let mut stdout = child.stdout.take().unwrap();
    let (chunks, received) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buffer) {
            let _ = chunks.send(buffer[..n].to_vec());
        }
    });
    let mut shown = Vec::new();
    while !String::from_utf8_lossy(&shown).contains("[y/N]") {
        match received.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(chunk) => shown.extend(chunk),
            Err(_) => break, // ended, or never asked: the assertions say which
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).unwrap();
    reader.join().unwrap();
    shown.extend(received.try_iter().flatten());
    drop(stdin);
    let status = child.wait().unwrap();
    (status.success(), String::from_utf8_lossy(&shown).replace('\r', ""))
}

#[tokio::test]
async fn approve_on_a_terminal_shows_the_request_and_decides_only_on_yes() {
    let stub = oauth3_e2e::Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = Binary::for_stub(&stub, dir.path());
    let owner = dir.path().join("owner.json").display().to_string();
    let agent = dir.path().join("agent.json").display().to_string();
    let (as_owner, as_agent) = ([("OAUTH3_CONFIG", owner.as_str())], [("OAUTH3_CONFIG", agent.as_str())]);
    let url = gateway.url.as_str();
    assert!(oauth3(&["signup", "--role", "owner", "--name", "o", "--url", url, "--save"], &as_owner, "").0);
    assert!(oauth3(&["signup", "--role", "agent", "--name", "bot", "--url", url, "--save"], &as_agent, "").0);
    let spec = serde_json::json!({"name": "github", "base_url": stub.url(),
        "rules": [{"method": "GET", "path": "/repos/*/*/issues"}]});
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let spec_file = spec_path.display().to_string();
    let asked = ["permit", "request", "--spec", &spec_file, "--description", "read the issues", "--json"];
    let (ok, stdout, _) = oauth3(&asked, &as_agent, "");
    assert!(ok);
    let requested: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let request = requested["request_id"].as_str().unwrap();

    let (ok, shown) = approve_in_a_terminal(request, &as_owner, "n\n");
    assert!(!ok, "{shown}");
    assert!(shown.contains("bot asks: read the issues"), "{shown}");
    assert!(shown.contains("GET") && shown.contains("/repos/*/*/issues"), "the summary is shown: {shown}");
    assert!(shown.contains(&format!("spec_hash {}", requested["spec_hash"].as_str().unwrap())), "{shown}");
    assert!(shown.contains("Approve this? [y/N]") && shown.contains("not decided"), "{shown}");
    let (_, status, _) = oauth3(&["permit", "show", requested["permit_id"].as_str().unwrap()], &as_agent, "");
    assert!(status.contains(" pending"), "nothing was decided: {status}");

    let (ok, shown) = approve_in_a_terminal(request, &as_owner, "y\n");
    assert!(ok, "{shown}");
    assert!(shown.contains(&format!("{request} approved (permit ")), "{shown}");
}

#[tokio::test]
async fn run_prints_each_line_as_the_script_prints_it() {
    let (upstream, mut arrived, release) = oauth3_e2e::held_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("OAUTH3_INSECURE_UPSTREAMS", upstream.clone()),
    ];
    let gateway = Binary::start("gateway", &dir.path().join("data"), dir.path(), &env);
    let spec = serde_json::json!({"name": "slow", "base_url": format!("http://{upstream}"),
        "rules": [{"method": "GET", "path": "/wait"}]});
    let (agent, _, permit) = oauth3_e2e::approved_permit(&gateway.url, spec, &fake_secret()).await;
    let script = dir.path().join("slow.js");
    std::fs::write(&script, "console.log('first');\nawait slow('GET', '/wait');\nconsole.log('second');\n").unwrap();

    let mut run = tokio::process::Command::new(oauth3_binary())
        .args(["run", "--permit", &permit, &script.display().to_string(), "--url", &gateway.url])
        .env_clear()
        .env("OAUTH3_TOKEN", &agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(run.stdout.take().unwrap()));
    // The script is blocked on the upstream, and its first line is out already.
    within(arrived.recv()).await.expect("the script's call reaches the upstream");
    assert_eq!(within(lines.next_line()).await.unwrap().as_deref(), Some("first"));
    release.notify_one();
    assert_eq!(within(lines.next_line()).await.unwrap().as_deref(), Some("second"));
    assert_eq!(within(lines.next_line()).await.unwrap(), None, "each line once");
    let status = within(run.wait()).await.unwrap();
    assert!(status.success());

    // The same action id again is the same run: it does not call the upstream twice.
    let again = ["run", "--permit", &permit, &script.display().to_string(), "--action-id", "slow-1"];
    let token = [("OAUTH3_TOKEN", agent.as_str()), ("OAUTH3_URL", gateway.url.as_str())];
    let first = tokio::task::spawn_blocking({
        let (again, token) = (again.map(str::to_owned), token.map(|(k, v)| (k, v.to_owned())));
        move || {
            let again: Vec<&str> = again.iter().map(String::as_str).collect();
            let token: Vec<(&str, &str)> = token.iter().map(|(k, v)| (*k, v.as_str())).collect();
            oauth3(&again, &token, "")
        }
    });
    within(arrived.recv()).await.expect("the first run calls the upstream");
    release.notify_one();
    let (ok, stdout, _) = first.await.unwrap();
    assert!(ok && stdout == "first\nsecond\n", "{stdout}");
    let (ok, stdout, _) = oauth3(&again, &token, "");
    assert!(ok && stdout == "first\nsecond\n", "{stdout}");
    assert!(arrived.try_recv().is_err(), "the retry ran again");
}
