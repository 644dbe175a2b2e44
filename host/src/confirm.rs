//! Step-up confirmation of single calls: a call that a rule marked `confirm`
//! allows is sent only once the owner has confirmed that exact request.
//! [`Confirmations`] is the capability egress asks; the embedder keeps the
//! confirmations (the gateway in its database). [`MemoryConfirmations`] is
//! the in-process one.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::digest::{Context, SHA256};

use crate::call::GuestCall;

/// Version tag at the start of the hashed encoding: a change to the
/// encoding changes every hash, so no old approval matches a new request.
const HASH_TAG: &[u8] = b"oauth3-confirm-v1";

/// A call waiting for, or matched against, the owner's confirmation: the
/// request as the agent asked for it. Injected headers and query parameters
/// are not in it (they hold secrets); `url` shows injected values redacted.
#[derive(Debug, Clone, Copy)]
pub struct ConfirmationRequest<'a> {
    /// The permit it is made under; an approval holds under this permit only.
    pub permit_id: &'a str,
    /// The execution that made it.
    pub execution_id: &'a str,
    /// The call as the agent asked for it (its headers are the agent's own).
    pub call: &'a GuestCall,
    /// The upstream URL the call would go to, injected values redacted.
    pub url: &'a str,
    /// [`request_hash`] of the call: what an approval binds.
    pub hash: &'a str,
}

/// What the owner's confirmations say about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// An approval of this permit and hash existed, unused and unexpired;
    /// it is now used up: send the call.
    Granted,
    /// No approval: a pending confirmation with this id waits for the owner
    /// (created now, or the one already pending for this permit and hash).
    Required {
        /// The confirmation's id, for the agent and the owner.
        id: String,
    },
    /// The confirmations could not be read or written: refuse the call.
    Unavailable,
}

/// The owner's confirmations of single calls. A `Granted` answer uses the
/// approval up, atomically: of two identical calls racing for one approval,
/// one is granted. Retrying a call must not add confirmations: the pending
/// one for the same permit and hash is answered again.
#[async_trait::async_trait]
pub trait Confirmations: Send + Sync {
    /// Consumes an approval of `request`, or records that it waits for one.
    async fn check(&self, request: &ConfirmationRequest<'_>) -> Confirmation;
}

/// The SHA-256 (lower-case hex) of an unambiguous encoding of the request:
/// a version tag, then method, integration and path, the query pairs in
/// order, the agent's headers in order and the body, every string and byte
/// string prefixed with its length (u64, big-endian) and every list with its
/// count, so no two different requests encode alike. An absent body and an
/// empty one are the same (the policy reads an empty body as none).
/// Headers are in it because the owner is shown them: an approval holds for
/// exactly what was shown.
pub fn request_hash(
    integration: &str,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> String {
    let mut digest = Context::new(&SHA256);
    let mut field = |bytes: &[u8]| {
        digest.update(&(bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    field(HASH_TAG);
    field(method.as_bytes());
    field(integration.as_bytes());
    field(path.as_bytes());
    for pairs in [query, headers] {
        field(&(pairs.len() as u64).to_be_bytes());
        for (name, value) in pairs {
            field(name.as_bytes());
            field(value.as_bytes());
        }
    }
    field(body.unwrap_or_default());
    let hash = digest.finish();
    hash.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Confirmations in process memory (tests, and embedders that confirm in
/// their own process): ids are `cfm_1`, `cfm_2`, …; approvals do not expire.
#[derive(Debug, Default)]
pub struct MemoryConfirmations {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    next: u64,
    /// id → (permit, hash, approved)
    open: HashMap<String, (String, String, bool)>,
}

impl MemoryConfirmations {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Approves the pending confirmation `id`, once. False when there is none.
    pub fn approve(&self, id: &str) -> bool {
        match self.lock().open.get_mut(id) {
            Some((_, _, approved @ false)) => {
                *approved = true;
                true
            }
            _ => false,
        }
    }

    /// Denies the pending confirmation `id`. False when there is none.
    pub fn deny(&self, id: &str) -> bool {
        let mut state = self.lock();
        let pending = state.open.get(id).is_some_and(|(_, _, approved)| !approved);
        pending && state.open.remove(id).is_some()
    }

    /// Ids of the confirmations waiting for the owner.
    pub fn pending(&self) -> Vec<String> {
        let state = self.lock();
        let mut ids: Vec<String> = state.open.iter().filter(|(_, c)| !c.2).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }
}

#[async_trait::async_trait]
impl Confirmations for MemoryConfirmations {
    async fn check(&self, request: &ConfirmationRequest<'_>) -> Confirmation {
        let mut state = self.lock();
        let same = |(permit, hash, _): &(String, String, bool)| permit == request.permit_id && hash == request.hash;
        let found = state.open.iter().find(|(_, c)| same(c)).map(|(id, (_, _, approved))| (id.clone(), *approved));
        match found {
            Some((id, true)) => {
                state.open.remove(&id);
                Confirmation::Granted
            }
            Some((id, false)) => Confirmation::Required { id },
            None => {
                state.next += 1;
                let id = format!("cfm_{}", state.next);
                state.open.insert(id.clone(), (request.permit_id.to_owned(), request.hash.to_owned(), false));
                Confirmation::Required { id }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::request_hash;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn requests_that_differ_anywhere_hash_apart_even_where_plain_concatenation_would_not() {
        let base = request_hash("mail", "POST", "/m", &pairs(&[("a", "bc")]), &[], Some(b"{}"));
        assert_eq!(base, request_hash("mail", "POST", "/m", &pairs(&[("a", "bc")]), &[], Some(b"{}")));
        assert_eq!(base.len(), 64);
        let others = [
            request_hash("mail", "POST", "/m", &pairs(&[("ab", "c")]), &[], Some(b"{}")),
            request_hash("mail", "POST", "/m", &pairs(&[("a", "b"), ("c", "")]), &[], Some(b"{}")),
            request_hash("mail", "POST", "/m", &[], &pairs(&[("a", "bc")]), Some(b"{}")),
            request_hash("mail", "POST", "/m", &pairs(&[("a", "bc")]), &[], Some(b"{ }")),
            request_hash("mail", "PUT", "/m", &pairs(&[("a", "bc")]), &[], Some(b"{}")),
            request_hash("mai", "POST", "l/m", &pairs(&[("a", "bc")]), &[], Some(b"{}")),
        ];
        for other in others {
            assert_ne!(base, other);
        }
        assert_eq!(request_hash("m", "GET", "/", &[], &[], None), request_hash("m", "GET", "/", &[], &[], Some(b"")));
    }
}
