//! `oauth3-e2e`: the end-to-end tests (in `tests/`, against the real
//! `oauth3` binary), and the harness every crate's tests share.

pub mod binary;
pub mod browser;
mod client;
mod database;
pub mod dstack;
pub mod fake_llm;
mod held;
pub mod hostile;
mod readme;
mod stub;
pub mod web;

pub use binary::{Binary, approved_permit, call, oauth3_binary, run_oauth3};
pub use client::{Body, Reply, assert_error, bearer, http_client, send};
pub use database::{Backend, postgres};
pub use held::held_upstream;
pub use readme::readme_block;
pub use stub::{Stub, shared_cache_dir};
pub use web::{Page, WebClient};

/// An obviously fake secret, different every time.
pub fn fake_secret() -> String {
    format!("fake-secret-{}", random_hex(16))
}

/// `bytes` random bytes, as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buffer = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buffer).expect("the system's random source");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// `what`, which must end within a minute.
pub async fn within<F: std::future::Future>(what: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(60), what).await.expect("done within a minute")
}

/// Prints `what: p50 …, p99 …, max … ms over N` for a bench's latencies.
pub fn report_latencies(what: &str, mut times: Vec<std::time::Duration>) {
    times.sort();
    let n = times.len();
    assert!(n > 0, "{what}: nothing measured");
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {n}",
        ms(times[n / 2]),
        ms(times[n * 99 / 100]),
        ms(times[n - 1])
    );
}
