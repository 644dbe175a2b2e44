//! `oauth3-gateway`: the `oauth3` server. Agents sign up, request permits
//! (specs they propose, or intents for a drafter), owners store sealed
//! secrets and approve exact spec hashes, and agents' code runs in the
//! `oauth3-host` sandbox on a bounded worker pool, its every call decided,
//! credentialed and scrubbed by egress. Owners decide in a web UI served on
//! the same paths as the JSON API. State lives in SQLite or Postgres.

mod api;
pub mod auth;
mod capabilities;
pub mod client;
pub mod config;
mod confirm;
pub mod db;
pub mod direct;
mod error;
mod executor;
pub mod group_commit;
pub mod keyring;
pub mod keys;
pub mod mcp;
pub mod notify;
mod offline;
pub mod receipts;
pub mod retention;
pub mod rotate;
mod server;
pub mod sql;
mod state;
mod store;
pub mod tee;
pub mod views;
pub mod visible;
pub mod wakeups;
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
pub use offline::{Lint, spec_describe, spec_lint, spec_wit};
pub use server::{Capabilities, Server};
pub use store::{ConfirmationStatus, ExecutionStatus, PermitStatus, RequestStatus};
