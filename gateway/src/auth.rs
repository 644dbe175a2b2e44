//! Authentication: HS256 JWTs with expiry, issuer and audience checked, not
//! revoked ([`authenticate`]: one indexed read per request), and one
//! extractor, [`Auth`], that checks the caller's role for a handler.

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
use crate::store::tenants;

const ISSUER: &str = "oauth3-gateway";
const AUDIENCE: &str = "oauth3-api";

/// What a tenant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Token id, to revoke this one token. Tokens issued before revocation
    /// existed have none; they are known by their hash instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// The tenant's token generation when the token was issued; revoking
    /// all of a tenant's tokens moves the generation on.
    #[serde(default, rename = "gen")]
    generation: i64,
}

/// An authenticated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// The token it presented.
    pub token: TokenId,
}

/// Which token a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenId {
    /// Its `jti`, or for older tokens without one, the SHA-256 of the token.
    pub id: String,
    /// When it expires, in Unix milliseconds.
    pub expires_at_ms: i64,
    /// The tenant's token generation it was issued in.
    pub generation: i64,
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

    /// A token for `tenant_id` acting as `role`, in the tenant's token
    /// `generation` (see [`revoke_all`]).
    pub fn issue(&self, tenant_id: &str, role: Role, generation: i64) -> Result<String> {
        let iat = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: tenant_id.to_owned(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: Some(crate::keys::new_id("tok")?),
            generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Crypto(format!("signing a token: {e}")))
    }

    /// The caller a token stands for, if its signature and claims hold.
    /// This does not check revocation: [`authenticate`] does both.
    pub fn verify(&self, token: &str) -> Result<Caller> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Error::Unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired; sign up again for a new one".into(),
                _ => "invalid token".into(),
            })
        })?;
        let claims = data.claims;
        let id = match claims.jti {
            Some(jti) => jti,
            None => crate::keys::hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()),
        };
        let token =
            TokenId { id, expires_at_ms: (claims.exp as i64).saturating_mul(1000), generation: claims.generation };
        Ok(Caller { id: claims.sub, role: claims.role, token })
    }
}

/// The subject a token claims, read without checking its signature: only
/// for counting failed sign-ins per account, never to decide anything.
pub fn claimed_subject(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(|s| s.chars().take(64).collect())
}

/// The token in an `Authorization: Bearer` header value.
pub fn bearer(value: Option<&str>) -> Result<&str> {
    let Some(value) = value else {
        return Err(Error::Unauthorized("missing token: send Authorization: Bearer <token from POST /signup>".into()));
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
    Ok(token.trim())
}

/// The caller `token` stands for: signature and claims checked, then, in
/// one indexed read, that its tenant still exists, that all of the tenant's
/// tokens were not revoked since it was issued, and that it was not revoked
/// itself. Every authenticated request goes through here.
pub async fn authenticate(gateway: &Gateway, token: &str) -> Result<Caller> {
    let caller = gateway.tokens.verify(token)?;
    match tenants::token_state(&gateway.db, &caller.id, &caller.token.id).await? {
        None => Err(Error::Unauthorized("the token's account no longer exists".into())),
        Some((generation, revoked)) if generation != caller.token.generation || revoked => {
            Err(Error::Unauthorized("the token has been revoked; use a newer one".into()))
        }
        Some(_) => Ok(caller),
    }
}

/// Revokes one token until it would have expired anyway.
pub async fn revoke(gateway: &Gateway, caller: &Caller) -> Result<()> {
    tenants::revoke_token(&gateway.db, caller, now_ms()).await
}

/// Revokes every token of the caller's tenant (one statement: the tenant's
/// token generation moves on) and returns a fresh token for it.
pub async fn revoke_all(gateway: &Gateway, caller: &Caller) -> Result<String> {
    let generation = tenants::next_token_generation(&gateway.db, &caller.id).await?;
    gateway.tokens.issue(&caller.id, caller.role, generation)
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
        Auth::check(authenticate(gateway, bearer(header)?).await?)
    }
}
