//! The real `oauth3` binary as a child process: started on 127.0.0.1:0 with
//! a given data dir and environment, its stdout and stderr kept in files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `oauth3` binary of this build: `OAUTH3_BIN` when set, else built
/// (once per test process, a no-op when fresh) with the cargo and profile
/// that built this test, so `cargo test -p oauth3-e2e` alone tests the
/// current code.
pub fn oauth3_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("OAUTH3_BIN") {
                return PathBuf::from(path);
            }
            // This test runs from <target>/<profile>/deps/<name>; the binary
            // is <target>/<profile>/oauth3.
            let exe = std::env::current_exe().expect("the test's own path");
            let profile_dir = exe.parent().and_then(Path::parent).expect("a cargo target layout");
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--locked", "-p", "oauth3-gateway", "--bin", "oauth3", "--profile", profile])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo to build the oauth3 binary");
            assert!(status.success(), "building the oauth3 binary failed");
            profile_dir.join("oauth3")
        })
        .clone()
}

/// A running `oauth3` process.
pub struct Binary {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its stdout goes.
    pub stdout: PathBuf,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Binary {
    /// Starts `oauth3 serve` with `data_dir`, extra `env`, and logs in
    /// `logs_dir` (`<name>.stdout`, `<name>.stderr`); waits for it to listen.
    pub fn start(name: &str, data_dir: &Path, logs_dir: &Path, env: &[(&str, String)]) -> Binary {
        let stdout = logs_dir.join(format!("{name}.stdout"));
        let stderr = logs_dir.join(format!("{name}.stderr"));
        let mut command = Command::new(oauth3_binary());
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("OAUTH3_LISTEN", "127.0.0.1:0")
            .env("OAUTH3_DATA_DIR", data_dir)
            .current_dir(logs_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start the oauth3 binary");
        let mut binary = Binary { child, url: String::new(), stdout, stderr };
        binary.url = binary.wait_for_listening();
        binary
    }

    /// A gateway named `gateway` on `dir/data` (logs in `dir`) that drafts
    /// from and calls `stub` over plain http, with the shared code cache.
    pub fn for_stub(stub: &crate::Stub, dir: &Path) -> Binary {
        let env = [
            ("OAUTH3_CACHE_DIR", crate::shared_cache_dir().display().to_string()),
            ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ];
        Binary::start("gateway", &dir.join("data"), dir, &env)
    }

    fn wait_for_listening(&mut self) -> String {
        // The first start on a machine compiles the sandbox (slow in debug builds).
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("oauth3 listening on ")) {
                let url = line.trim_start_matches("oauth3 listening on ").split_whitespace().next().unwrap();
                return url.to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("oauth3 exited with {status}: {}", std::fs::read_to_string(&self.stderr).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "oauth3 did not start listening within 300 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no graceful shutdown, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM (or SIGINT) and waits up to `within` for the process
    /// to exit; its exit status. Panics if it does not exit in time.
    pub fn signal_and_wait(&mut self, signal: &str, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{signal} failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "oauth3 did not exit within {within:?} of SIG{signal}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("{out}\n{err}")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JSON request to `url`; returns status and body (Null when empty).
pub async fn call(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    use crate::client::{Body, bearer, http_client, send};
    let reply = send(&http_client(), url, method, path, bearer(token), body.map(Body::Json)).await;
    (reply.status, reply.body)
}

/// Signs up an agent and an owner, stores `secret` as the owner's
/// GITHUB_TOKEN, and has the agent request and the owner approve a permit
/// for the integration `spec`: (agent token, owner token, permit id).
pub async fn approved_permit(url: &str, spec: serde_json::Value, secret: &str) -> (String, String, String) {
    use reqwest::StatusCode;
    use serde_json::json;
    let token = |body: &serde_json::Value| body["token"].as_str().unwrap().to_owned();
    let (_, agent) = call(url, "POST", "/signup", None, Some(json!({"name": "a", "role": "agent"}))).await;
    let (_, owner) = call(url, "POST", "/signup", None, Some(json!({"name": "o", "role": "owner"}))).await;
    let (agent, owner) = (token(&agent), token(&owner));
    let body = json!({"name": "GITHUB_TOKEN", "value": secret});
    let (status, _) = call(url, "POST", "/secrets", Some(&owner), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let body = json!({"description": "test", "capabilities": [spec]});
    let (status, request) = call(url, "POST", "/permit", Some(&agent), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let path = format!("/approve/{}", request["request_id"].as_str().unwrap());
    let (status, approved) = call(url, "POST", &path, Some(&owner), Some(json!({"action": "approve"}))).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    (agent, owner, request["permit_id"].as_str().unwrap().to_owned())
}

/// Runs `oauth3 <args>` (a command that ends by itself) with only `env` set
/// and `stdin` written to it: (success, stdout, stderr). It must exit 0, 1
/// (refused) or 2 (a usage error), never by a panic.
pub fn run_oauth3(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(oauth3_binary())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the oauth3 binary");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(matches!(output.status.code(), Some(0..=2)), "{:?}: {}", output.status, text(&output.stderr));
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}
