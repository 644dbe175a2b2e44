//! The stub upstream, and the compiled sandbox code every test shares.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The stub upstream (`examples/stub-github`) on 127.0.0.1:0.
pub struct Stub {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl Stub {
    /// Starts it on 127.0.0.1:0.
    pub async fn start() -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(stub_github::serve(listener));
        Stub { addr }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `<ip>:<port>`, for `OAUTH3_INSECURE_UPSTREAMS`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

/// Compiled sandbox code shared by every test gateway, so only the first
/// start on a machine pays for compiling the guest runtime.
pub fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("oauth3-test-cache-{uid}"));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    })
    .clone()
}
