//! Test doubles for the drafting pipeline: docs served from memory (with a
//! fetch count) and a drafter that always proposes the same thing.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use oauth3_gateway::Error;
use oauth3_gateway::drafting::{DocSource, DraftInput, Drafter, FetchedDoc, Proposal};

/// Serves prepared docs by URL (404 for others) and counts fetches.
pub struct MemoryDocs {
    docs: HashMap<String, FetchedDoc>,
    fetches: AtomicUsize,
}

impl MemoryDocs {
    /// Serves each doc at its own `url`.
    pub fn new(docs: impl IntoIterator<Item = FetchedDoc>) -> MemoryDocs {
        MemoryDocs { docs: docs.into_iter().map(|d| (d.url.clone(), d)).collect(), fetches: AtomicUsize::new(0) }
    }

    /// Fetches so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl DocSource for MemoryDocs {
    async fn fetch(&self, url: &str) -> oauth3_gateway::Result<FetchedDoc> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.docs.get(url).cloned().ok_or_else(|| Error::bad_gateway("doc_fetch_failed", format!("{url} answered 404")))
    }
}

/// Returns the same proposal whatever it is asked.
pub struct FixedDrafter(pub Proposal);

#[async_trait::async_trait]
impl Drafter for FixedDrafter {
    fn name(&self) -> &str {
        "fixed"
    }

    async fn draft(&self, _input: DraftInput<'_>) -> oauth3_gateway::Result<Proposal> {
        Ok(self.0.clone())
    }
}
