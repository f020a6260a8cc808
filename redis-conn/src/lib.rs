//! One connection type for a single Redis server or a Redis Cluster, so code that sends
//! commands and scripts does not care which it talks to: sluice's key store and limiter,
//! and the payments queue.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use std::time::Duration;

/// A connection to one server (reconnecting on its own), or to a cluster (commands go to
/// the master of their key's slot; the client follows failovers and slot moves).
#[derive(Clone)]
pub enum Conn {
    /// One server.
    Single(ConnectionManager),
    /// A cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Where to connect: `redis://host:port[/db]`, or `redis+cluster://host:port,host:port,…`
/// (the seed nodes of a cluster).
#[derive(Clone)]
pub enum Target {
    /// One server.
    Single(redis::Client),
    /// A cluster and its seed node URLs.
    Cluster(Box<ClusterClient>, Vec<String>),
}

impl Target {
    /// Parses `url` (see [`Target`]).
    pub fn parse(url: &str, connect_timeout: Duration) -> redis::RedisResult<Self> {
        match url.strip_prefix("redis+cluster://") {
            Some(nodes) => {
                let nodes: Vec<String> = nodes
                    .split(',')
                    .filter(|n| !n.trim().is_empty())
                    .map(|n| format!("redis://{}", n.trim()))
                    .collect();
                Self::cluster(&nodes, connect_timeout)
            }
            None => Ok(Self::Single(redis::Client::open(url)?)),
        }
    }

    /// The cluster seeded by `nodes` (`redis://host:port` each).
    pub fn cluster(nodes: &[String], connect_timeout: Duration) -> redis::RedisResult<Self> {
        let client = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(connect_timeout)
            .response_timeout(Duration::from_secs(2))
            .retries(2)
            .build()?;
        Ok(Self::Cluster(Box::new(client), nodes.to_vec()))
    }

    /// Whether this is a cluster (keys used together must share a slot there).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }

    /// Connects once (a single server's manager then reconnects on its own).
    pub async fn connect(&self, single: ConnectionManagerConfig) -> redis::RedisResult<Conn> {
        match self {
            Self::Single(client) => ConnectionManager::new_with_config(client.clone(), single)
                .await
                .map(Conn::Single),
            Self::Cluster(client, _) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    /// A plain client for pub/sub: the server, or the `attempt`-th seed node in turn (a
    /// message published on any node of a cluster reaches the subscribers of every node).
    pub fn pubsub_client(&self, attempt: usize) -> Option<redis::Client> {
        match self {
            Self::Single(client) => Some(client.clone()),
            Self::Cluster(_, nodes) => nodes
                .get(attempt % nodes.len().max(1))
                .and_then(|n| redis::Client::open(n.as_str()).ok()),
        }
    }
}
