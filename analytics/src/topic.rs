//! Creating the events topic when it does not exist yet, so a fresh broker works without
//! a manual step. Partitions decide how many consumers can share the work.
//!
//! The topic is created with Kafka's default retention spelled out (delete after 7 days):
//! Apache Kafka applies it anyway, but tansu deletes old records only from topics that
//! say so, and would otherwise keep every event for ever.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// How long the broker keeps events: Kafka's default, 7 days.
pub const RETENTION_MS: &str = "604800000";

/// Creates `topic` with `partitions` (and [`RETENTION_MS`]) unless it exists.
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", RETENTION_MS);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&new], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::warn!(topic = %name, error = %code, "could not create the topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
