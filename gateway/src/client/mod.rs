//! The `oauth3` command-line client: the same binary talking to a gateway
//! over its JSON API. The gateway's URL comes from `--url` or `OAUTH3_URL`,
//! the token from `OAUTH3_TOKEN` or the file `oauth3 login` writes (mode
//! 0600, in the user's config dir): never from the command line, where other
//! users see it in the process list. Output is for people, or JSON with
//! `--json`; errors print the gateway's code and message.

pub(crate) mod api;
pub mod commands;
mod profile;
mod work;

pub use commands::run;
pub use profile::Profile;
