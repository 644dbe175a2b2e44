//! Owners' sealed secrets. Values are sealed before they reach the store
//! and opened only inside egress; the store never sees them in the clear.

use super::rows::SecretRow;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keys::KeyVersion;

/// A sealed value and the key version it was sealed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// What [`Sealer::seal`](crate::keys::Sealer::seal) produced.
    pub bytes: Vec<u8>,
    /// The sealing key's version.
    pub version: KeyVersion,
}

/// A secret sealed under an older key version, to re-encrypt.
#[derive(Debug)]
pub struct StaleSecret {
    /// Its owner.
    pub owner_id: String,
    /// Its name.
    pub name: String,
    /// As stored.
    pub sealed: Sealed,
}

/// The key version new secrets are sealed under.
pub async fn sealing_version(db: &Db) -> Result<KeyVersion> {
    let text: String =
        sqlx::query_scalar("SELECT version FROM key_versions WHERE purpose = 'sealing'").fetch_one(&db.pool).await?;
    version(&text)
}

/// Seals new secrets under `version` from now on, on every replica.
pub async fn set_sealing_version(db: &Db, version: KeyVersion) -> Result<()> {
    sqlx::query("UPDATE key_versions SET version = $1 WHERE purpose = 'sealing'")
        .bind(version.to_string())
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// Stores `sealed` as `owner`'s secret `name` at `now`: the row after, and
/// whether it replaced one; `None`, storing nothing, when `sealed`'s key
/// version is no longer the one new secrets use (seal again and retry).
pub async fn put(db: &Db, owner: &str, name: &str, sealed: &Sealed, now: i64) -> Result<Option<(SecretRow, bool)>> {
    // The version check is in each statement, so a rotation that moved on
    // in between cannot be undone by a late write under the old key.
    let replaced = sqlx::query(
        "UPDATE secrets SET sealed = $1, updated_at = $2, key_version = $5 WHERE owner_id = $3 AND name = $4 \
         AND EXISTS (SELECT 1 FROM key_versions WHERE purpose = 'sealing' AND version = $5)",
    )
    .bind(&sealed.bytes)
    .bind(now)
    .bind(owner)
    .bind(name)
    .bind(sealed.version.to_string())
    .execute(&db.writer)
    .await?
    .rows_affected()
        == 1;
    let created_at: i64 = if replaced {
        sqlx::query_scalar("SELECT created_at FROM secrets WHERE owner_id = $1 AND name = $2")
            .bind(owner)
            .bind(name)
            .fetch_one(&db.pool)
            .await?
    } else {
        let inserted = sqlx::query(
            "INSERT INTO secrets (owner_id, name, sealed, created_at, updated_at, key_version) \
             SELECT $1, $2, $3, $4, $4, $5 \
             WHERE EXISTS (SELECT 1 FROM key_versions WHERE purpose = 'sealing' AND version = $5) \
             ON CONFLICT (owner_id, name) DO UPDATE SET sealed = excluded.sealed, \
             updated_at = excluded.updated_at, key_version = excluded.key_version",
        )
        .bind(owner)
        .bind(name)
        .bind(&sealed.bytes)
        .bind(now)
        .bind(sealed.version.to_string())
        .execute(&db.writer)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        now
    };
    Ok(Some((SecretRow { name: name.to_owned(), created_at, updated_at: now }, replaced)))
}

/// `owner`'s secrets, by name.
pub async fn of_owner(db: &Db, owner: &str) -> Result<Vec<SecretRow>> {
    Ok(sqlx::query_as("SELECT name, created_at, updated_at FROM secrets WHERE owner_id = $1 ORDER BY name")
        .bind(owner)
        .fetch_all(&db.pool)
        .await?)
}

/// Whether `owner` holds a secret `name`.
pub async fn exists(db: &Db, owner: &str, name: &str) -> Result<bool> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(count > 0)
}

/// `owner`'s sealed secret `name`.
pub async fn sealed(db: &Db, owner: &str, name: &str) -> Result<Option<Sealed>> {
    let row: Option<(Vec<u8>, String)> =
        sqlx::query_as("SELECT sealed, key_version FROM secrets WHERE owner_id = $1 AND name = $2")
            .bind(owner)
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|(bytes, text)| Ok(Sealed { bytes, version: version(&text)? })).transpose()
}

/// Deletes `owner`'s secret `name`; false when there was none.
pub async fn delete(db: &Db, owner: &str, name: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .execute(&db.writer)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Up to `limit` secrets sealed under a version other than `current`, in
/// (owner, name) order after `after`.
pub async fn stale(db: &Db, current: KeyVersion, after: &(String, String), limit: i64) -> Result<Vec<StaleSecret>> {
    let rows: Vec<(String, String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT owner_id, name, sealed, key_version FROM secrets \
         WHERE key_version <> $1 AND (owner_id > $2 OR (owner_id = $2 AND name > $3)) \
         ORDER BY owner_id, name LIMIT $4",
    )
    .bind(current.to_string())
    .bind(&after.0)
    .bind(&after.1)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
        .map(|(owner_id, name, bytes, text)| {
            Ok(StaleSecret { owner_id, name, sealed: Sealed { bytes, version: version(&text)? } })
        })
        .collect()
}

/// Replaces each stale secret with its re-sealed value, in one transaction,
/// unless it changed since it was read: how many were replaced.
pub async fn reseal(db: &Db, batch: &[(StaleSecret, Sealed)]) -> Result<u64> {
    let mut tx = db.writer.begin().await?;
    let mut replaced = 0;
    for (old, new) in batch {
        replaced += sqlx::query(
            "UPDATE secrets SET sealed = $1, key_version = $2 \
             WHERE owner_id = $3 AND name = $4 AND key_version = $5 AND sealed = $6",
        )
        .bind(&new.bytes)
        .bind(new.version.to_string())
        .bind(&old.owner_id)
        .bind(&old.name)
        .bind(old.sealed.version.to_string())
        .bind(&old.sealed.bytes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(replaced)
}

/// The key versions the stored secrets are sealed under.
pub async fn versions_in_use(db: &Db) -> Result<Vec<KeyVersion>> {
    let texts: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_version FROM secrets").fetch_all(&db.pool).await?;
    texts.iter().map(|text| version(text)).collect()
}

/// One secret sealed under `version`, if any.
pub async fn sample(db: &Db, version: KeyVersion) -> Result<Option<StaleSecret>> {
    let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT owner_id, name, sealed FROM secrets WHERE key_version = $1 ORDER BY owner_id, name LIMIT 1",
    )
    .bind(version.to_string())
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(owner_id, name, bytes)| StaleSecret { owner_id, name, sealed: Sealed { bytes, version } }))
}

/// How many secrets are sealed under a version other than `current`.
pub async fn count_stale(db: &Db, current: KeyVersion) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE key_version <> $1")
        .bind(current.to_string())
        .fetch_one(&db.pool)
        .await?)
}

fn version(text: &str) -> Result<KeyVersion> {
    text.parse().map_err(|e| Error::Internal(format!("the database names a bad key version: {e}")))
}
