//! Takes payments off the queue and sees each one paid exactly once.
//!
//! A payment goes to the processor [`Routing`] picks, with a fresh `requestedAt`, after
//! the attempt is recorded in Redis. Paid (200, or 422 "already paid") -> the ledger gets
//! the processor's own record, the job is done. Not paid (refused connection, 5xx, 429)
//! -> try again, possibly elsewhere. Unknown (timed out or broke after sending) -> the
//! payment stays with that processor, same `requestedAt`, until it answers 200/422, or a
//! lookup long after the call shows it does not hold the payment. So no payment can be
//! made by both processors, and the ledger always holds what the processor holds.

use super::client::{PayOutcome, ProcessorClient};
use super::ledger;
use super::queue::{Attempt, Job, Queue};
use super::routing::Routing;
use super::Which;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Pause between calls when neither processor is usable, or after a refusal.
const BACKOFF: Duration = Duration::from_millis(50);
/// Pause before retrying Redis or PostgreSQL.
const STORE_BACKOFF: Duration = Duration::from_millis(200);
/// How long `BLMOVE` waits for a payment before looping.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// The payment workers of one instance.
pub struct Workers {
    /// The shared queue.
    pub queue: Queue,
    /// The ledger.
    pub pool: PgPool,
    /// The processors.
    pub client: Arc<ProcessorClient>,
    /// Processor choice.
    pub routing: Arc<Routing>,
    /// Payments in progress at once.
    pub max_in_flight: usize,
    /// After an unknown outcome, how long to wait before a lookup may release the
    /// payment to the other processor (longer than any call the processor may still finish).
    pub unknown_for: Duration,
}

impl Workers {
    /// Runs forever: recovers this instance's leftovers, then takes and settles payments.
    pub async fn run(self: Arc<Self>) {
        let recovered = retry(|| self.queue.recover(), "recovering the processing list").await;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "payments taken before a restart are queued again"
            );
        }
        let slots = Arc::new(Semaphore::new(self.max_in_flight.max(1)));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.queue.take(TAKE_WAIT).await {
                Ok(Some(job)) => {
                    let workers = self.clone();
                    tokio::spawn(async move {
                        workers.settle(job).await;
                        drop(slot);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "taking from the queue failed; retrying");
                    tokio::time::sleep(STORE_BACKOFF).await;
                }
            }
        }
    }

    /// Pays one job, however long it takes.
    async fn settle(&self, job: Job) {
        let id = job.correlation_id.as_str();
        // An attempt recorded earlier (before a restart) has an unknown outcome.
        let mut last: Option<Attempt> =
            retry(|| self.queue.attempt(id), "reading an attempt").await;
        let mut unknown_since = last.map(|_| Instant::now());
        loop {
            let (which, requested_at_ms) = match (last, unknown_since) {
                (Some(a), Some(_)) => (a.processor, a.requested_at_ms),
                _ => match self.routing.choose() {
                    Some(which) => (which, Utc::now().timestamp_millis()),
                    None => {
                        tokio::time::sleep(BACKOFF).await;
                        continue;
                    }
                },
            };
            let attempt = Attempt {
                processor: which,
                requested_at_ms,
            };
            if last != Some(attempt) {
                retry(
                    || self.queue.record_attempt(id, attempt),
                    "recording an attempt",
                )
                .await;
                last = Some(attempt);
            }
            let requested_at = instant(requested_at_ms);
            match self.client.pay(which, id, job.cents, requested_at).await {
                PayOutcome::Paid => {
                    self.routing.succeeded(which);
                    return self.paid(&job, which, requested_at).await;
                }
                PayOutcome::AlreadyPaid => {
                    self.routing.succeeded(which);
                    // Trust the processor's own record of when it was requested.
                    let stored = self.client.lookup(which, id).await.ok().flatten();
                    let at = stored.map_or(requested_at, |s| s.requested_at);
                    return self.paid(&job, which, at).await;
                }
                PayOutcome::NotPaid => self.routing.failed(which),
                PayOutcome::Unknown => {
                    self.routing.failed(which);
                    unknown_since.get_or_insert_with(Instant::now);
                }
                PayOutcome::Refused(status) => {
                    self.routing.succeeded(which);
                    tracing::error!(
                        correlation_id = id,
                        status,
                        "processor refused the payment; dropped"
                    );
                    return retry(|| self.queue.finish(&job), "finishing a job").await;
                }
            }
            if let Some(since) = unknown_since {
                if since.elapsed() >= self.unknown_for {
                    match self.client.lookup(which, id).await {
                        Ok(Some(stored)) => {
                            return self.paid(&job, which, stored.requested_at).await
                        }
                        Ok(None) => unknown_since = None,
                        Err(()) => {}
                    }
                }
            }
            tokio::time::sleep(BACKOFF).await;
        }
    }

    /// Records a confirmed payment and finishes the job.
    async fn paid(&self, job: &Job, which: Which, requested_at: DateTime<Utc>) {
        let id = job.correlation_id.as_str();
        retry(
            || ledger::record(&self.pool, id, which, job.cents, requested_at),
            "recording a payment in the ledger",
        )
        .await;
        retry(|| self.queue.finish(job), "finishing a job").await;
    }
}

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
}

/// Retries `op` until it succeeds: a payment that was made must reach the ledger.
async fn retry<T, E, F, Fut>(mut op: F, what: &str) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut logged = false;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) => {
                if !logged {
                    tracing::warn!(error = %e, "{what} failed; retrying until it works");
                    logged = true;
                }
                tokio::time::sleep(STORE_BACKOFF).await;
            }
        }
    }
}
