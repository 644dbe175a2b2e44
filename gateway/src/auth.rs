//! Authentication: HS256 JWTs with expiry, issuer and audience checked, and
//! one extractor, [`Auth`], that checks the caller's role for a handler.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::state::Gateway;

const ISSUER: &str = "oauth3-gateway";
const AUDIENCE: &str = "oauth3-api";

/// What a tenant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Requests permits and executes code under them.
    Agent,
    /// Holds secrets and approves permits.
    Owner,
}

impl Role {
    /// `agent` or `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Owner => "owner",
        }
    }

    /// Parses `agent` / `owner`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// An authenticated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

/// Issues and verifies tokens with one HS256 key.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    /// Tokens signed with `key`, valid for `ttl`.
    pub fn new(key: &[u8; 32], ttl: Duration) -> Tokens {
        // Only HS256 is accepted: a token's own `alg` header is never trusted.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Tokens { encoding: EncodingKey::from_secret(key), decoding: DecodingKey::from_secret(key), validation, ttl }
    }

    /// A token for `tenant_id` acting as `role`.
    pub fn issue(&self, tenant_id: &str, role: Role) -> Result<String> {
        let iat = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: tenant_id.to_owned(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Crypto(format!("signing a token: {e}")))
    }

    /// The caller a token stands for.
    pub fn verify(&self, token: &str) -> Result<Caller> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Error::Unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired; sign up again for a new one".into(),
                _ => "invalid token".into(),
            })
        })?;
        Ok(Caller { id: data.claims.sub, role: data.claims.role })
    }

    /// The caller from an `Authorization: Bearer` header value.
    pub fn verify_header(&self, value: Option<&str>) -> Result<Caller> {
        let Some(value) = value else {
            return Err(Error::Unauthorized(
                "missing token: send Authorization: Bearer <token from POST /signup>".into(),
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        self.verify(token.trim())
    }
}

/// Which callers a handler accepts.
pub trait Requirement {
    /// The role required, or `None` for any authenticated tenant.
    const ROLE: Option<Role>;
}

/// Any authenticated tenant.
pub struct AnyRole;
/// Owners only.
pub struct OwnerRole;
/// Agents only.
pub struct AgentRole;

impl Requirement for AnyRole {
    const ROLE: Option<Role> = None;
}
impl Requirement for OwnerRole {
    const ROLE: Option<Role> = Some(Role::Owner);
}
impl Requirement for AgentRole {
    const ROLE: Option<Role> = Some(Role::Agent);
}

/// The one authentication extractor: a verified bearer token whose role
/// meets `R`. 401 without a valid token, 403 with the wrong role.
pub struct Auth<R: Requirement = AnyRole>(Caller, PhantomData<R>);

/// An authenticated owner.
pub type Owner = Auth<OwnerRole>;
/// An authenticated agent.
pub type Agent = Auth<AgentRole>;

impl<R: Requirement> Auth<R> {
    /// Checks `caller` against `R`.
    pub fn check(caller: Caller) -> Result<Auth<R>> {
        match R::ROLE {
            Some(role) if caller.role != role => Err(Error::Forbidden(format!(
                "only {}s may do this; this token is an {}'s",
                role.as_str(),
                caller.role.as_str()
            ))),
            _ => Ok(Auth(caller, PhantomData)),
        }
    }
}

impl<R: Requirement> Deref for Auth<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: Requirement + Send + Sync> FromRequestParts<Arc<Gateway>> for Auth<R> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Self> {
        let header = parts.headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        Auth::check(gateway.tokens.verify_header(header)?)
    }
}
