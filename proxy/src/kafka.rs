//! Request events to Kafka, without ever making a request wait for the broker.
//!
//! The log stage builds one [`RequestEvent`] per request and `try_send`s it into a
//! bounded channel ([`EventSink::emit`]). [`KafkaService`], a Pingora background service,
//! moves events from the channel into librdkafka's queue (idempotent producer, batched,
//! compressed, keyed by API key id or client IP; up to 200 events of one key per message,
//! one JSON object per line, optionally as one zstd frame: `kafka.value_compression`).
//! When the broker is down or slow, events
//! wait in librdkafka's queue and then in the channel (`kafka.queue_capacity` each), then
//! (with `kafka.spill_dir`) in a bounded file ([`crate::spill`]), and are delivered in
//! order when it returns; only when all are full are events dropped, counted in
//! `sluice_kafka_events_total{result="dropped"}` and logged once per episode.
//! On shutdown the producer keeps taking events until the last request in flight has
//! logged its own, then flushes, holding the process's exit ([`crate::drain::ExitHold`])
//! until it is done.

use crate::config::KafkaConfig;
use crate::ids::IdSource;
use crate::metrics::metrics;
use crate::spill::Spill;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use sluice_event::{BatchEncoder, RequestEvent, ValueCompression};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Events moved from the channel to librdkafka per wakeup, at most.
const BATCH: usize = 4096;
/// Events in one Kafka message, at most.
const EVENTS_PER_MESSAGE: usize = 200;
/// How long the producer task lets events gather before sending what it has.
const GATHER: Duration = Duration::from_millis(20);

/// How long shutdown waits for queued events to reach the broker.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the logging phase puts events. Cheap to call; never blocks.
pub struct EventSink {
    tx: Option<mpsc::Sender<RequestEvent>>,
    rx: Mutex<Option<mpsc::Receiver<RequestEvent>>>,
    ids: Arc<IdSource>,
    dropping: Arc<AtomicBool>,
    spill: Option<Spill>,
    /// `sluice_kafka_events_total{result}` for queued / spilled / dropped, resolved once
    /// instead of per event.
    queued: prometheus::IntCounter,
    spilled_total: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
    /// Wakes the producer when an event was spilled: it may be waiting on an empty
    /// channel that no event will reach while spilling lasts.
    spilled: tokio::sync::Notify,
}

impl EventSink {
    /// A sink with room for `capacity` events (none: Kafka is not configured), a spill
    /// file for the overflow if given, and event ids from `ids` (the process's one
    /// source, shared with request ids).
    pub fn new(capacity: Option<usize>, spill: Option<Spill>, ids: Arc<IdSource>) -> Self {
        let (tx, rx) = match capacity {
            Some(n) => {
                let (tx, rx) = mpsc::channel(n.max(1));
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        Self {
            tx,
            rx: Mutex::new(rx),
            ids,
            dropping: Arc::new(AtomicBool::new(false)),
            spill,
            queued: metrics().kafka_events.with_label_values(&["queued"]),
            spilled_total: metrics().kafka_events.with_label_values(&["spilled"]),
            dropped: metrics().kafka_events.with_label_values(&["dropped"]),
            spilled: tokio::sync::Notify::new(),
        }
    }

    /// The spill file, if configured.
    pub fn spill(&self) -> Option<&Spill> {
        self.spill.as_ref()
    }

    /// Whether events are wanted at all.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// A unique event id: this process's random instance id and a sequence number.
    pub fn next_id(&self) -> String {
        self.ids.next_id()
    }

    /// Queues `event` for the producer; spills it when the queue is full (or while
    /// earlier events wait in the spill file); drops (and counts) it when neither can
    /// take it.
    pub fn emit(&self, event: RequestEvent) {
        let Some(tx) = &self.tx else { return };
        if let Some(spill) = self.spill.as_ref().filter(|s| s.is_active()) {
            self.spill_or_drop(spill, &event);
        } else {
            match tx.try_send(event) {
                Ok(()) => {
                    self.queued.inc();
                    if self.dropping.swap(false, Ordering::Relaxed) {
                        info!("kafka event queue has room again");
                    }
                }
                Err(mpsc::error::TrySendError::Full(event)) => match &self.spill {
                    Some(spill) => self.spill_or_drop(spill, &event),
                    None => self.drop_one(),
                },
                Err(mpsc::error::TrySendError::Closed(_)) => self.drop_one(),
            }
        }
        metrics()
            .kafka_queue_depth
            .set(i64::try_from(tx.max_capacity() - tx.capacity()).unwrap_or(i64::MAX));
    }

    fn spill_or_drop(&self, spill: &Spill, event: &RequestEvent) {
        match spill.append(event) {
            Ok(()) => {
                self.spilled_total.inc();
                self.spilled.notify_one();
            }
            Err(_) => self.drop_one(),
        }
    }

    fn drop_one(&self) {
        self.dropped.inc();
        if !self.dropping.swap(true, Ordering::Relaxed) {
            warn!(
                "kafka event queue (and spill file, if any) full: dropping events until it drains"
            );
        }
    }

    fn take_receiver(&self) -> Option<mpsc::Receiver<RequestEvent>> {
        self.rx.lock().ok()?.take()
    }
}

/// Counts `n` events lost for good in `sluice_kafka_events_total{result="dropped"}`.
fn count_dropped(n: usize) {
    metrics()
        .kafka_events
        .with_label_values(&["dropped"])
        .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Waits (without blocking the thread) until librdkafka holds no undelivered message, at
/// most `timeout`; whether it got there.
async fn delivered(producer: &ThreadedProducer<Deliveries>, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Counts deliveries as librdkafka reports them (no future per message).
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    /// How many events the message carries.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, events: usize) {
        let n = u64::try_from(events).unwrap_or(0);
        match result {
            Ok(_) => metrics()
                .kafka_events
                .with_label_values(&["delivered"])
                .inc_by(n),
            Err((e, _)) => {
                count_dropped(events);
                error!(error = %e, events, "kafka delivery failed for good; events dropped");
            }
        }
    }
}

/// The producer's librdkafka settings.
pub fn producer_config(cfg: &KafkaConfig) -> ClientConfig {
    // Values that are zstd frames already would not shrink again: compressing the batch
    // too would only cost CPU on both ends.
    let batch_compression = match cfg.value_compression {
        ValueCompression::None => "lz4",
        ValueCompression::Zstd => "none",
    };
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", cfg.linger_ms.to_string())
        .set("compression.type", batch_compression)
        // Keep retrying until delivered: an outage delays events, it does not lose them.
        .set("message.timeout.ms", "0")
        // A broker that is up without the topic yet is waited for too (analytics creates
        // it when it starts; `make up`'s first run starts both minutes after sluice):
        // librdkafka fails a missing topic's messages once this long has passed since the
        // topic's first event, by default 30 s. 30 min: larger values overflow its
        // microsecond arithmetic (an `int`), which then fails them at once.
        .set("topic.metadata.propagation.max.ms", "1800000")
        .set(
            "queue.buffering.max.messages",
            cfg.queue_capacity.to_string(),
        )
        .set("queue.buffering.max.kbytes", "1048576");
    c
}

impl KafkaService {
    /// Produces whatever the channel holds now, without waiting for more.
    async fn hand_over_queued(
        &self,
        producer: &ThreadedProducer<Deliveries>,
        encoder: &mut BatchEncoder,
        rx: &mut mpsc::Receiver<RequestEvent>,
    ) {
        let mut rest = Vec::new();
        while let Ok(event) = rx.try_recv() {
            rest.push(event);
        }
        if let Err((_, lost)) = self.produce(producer, encoder, &rest).await {
            count_dropped(lost);
        }
    }
}

/// Background service moving events from the sink into Kafka.
pub struct KafkaService {
    sink: Arc<EventSink>,
    cfg: KafkaConfig,
}

impl KafkaService {
    /// Produces `sink`'s events per `cfg`.
    pub fn new(sink: Arc<EventSink>, cfg: KafkaConfig) -> Self {
        Self { sink, cfg }
    }

    /// Sends the next batch from the spill file; when it is empty, ends spilling (or waits
    /// a moment if an append slipped in).
    async fn drain_spill(
        &self,
        producer: &ThreadedProducer<Deliveries>,
        encoder: &mut BatchEncoder,
        spill: &Spill,
    ) {
        let (events, bad) = spill.read(BATCH);
        if bad > 0 {
            warn!(bad, "unreadable lines in the kafka spill file; dropped");
            count_dropped(bad);
        }
        if events.is_empty() {
            if spill.finish_if_drained() {
                info!("kafka spill file drained");
            } else {
                tokio::time::sleep(GATHER).await;
            }
            return;
        }
        if let Err((e, lost)) = self.produce(producer, encoder, &events).await {
            count_dropped(lost);
            warn!(error = %e, "kafka rejected spilled events; dropped");
        }
        // The saved position moves on only once the broker has everything read so far:
        // a crash before that sends those events again, never loses them. (librdkafka
        // retries without end, so what is not confirmed yet is confirmed by a later call.)
        if delivered(producer, FLUSH_TIMEOUT).await {
            spill.commit();
        }
        metrics()
            .kafka_queue_depth
            .set(i64::from(producer.in_flight_count()));
    }

    /// Hands events to librdkafka, several per message (grouped by partition key, so a
    /// key's events stay in order on one partition). A full librdkafka queue (broker away)
    /// is waited out asynchronously; meanwhile the channel takes the overflow.
    async fn produce(
        &self,
        producer: &ThreadedProducer<Deliveries>,
        encoder: &mut BatchEncoder,
        events: &[RequestEvent],
    ) -> Result<(), (KafkaError, usize)> {
        // Grouped by reference: the events are encoded straight from the batch.
        let mut groups: std::collections::HashMap<&str, Vec<&RequestEvent>> =
            std::collections::HashMap::new();
        for e in events {
            let key = e.key_id.as_deref().or(e.client_ip.as_deref()).unwrap_or("");
            groups.entry(key).or_default().push(e);
        }
        for (key, group) in &groups {
            for chunk in group.chunks(EVENTS_PER_MESSAGE) {
                let payload = encoder.encode(chunk.iter().copied());
                loop {
                    let record = BaseRecord::with_opaque_to(&self.cfg.topic, chunk.len())
                        .key(*key)
                        .payload(&payload);
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err((e, _)) => return Err((e, chunk.len())),
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for KafkaService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.sink.take_receiver() else {
            return;
        };
        // Taken before anything can fail: the drain must not exit past unsent events.
        let _hold = crate::drain::ExitHold::take();
        let producer: ThreadedProducer<Deliveries> =
            match producer_config(&self.cfg).create_with_context(Deliveries) {
                Ok(p) => p,
                Err(e) => {
                    error!(error = %e, "cannot create the kafka producer; events will be dropped");
                    return;
                }
            };
        let mut encoder = BatchEncoder::new(self.cfg.value_compression);
        if self.cfg.value_compression == ValueCompression::Zstd && !encoder.compresses() {
            warn!("zstd unavailable; kafka message values are written uncompressed");
        }
        info!(brokers = %self.cfg.brokers, topic = %self.cfg.topic, "kafka producer started");
        // Events are taken in batches: one wakeup moves many, not one per request.
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Spilled events are newer than everything in the channel: they go out once
            // the channel is empty; meanwhile new events keep being spilled behind them.
            if let Some(spill) = self.sink.spill().filter(|s| s.is_active() && rx.is_empty()) {
                if *shutdown.borrow() {
                    break;
                }
                self.drain_spill(&producer, &mut encoder, spill).await;
                continue;
            }
            let got = tokio::select! {
                _ = shutdown.changed() => break,
                n = rx.recv_many(&mut batch, BATCH) => n,
                () = self.sink.spilled.notified() => continue,
            };
            if got == 0 {
                break;
            }
            // Let a few more arrive: fewer, fuller messages. Take only what is there:
            // `recv_many` would wait for the next event when none came, holding this
            // batch back until then (for ever, if none comes or spilling has begun).
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if let Err((e, lost)) = self.produce(&producer, &mut encoder, &batch).await {
                count_dropped(lost);
                warn!(error = %e, "kafka rejected events; dropped");
            }
            batch.clear();
            let depth = rx.len() as i64 + i64::from(producer.in_flight_count());
            metrics().kafka_queue_depth.set(depth);
        }
        // Shutdown: requests still in flight log their events after this point; take
        // them until the last has finished (the drain waits for the same count), then
        // close the channel, hand over the rest and flush.
        while crate::drain::InFlight::count() > 0 {
            tokio::time::sleep(GATHER).await;
            self.hand_over_queued(&producer, &mut encoder, &mut rx)
                .await;
        }
        rx.close();
        self.hand_over_queued(&producer, &mut encoder, &mut rx)
            .await;
        if let Err(e) = producer.flush(FLUSH_TIMEOUT) {
            warn!(error = %e, left = producer.in_flight_count(), "kafka flush on shutdown incomplete");
        }
    }
}
