//! API keys in Redis.
//!
//! - `sluice:key:{sha256}` hash {id, name, tier, status, created_at, rate_per_s, burst}:
//!   the lookup by a presented key's hash, on the request path (`rate_per_s` and `burst`
//!   empty when the key takes its tier's limits).
//! - `sluice:keyid:{id}` hash {hash, name, tier, status, created_at, rate_per_s, burst}:
//!   the admin view.
//! - `sluice:keyids` set of ids, for listing.
//!
//! On a Redis Cluster the same records are named `sluice:{keys}:key:…`, `…:keyid:…` and
//! `sluice:{keys}:ids`: one hash slot for all of them (see `Names`).
//!
//! Every change to an existing key (update, disable, revoke, rotate) is one Lua script
//! (`change.lua`) that reads the current record and writes the new one in a single step,
//! bumping the key's `version`: concurrent changes are serialized by Redis, so a rotate
//! racing another rotate or a revoke can never leave a second live secret behind, and a
//! revoke is final. Every change publishes the affected hashes on `sluice:keys`, so every
//! instance drops its cache entries at once; the instance making the change drops its own
//! before it answers, so the change holds for its very next request.

use super::cache::KeyCache;
use super::{generate_id, generate_key, hash_key, KeyLimits, KeyRecord, KeyStatus};
use crate::redis_conn::{RedisConn, RedisError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The pub/sub channel carrying changed key hashes (hex), or `*` for "forget all".
pub const CHANNEL: &str = "sluice:keys";
/// Where the key records live. On a Redis Cluster every name carries the hash tag
/// `{keys}`, so they share one slot: the change script and the creating transaction touch
/// several of them at once, which a cluster only allows within a slot.
#[derive(Clone, Copy)]
struct Names {
    by_hash: &'static str,
    by_id: &'static str,
    ids: &'static str,
}

const SINGLE: Names = Names {
    by_hash: "sluice:key:",
    by_id: "sluice:keyid:",
    ids: "sluice:keyids",
};
const CLUSTER: Names = Names {
    by_hash: "sluice:{keys}:key:",
    by_id: "sluice:{keys}:keyid:",
    ids: "sluice:{keys}:ids",
};

impl Names {
    fn by_hash(&self, hash_hex: &str) -> String {
        format!("{}{hash_hex}", self.by_hash)
    }

    fn by_id(&self, id: &str) -> String {
        format!("{}{id}", self.by_id)
    }
}
/// Admin operations are not on the request path; they may wait longer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The system's random source failed.
    #[error("random source: {0}")]
    Random(#[from] getrandom::Error),
    /// A revoked key cannot change.
    #[error("key {0} is revoked; revocation is final")]
    Revoked(String),
    /// The stored record is not one sluice wrote.
    #[error("key {0}: the stored record is unreadable")]
    Corrupt(String),
}

/// Changes requested by `PATCH /admin/keys/{id}`.
#[derive(Debug, Default)]
pub struct KeyChanges {
    /// New label.
    pub name: Option<String>,
    /// New tier (already checked to exist).
    pub tier: Option<String>,
    /// New status.
    pub status: Option<KeyStatus>,
    /// Own limits: `Some(Some(..))` sets them, `Some(None)` returns the key to its tier's.
    pub limits: Option<Option<KeyLimits>>,
}

/// The stored spelling of a key's own limits: (rate, burst), both empty for none.
fn limit_fields(limits: Option<KeyLimits>) -> (String, String) {
    limits.map_or((String::new(), String::new()), |l| {
        (l.rate_per_s.to_string(), l.burst.to_string())
    })
}

/// Key operations over a Redis connection.
#[derive(Clone)]
pub struct KeyStore {
    conn: Arc<RedisConn>,
    /// This instance's cache of lookups.
    local: Arc<KeyCache>,
    change: Arc<redis::Script>,
    names: Names,
}

/// What the change script did.
enum Changed {
    Ok {
        old_hash: String,
        new_hash: String,
        record: KeyRecord,
    },
    Missing,
    Revoked,
}

fn record_from(id: String, fields: &HashMap<String, String>) -> Option<KeyRecord> {
    Some(KeyRecord {
        id,
        name: fields.get("name")?.clone(),
        tier: fields.get("tier")?.clone(),
        status: KeyStatus::parse(fields.get("status")?)?,
        created_at: fields.get("created_at").cloned().unwrap_or_default(),
        limits: KeyLimits::parse(
            fields.get("rate_per_s").map_or("", String::as_str),
            fields.get("burst").map_or("", String::as_str),
        ),
    })
}

impl KeyStore {
    /// Keys stored through `conn`; changes drop their entries from `local` too.
    pub fn new(conn: Arc<RedisConn>, local: Arc<KeyCache>) -> Self {
        Self {
            names: if conn.is_cluster() { CLUSTER } else { SINGLE },
            conn,
            local,
            change: Arc::new(redis::Script::new(include_str!("change.lua"))),
        }
    }

    /// Runs the change script for key `id`: a rotate to `new_hash`, or an update of the
    /// given fields.
    async fn change(
        &self,
        id: &str,
        new_hash: Option<&str>,
        changes: &KeyChanges,
    ) -> Result<Changed, StoreError> {
        // "" leaves the key's own limits as they are; "none" clears them.
        let (rate, burst) = match changes.limits {
            None => (String::new(), String::new()),
            Some(None) => ("none".to_string(), "none".to_string()),
            Some(limits) => limit_fields(limits),
        };
        let mut invocation = self.change.key(self.names.by_id(id));
        invocation
            .arg(if new_hash.is_some() {
                "rotate"
            } else {
                "update"
            })
            .arg(new_hash.unwrap_or(""))
            .arg(changes.name.as_deref().unwrap_or(""))
            .arg(changes.tier.as_deref().unwrap_or(""))
            .arg(changes.status.map_or("", KeyStatus::as_str))
            .arg(id)
            .arg(self.names.by_hash(""))
            .arg(self.names.ids)
            .arg(CHANNEL)
            .arg(rate)
            .arg(burst);
        let reply: Vec<String> = self
            .conn
            .call(ADMIN_TIMEOUT, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        let changed = match reply.as_slice() {
            [ok, old_hash, new_hash, name, tier, status, created_at, _version, rate, burst]
                if ok == "ok" =>
            {
                let Some(status) = KeyStatus::parse(status) else {
                    return Err(StoreError::Corrupt(id.to_string()));
                };
                Changed::Ok {
                    old_hash: old_hash.clone(),
                    new_hash: new_hash.clone(),
                    record: KeyRecord {
                        id: id.to_string(),
                        name: name.clone(),
                        tier: tier.clone(),
                        status,
                        created_at: created_at.clone(),
                        limits: KeyLimits::parse(rate, burst),
                    },
                }
            }
            [revoked] if revoked == "revoked" => Changed::Revoked,
            _ => Changed::Missing,
        };
        if let Changed::Ok {
            old_hash, new_hash, ..
        } = &changed
        {
            self.forget_locally(&[old_hash, new_hash]);
        }
        Ok(changed)
    }

    /// Drops this instance's cache entries for `hashes` (hex).
    fn forget_locally(&self, hashes: &[&str]) {
        for hex_hash in hashes {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(hex_hash, &mut hash).is_ok() {
                self.local.invalidate(&hash);
            }
        }
    }

    /// The record for a presented key's hash (request path: `timeout` is the route's).
    pub async fn lookup(
        &self,
        hash: &[u8; 32],
        timeout: Duration,
    ) -> Result<Option<KeyRecord>, RedisError> {
        let key = self.names.by_hash(&hex::encode(hash));
        let fields: HashMap<String, String> = self
            .conn
            .call(timeout, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        let id = fields.get("id").cloned();
        Ok(id.and_then(|id| record_from(id, &fields)))
    }

    async fn fields_by_id(&self, id: &str) -> Result<HashMap<String, String>, RedisError> {
        let key = self.names.by_id(id);
        self.conn
            .call(ADMIN_TIMEOUT, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await
    }

    /// One key by id.
    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let fields = self.fields_by_id(id).await?;
        Ok(record_from(id.to_string(), &fields))
    }

    /// All keys, ordered by creation time.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let ids: Vec<String> = self
            .conn
            .call(ADMIN_TIMEOUT, |mut c| async move {
                redis::cmd("SMEMBERS")
                    .arg(self.names.ids)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.get(&id).await? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(records)
    }

    /// Stores a new key (a fresh id: nothing else can be changing it).
    async fn write_new(&self, record: &KeyRecord, hash_hex: &str) -> Result<(), RedisError> {
        let (rate, burst) = limit_fields(record.limits);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.hset_multiple(
            self.names.by_hash(hash_hex),
            &[
                ("id", record.id.as_str()),
                ("name", &record.name),
                ("tier", &record.tier),
                ("status", record.status.as_str()),
                ("created_at", &record.created_at),
                ("rate_per_s", &rate),
                ("burst", &burst),
                ("version", "1"),
            ],
        )
        .ignore();
        pipe.hset_multiple(
            self.names.by_id(&record.id),
            &[
                ("hash", hash_hex),
                ("name", &record.name),
                ("tier", &record.tier),
                ("status", record.status.as_str()),
                ("created_at", &record.created_at),
                ("rate_per_s", &rate),
                ("burst", &burst),
                ("version", "1"),
            ],
        )
        .ignore();
        pipe.sadd(self.names.ids, &record.id).ignore();
        self.conn
            .call(ADMIN_TIMEOUT, |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await?;
        // A negative cache entry for this hash (someone guessed it) must go. Published on
        // its own: a cluster routes a transaction by its keys' slot, and the channel name
        // would count as a key of another slot.
        let hash = hash_hex.to_string();
        self.conn
            .call(ADMIN_TIMEOUT, |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(hash)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        self.forget_locally(&[hash_hex]);
        Ok(())
    }

    /// Creates a key (with its own limits, or its tier's); returns its record and the
    /// plaintext, shown this once.
    pub async fn create(
        &self,
        name: &str,
        tier: &str,
        limits: Option<KeyLimits>,
    ) -> Result<(KeyRecord, String), StoreError> {
        let plaintext = generate_key()?;
        let record = KeyRecord {
            id: generate_id()?,
            name: name.to_string(),
            tier: tier.to_string(),
            status: KeyStatus::Active,
            created_at: chrono_now(),
            limits,
        };
        self.write_new(&record, &hex::encode(hash_key(&plaintext)))
            .await?;
        Ok((record, plaintext))
    }

    /// Applies `changes`; `None` when the id is unknown.
    pub async fn update(
        &self,
        id: &str,
        changes: KeyChanges,
    ) -> Result<Option<KeyRecord>, StoreError> {
        match self.change(id, None, &changes).await? {
            Changed::Ok { record, .. } => Ok(Some(record)),
            Changed::Missing => Ok(None),
            Changed::Revoked => Err(StoreError::Revoked(id.to_string())),
        }
    }

    /// A new secret for the key; the old one stops working at once.
    pub async fn rotate(&self, id: &str) -> Result<Option<(KeyRecord, String)>, StoreError> {
        let plaintext = generate_key()?;
        let hash = hex::encode(hash_key(&plaintext));
        match self.change(id, Some(&hash), &KeyChanges::default()).await? {
            Changed::Ok { record, .. } => Ok(Some((record, plaintext))),
            Changed::Missing => Ok(None),
            Changed::Revoked => Err(StoreError::Revoked(id.to_string())),
        }
    }
}

/// Now as RFC 3339 UTC, without pulling in a date library for one line.
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 -> (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_049), (2024, 11, 22));
    }
}
