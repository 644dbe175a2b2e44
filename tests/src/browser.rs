//! Real headless Chromium for the web UI's tests: Debian's `chromium`
//! driven over WebDriver by `chromedriver` (package `chromium-driver`),
//! one driver and one fresh profile per browser. A missing browser fails
//! the test (`./scripts/setup` installs it); it never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Browsers running at once across a test binary: each is a driver and a
/// Chromium, and CI has two cores.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The Chromium binary: the real one behind Debian's wrapper script when
/// present (the wrapper only adds flags), else whatever `chromium` is.
fn chromium() -> PathBuf {
    let candidates = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"];
    let found = candidates.iter().map(Path::new).find(|p| p.exists());
    found.map(Path::to_path_buf).unwrap_or_else(|| {
        panic!("Chromium is not installed (looked for {candidates:?}); ./scripts/setup installs Debian's chromium")
    })
}

/// A headless Chromium with its own driver and profile; closed on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    /// Starts a browser whose viewport is `width` × `height` CSS pixels
    /// (a phone's, through Chromium's device emulation, below 500 px).
    pub async fn start(width: u32, height: u32) -> Browser {
        let slot = RUNNING.acquire().await.expect("the browser semaphore is never closed");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver could not start ({e}); ./scripts/setup installs Debian's chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ready(&url).await;
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let mut options = json!({"binary": chromium(), "args": args});
        if width < 500 {
            // Headless windows are at least 500 px wide; emulate the phone's viewport.
            options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}});
        }
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": options});
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("starting headless Chromium through chromedriver: {e}"));
        Browser { client, driver, _profile: profile, _slot: slot }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element `css` selects (waiting for it to appear).
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Clicks the element `css` selects and waits for the page it leads to
    /// to load (a form's submit button, a link).
    pub async fn submit(&self, css: &str) {
        self.eval("window.__oauth3_left = false; return true").await;
        self.click(css).await;
        self.wait_for_new_page().await;
    }

    /// Waits until the page that was shown is replaced and the new one loaded.
    pub async fn wait_for_new_page(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let loaded = self
                .client
                .execute("return window.__oauth3_left === undefined && document.readyState === 'complete'", vec![])
                .await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the element `css` selects, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.element("body").await.text().await.unwrap()
    }

    /// The page's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// Signs in through the form the browser is on (the login page).
    pub async fn sign_in(&self, token: &str) {
        self.fill("#token", token).await;
        self.submit("form[action='/login'] button[type=submit]").await;
    }

    /// Saves a screenshot of the page as PNG at `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver takes its Chromium with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn wait_until_ready(url: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{url}/status")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not answer on {url} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
