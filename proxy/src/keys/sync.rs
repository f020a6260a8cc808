//! Background service: connects the shared Redis connection and listens on the key
//! channel, dropping changed keys from this instance's cache the moment any instance
//! changes them.

use super::cache::KeyCache;
use super::store::CHANNEL;
use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

const RETRY: Duration = Duration::from_millis(500);

/// Keeps Redis connected and the key cache coherent.
pub struct RedisSyncService {
    conn: Arc<RedisConn>,
    cache: Arc<KeyCache>,
}

impl RedisSyncService {
    /// Connects `conn` and keeps `cache` in step with key changes.
    pub fn new(conn: Arc<RedisConn>, cache: Arc<KeyCache>) -> Self {
        Self { conn, cache }
    }

    async fn run(&self) {
        let mut warned = false;
        while let Err(e) = self.conn.connect().await {
            if !warned {
                warn!(error = %e, "redis not reachable; keys and limits use their fallbacks until it is");
                warned = true;
            }
            tokio::time::sleep(RETRY).await;
        }
        info!("redis connected");
        // On a cluster, each new subscription goes to the next seed node, so a node that
        // died is not asked again and again.
        for attempt in 0usize.. {
            match self.listen(attempt).await {
                Ok(()) => warn!("redis key channel closed; resubscribing"),
                Err(e) => warn!(error = %e, "redis key channel failed; resubscribing"),
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn listen(&self, attempt: usize) -> Result<(), redis::RedisError> {
        let Some(client) = self.conn.pubsub_client(attempt) else {
            return Ok(());
        };
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        // Changes made while we were not listening are unknown: ask again before trusting.
        self.cache.expire_all();
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let payload: String = msg.get_payload().unwrap_or_default();
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(payload.as_bytes(), &mut hash).is_ok() {
                self.cache.invalidate(&hash);
            } else {
                self.cache.clear();
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for RedisSyncService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = shutdown.changed() => {}
            () = self.run() => {}
        }
    }
}
