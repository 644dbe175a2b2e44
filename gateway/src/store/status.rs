//! Lifecycle statuses, stored as their snake_case names. Each transition
//! between them is one function of the store that states the status it
//! comes from in its `WHERE` clause, so a change that lost a race changes
//! nothing and says so.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Error;

/// Defines a status enum stored and shown as snake_case text.
macro_rules! status {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<$name, Error> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Internal(format!(concat!("unknown ", stringify!($name), " `{}` in the database"), other))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(text: String) -> Result<$name, Error> {
                text.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status! {
    /// Where a permit is: `pending` until its first request is approved
    /// (`active`) or denied (`denied`); an owner may revoke it (`revoked`).
    /// `expired` is never stored: it is how an active permit past its
    /// expiry is shown.
    PermitStatus {
        /// Requested, never approved.
        Pending = "pending",
        /// Approved: executions may run under it.
        Active = "active",
        /// Its first request was denied.
        Denied = "denied",
        /// Revoked by its owner.
        Revoked = "revoked",
        /// Active, but past its expiry (shown, not stored).
        Expired = "expired",
    }
}

status! {
    /// Where a permit request is: `pending` until an owner approves or
    /// denies it, or it expires unanswered.
    RequestStatus {
        /// Waiting for an owner.
        Pending = "pending",
        /// Approved: its spec is the permit's.
        Approved = "approved",
        /// Denied, or left pending when the permit was revoked.
        Denied = "denied",
        /// Not answered in time.
        Expired = "expired",
    }
}

status! {
    /// Where an execution is: `queued`, claimed by one worker (`running`),
    /// then `completed` or `failed`.
    ExecutionStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// A worker runs it.
        Running = "running",
        /// It ran to the end without an error.
        Completed = "completed",
        /// It was refused, failed, or was interrupted.
        Failed = "failed",
    }
}

status! {
    /// Where a confirmation of one call is: `pending` until the owner
    /// approves or denies it; an approval is `used` by the first identical
    /// call. `expired`: pending or approved past its expiry (stored when
    /// the same request comes again, shown from then on).
    ConfirmationStatus {
        /// Waiting for the owner.
        Pending = "pending",
        /// Approved: the identical call passes once, until it expires.
        Approved = "approved",
        /// Denied by the owner.
        Denied = "denied",
        /// Its approval let one call through.
        Used = "used",
        /// Not answered, or not used, in time.
        Expired = "expired",
    }
}

impl ExecutionStatus {
    /// `completed` or `failed`: nothing will change it again.
    pub fn is_finished(self) -> bool {
        matches!(self, ExecutionStatus::Completed | ExecutionStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_what_they_store() {
        for status in [PermitStatus::Pending, PermitStatus::Active, PermitStatus::Denied, PermitStatus::Revoked] {
            assert_eq!(status.as_str().parse::<PermitStatus>().unwrap(), status);
        }
        assert_eq!("queued".parse::<ExecutionStatus>().unwrap(), ExecutionStatus::Queued);
        assert_eq!(serde_json::to_value(RequestStatus::Approved).unwrap(), "approved");
        assert!(matches!("approved ".parse::<RequestStatus>(), Err(Error::Internal(_))));
    }
}
