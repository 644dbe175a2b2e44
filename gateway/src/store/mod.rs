//! The store: typed rows, lifecycle statuses as enums, and all the SQL for
//! permits and their requests, executions and their components, secrets,
//! tenants, browser sessions, the owner's confirmations of single calls and
//! the audit log. Every state change is one function that checks, in its `WHERE`
//! clause, the state it comes from. Handlers and workers never write SQL.
//! (The rate limiter's state and retention's deletes are the SQL of those
//! capabilities, next to them.)

pub mod audit;
pub mod components;
pub mod confirmations;
pub mod executions;
pub mod key_checks;
pub mod permits;
mod rows;
pub mod secrets;
pub mod sessions;
mod status;
pub mod tenants;

pub use rows::{
    AuditRow, Claimed, ConfirmationRow, ExecutionRow, NewConfirmation, NewExecution, NewRequest, PermitRow, RequestRow,
    SecretRow,
};
pub use status::{ConfirmationStatus, ExecutionStatus, PermitStatus, RequestStatus};
