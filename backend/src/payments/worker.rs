//! Takes payments off the queue and sees each one paid exactly once.
//!
//! A payment goes to the processor [`Routing`] picks, with a fresh `requestedAt`, after
//! the attempt is recorded in Redis. Paid (200, or 422 "already paid") -> the ledger gets
//! the processor's own record, the job is done. Not paid (refused connection, 5xx, 429)
//! -> try again, possibly elsewhere. Unknown (timed out or broke after sending) -> the
//! payment stays with that processor, same `requestedAt`, until it answers 200/422, or a
//! lookup long after the call shows it does not hold the payment. So no payment can be
//! made by both processors, and the ledger always holds what the processor holds.
//!
//! Every call is fenced: the worker claims the payment with a token when it starts, and
//! records each attempt only while that token still owns it. An instance that froze
//! (SIGSTOP, CPU starvation, a partition) past its heartbeat has lost its payments to a
//! takeover; on waking its next attempt is refused, and it drops the payment instead of
//! calling a processor with its stale view. A call is made at most [`SEND_WINDOW`] after
//! its fence check passed, so the new owner's wait of `lookup_after` before it trusts a
//! "not found" covers every call the old owner could still make.

use super::client::{PayOutcome, ProcessorClient};
use super::ledger;
use super::metrics::metrics;
use super::queue::{Attempt, Job, Queue, Token};
use super::routing::Routing;
use super::Which;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pause between calls when neither processor is usable, or after a refusal.
const BACKOFF: Duration = Duration::from_millis(50);
/// Pause before retrying Redis or PostgreSQL.
const STORE_BACKOFF: Duration = Duration::from_millis(200);
/// The longest a call may start after its fence check began; later (the process froze in
/// between), the check is made again.
pub const SEND_WINDOW: Duration = Duration::from_millis(100);
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
    /// After a call with an unknown outcome, how long to keep calling the same processor
    /// before asking it instead (`GET /payments/{id}`) — and the least time since the last
    /// call before its "not found" is believed. Longer than any call it may still finish.
    pub lookup_after: Duration,
    /// How long this instance counts as alive after each heartbeat; others take over its
    /// payments once it has been silent that long.
    pub heartbeat_ttl: Duration,
}

impl Workers {
    /// Runs forever: recovers this instance's leftovers, then takes and settles payments.
    pub async fn run(self: Arc<Self>) {
        retry(
            || self.queue.heartbeat(self.heartbeat_ttl),
            "registering the instance",
        )
        .await;
        let recovered = retry(|| self.queue.recover(), "recovering the processing list").await;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "payments taken before a restart are queued again"
            );
        }
        let in_progress = InProgress::default();
        tokio::spawn(self.clone().keep_alive(in_progress.clone()));
        let slots = Arc::new(Semaphore::new(self.max_in_flight.max(1)));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.queue.take(TAKE_WAIT).await {
                Ok(Some(job)) => self.begin(&in_progress, job, Some(slot)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "taking from the queue failed; retrying");
                    tokio::time::sleep(STORE_BACKOFF).await;
                }
            }
        }
    }

    /// Settles `job` in a task of its own, tracked in `in_progress` until done.
    fn begin(
        self: &Arc<Self>,
        in_progress: &InProgress,
        job: Job,
        slot: Option<OwnedSemaphorePermit>,
    ) {
        in_progress.insert(&job);
        let workers = self.clone();
        let in_progress = in_progress.clone();
        tokio::spawn(async move {
            workers.settle(job.clone()).await;
            in_progress.remove(&job);
            drop(slot);
        });
    }

    /// Heartbeats; takes over the payments of instances that stopped heartbeating; and
    /// adopts strays in its own processing list: entries no task works on, as when Redis
    /// moved a payment but the connection broke before `BLMOVE`'s answer arrived.
    async fn keep_alive(self: Arc<Self>, in_progress: InProgress) {
        let mut ticker = tokio::time::interval(self.heartbeat_ttl / 3);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut suspects: HashSet<Job> = HashSet::new();
        loop {
            ticker.tick().await;
            let beat = self.queue.heartbeat(self.heartbeat_ttl).await;
            let reclaimed = self.queue.reclaim_orphans().await;
            if let Err(e) = beat.and(reclaimed.map(|_| ())) {
                tracing::warn!(error = %e, "heartbeat or takeover failed; retrying");
            }
            let Ok(listed) = self.queue.processing().await else {
                continue;
            };
            // A stray must be seen on two scans in a row: a payment just taken is in the
            // list a moment before its task is registered.
            let mut next = HashSet::new();
            for job in listed {
                if in_progress.contains(&job) {
                    continue;
                }
                if suspects.contains(&job) {
                    tracing::warn!(correlation_id = %job.correlation_id, "adopting a stray payment");
                    self.begin(&in_progress, job, None);
                } else {
                    next.insert(job);
                }
            }
            suspects = next;
        }
    }

    /// Pays one job, however long it takes, unless another instance takes it over.
    async fn settle(&self, job: Job) {
        let id = job.correlation_id.as_str();
        let Some(token) = retry(|| self.queue.claim(&job), "claiming a payment").await else {
            return lost(id);
        };
        // An attempt recorded earlier (before a restart, or by an instance that went
        // silent) has an unknown outcome. Read after the claim: every attempt made under
        // an older claim is recorded by now.
        let mut last: Option<Attempt> =
            retry(|| self.queue.attempt(id), "reading an attempt").await;
        let mut unknown = last.map(|_| Unknown::new(Instant::now()));
        loop {
            if let (Some(a), Some(u)) = (last, unknown) {
                if u.since.elapsed() >= self.lookup_after {
                    match self.resolve(a, u, id).await {
                        Resolved::Paid(at) => return self.paid(&job, token, a.processor, at).await,
                        Resolved::NotPaid => unknown = None,
                        Resolved::Unknown => {}
                    }
                    continue;
                }
            }
            let (which, requested_at_ms) = match (last, unknown) {
                // Outcome unknown: same processor, same requestedAt, until it tells.
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
            let checked = Instant::now();
            let owned = retry(
                || self.queue.record_attempt(id, token, attempt),
                "recording an attempt",
            )
            .await;
            if !owned {
                return lost(id);
            }
            last = Some(attempt);
            if checked.elapsed() > SEND_WINDOW {
                continue;
            }
            let requested_at = instant(requested_at_ms);
            let sent = Instant::now();
            let outcome = self.call(which, id, job.cents, requested_at).await;
            metrics()
                .processor_calls
                .with_label_values(&[which.name(), outcome.name()])
                .inc();
            match outcome {
                PayOutcome::Paid => {
                    self.routing.succeeded(which);
                    return self.paid(&job, token, which, requested_at).await;
                }
                PayOutcome::AlreadyPaid => {
                    self.routing.succeeded(which);
                    // Trust the processor's own record of when it was requested.
                    let stored = self.client.lookup(which, id).await.ok().flatten();
                    let at = stored.map_or(requested_at, |s| s.requested_at);
                    return self.paid(&job, token, which, at).await;
                }
                PayOutcome::NotPaid => self.routing.failed(which),
                PayOutcome::Unknown => {
                    self.routing.failed(which);
                    unknown.get_or_insert(Unknown::new(sent)).last_sent = sent;
                }
                PayOutcome::Refused(status) => {
                    self.routing.succeeded(which);
                    tracing::error!(
                        correlation_id = id,
                        status,
                        "processor refused the payment; dropped"
                    );
                    return retry(|| self.queue.finish(&job, token), "finishing a job").await;
                }
            }
            tokio::time::sleep(BACKOFF).await;
        }
    }

    /// One payment call. It waits the processor's reported response time plus the call
    /// timeout, read again when that passes (a health answer may have come in meanwhile):
    /// giving up on a call that is merely slow leaves a payment the processor will hold
    /// and the ledger cannot show until it is looked up. A call still waiting at
    /// `slow_after` marks the processor slow, so new payments go elsewhere at once.
    async fn call(
        &self,
        which: Which,
        id: &str,
        cents: i64,
        requested_at: DateTime<Utc>,
    ) -> PayOutcome {
        let sent = Instant::now();
        let deadline = || sent + self.client.timeout() + self.routing.min_response_time(which);
        let slow_at = sent + self.routing.slow_after();
        let mut seen_slow = false;
        let call = self.client.pay(which, id, cents, requested_at);
        tokio::pin!(call);
        loop {
            let wake = if seen_slow {
                deadline()
            } else {
                deadline().min(slow_at)
            };
            tokio::select! {
                outcome = &mut call => {
                    self.routing.answered(which, sent.elapsed());
                    return outcome;
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            if !seen_slow && now >= slow_at {
                self.routing.seen_slow(which);
                seen_slow = true;
            }
            if now >= deadline() {
                return PayOutcome::Unknown;
            }
        }
    }

    /// After calls with unknown outcomes: once the last of them must be over (at least
    /// `lookup_after`, and twice the processor's reported response time), ask the
    /// processor whether it holds the payment.
    async fn resolve(&self, attempt: Attempt, unknown: Unknown, id: &str) -> Resolved {
        let quiet = self
            .lookup_after
            .max(self.routing.min_response_time(attempt.processor) * 2);
        let wait = quiet.saturating_sub(unknown.last_sent.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match self.client.lookup(attempt.processor, id).await {
            Ok(Some(stored)) => Resolved::Paid(stored.requested_at),
            Ok(None) => Resolved::NotPaid,
            Err(()) => {
                tokio::time::sleep(STORE_BACKOFF).await;
                Resolved::Unknown
            }
        }
    }

    /// Records a confirmed payment and finishes the job.
    async fn paid(&self, job: &Job, token: Token, which: Which, requested_at: DateTime<Utc>) {
        let id = job.correlation_id.as_str();
        retry(
            || ledger::record(&self.pool, id, which, job.cents, requested_at),
            "recording a payment in the ledger",
        )
        .await;
        metrics().paid.with_label_values(&[which.name()]).inc();
        retry(|| self.queue.finish(job, token), "finishing a job").await;
    }
}

/// Another instance took the payment over while this one was silent: its claim pays it.
fn lost(correlation_id: &str) {
    metrics().taken_over.inc();
    tracing::warn!(
        correlation_id,
        "payment taken over by another instance; dropped here"
    );
}

/// The payments this instance's tasks are working on.
#[derive(Clone, Default)]
struct InProgress(Arc<Mutex<HashSet<Job>>>);

impl InProgress {
    fn insert(&self, job: &Job) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(job.clone());
        }
    }

    fn remove(&self, job: &Job) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(job);
        }
    }

    /// Unknown when the lock is poisoned: then nothing counts as a stray.
    fn contains(&self, job: &Job) -> bool {
        self.0.lock().map_or(true, |set| set.contains(job))
    }
}

/// Calls whose outcome is unknown: since when, and when the latest was sent.
#[derive(Debug, Clone, Copy)]
struct Unknown {
    since: Instant,
    last_sent: Instant,
}

impl Unknown {
    fn new(at: Instant) -> Self {
        Self {
            since: at,
            last_sent: at,
        }
    }
}

/// What a lookup after unknown outcomes showed.
enum Resolved {
    /// The processor holds it, requested at this instant.
    Paid(DateTime<Utc>),
    /// It does not: free to go anywhere.
    NotPaid,
    /// No answer; still unknown.
    Unknown,
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
