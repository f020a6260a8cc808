//! The process-wide parts shared by the gateway's stages, the admin listener and the
//! background services, across config generations: the Redis connection, the key cache
//! and store, the event sink.

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::ids::IdSource;
use crate::kafka::EventSink;
use crate::keys::cache::KeyCache;
use crate::keys::store::KeyStore;
use crate::redis_conn::RedisConn;
use std::sync::Arc;

/// Why the shared parts could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// The Redis URL is not usable.
    #[error("redis url: {0}")]
    Redis(#[from] redis::RedisError),
    /// The kafka spill folder or file could not be opened.
    #[error("kafka.spill_dir {0}: {1}")]
    Spill(String, std::io::Error),
}

/// Shared by the gateway, the admin listener and the background services.
pub struct Services {
    /// Redis, when the config has a `redis:` section.
    pub redis: Option<Arc<RedisConn>>,
    /// This instance's key cache.
    pub key_cache: Arc<KeyCache>,
    /// Key operations (admin API), when Redis is configured.
    pub key_store: Option<KeyStore>,
    /// Request events on their way to Kafka.
    pub events: Arc<EventSink>,
    /// Request ids and trace context for requests that bring none.
    pub ids: Arc<IdSource>,
    /// The access log (a no-op when off).
    pub access_log: Arc<AccessLog>,
}

impl Services {
    /// Builds the shared parts for `config` (nothing connects yet).
    pub fn new(config: &Config) -> Result<Arc<Self>, ServicesError> {
        let redis = config
            .redis
            .as_ref()
            .map(|r| {
                if r.cluster.is_empty() {
                    RedisConn::new(&r.url)
                } else {
                    RedisConn::cluster(&r.cluster)
                }
            })
            .transpose()?;
        let key_cache = Arc::new(KeyCache::default());
        let key_store = redis
            .clone()
            .map(|conn| KeyStore::new(conn, key_cache.clone()));
        let ids = Arc::new(IdSource::default());
        Ok(Arc::new(Self {
            access_log: Arc::new(AccessLog::new(config.access_log.as_ref())),
            events: Arc::new(EventSink::new(
                config.kafka.as_ref().map(|k| k.queue_capacity),
                spill(config)?,
                ids.clone(),
            )),
            ids,
            redis,
            key_cache,
            key_store,
        }))
    }
}

/// The spill file, when the config asks for one.
fn spill(config: &Config) -> Result<Option<crate::spill::Spill>, ServicesError> {
    let Some(kafka) = &config.kafka else {
        return Ok(None);
    };
    let Some(dir) = &kafka.spill_dir else {
        return Ok(None);
    };
    crate::spill::Spill::open(dir, kafka.spill_max_bytes)
        .map(Some)
        .map_err(|e| ServicesError::Spill(dir.display().to_string(), e))
}
