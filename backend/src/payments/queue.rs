//! The durable payment queue in Redis, shared by every payments instance.
//!
//! - `payments:accepted` (hash correlationId -> cents): a correlationId is queued once,
//!   however often it is posted.
//! - `payments:queue` (list): accepted, not yet taken.
//! - `payments:processing:{instance}` (list): taken by that instance (reliable-queue
//!   pattern, `BLMOVE`); an instance that restarts puts its leftovers back, and the list
//!   of an instance whose heartbeat (`payments:alive:{instance}`) expired is put back by
//!   the others, so a removed instance strands nothing.
//! - `payments:attempt` (hash correlationId -> "processor|requestedAt ms"): written before
//!   every call to a processor, so a retry after a crash or a timeout goes to the same
//!   processor with the same `requestedAt` and cannot pay twice.
//! - `payments:owner` (hash correlationId -> fencing token): whoever takes a payment
//!   claims it with a fresh token (`payments:fence`, a counter); recording an attempt and
//!   finishing check the token in the same script, so an instance that froze and resumes
//!   after another took its payments over is refused before it can call a processor.
//!
//! Redis runs with an append-only file in the stack, so accepted payments survive a
//! restart of Redis as well as of the service. On a Redis Cluster
//! (`redis+cluster://…`) every name above carries the hash tag `{payments}`
//! (`payments:{payments}:queue`, …), so they share one slot (see `Names`).

use super::Which;
use redis::AsyncCommands;
use sluice_redis::{Conn, Target};
use std::time::Duration;

/// The queue's key names. On a Redis Cluster each carries the hash tag `{payments}`, so
/// all of them share one slot: the scripts and transactions below use several at once,
/// which a cluster only allows within a slot. A single server keeps the plain names.
#[derive(Clone)]
struct Names {
    accepted: &'static str,
    queue: &'static str,
    attempt: &'static str,
    processing_prefix: &'static str,
    instances: &'static str,
    alive_prefix: &'static str,
    owner: &'static str,
    fence: &'static str,
}

const SINGLE: Names = Names {
    accepted: "payments:accepted",
    queue: "payments:queue",
    attempt: "payments:attempt",
    processing_prefix: "payments:processing:",
    instances: "payments:instances",
    alive_prefix: "payments:alive:",
    owner: "payments:owner",
    fence: "payments:fence",
};

const CLUSTER: Names = Names {
    accepted: "payments:{payments}:accepted",
    queue: "payments:{payments}:queue",
    attempt: "payments:{payments}:attempt",
    processing_prefix: "payments:{payments}:processing:",
    instances: "payments:{payments}:instances",
    alive_prefix: "payments:{payments}:alive:",
    owner: "payments:{payments}:owner",
    fence: "payments:{payments}:fence",
};

/// Claims a payment that is in the caller's processing list: a fresh token becomes its
/// owner. Returns the token, or false when the entry is not (or no longer) in the list.
const CLAIM_LUA: &str = r"
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[2], token)
return token
";

/// Records an attempt only while the caller's token still owns the payment; 1 if so.
const RECORD_ATTEMPT_LUA: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
";

/// Takes a payment out of the caller's processing list; forgets its attempt and owner
/// only when the caller's token still owns it (else they are the new owner's).
const FINISH_LUA: &str = r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return 1
";

/// Queues a correlationId unless it was accepted before; returns 1 when newly queued.
const ACCEPT_LUA: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
  return 1
end
return 0
";

/// One payment to make.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Job {
    /// The client's correlationId (a UUID, lowercase).
    pub correlation_id: String,
    /// Amount in cents.
    pub cents: i64,
    raw: String,
}

impl Job {
    /// Parses a queue entry (`"{correlationId}:{cents}"`).
    pub fn parse(raw: String) -> Option<Self> {
        let (id, cents) = raw.split_once(':')?;
        let cents = cents.parse().ok()?;
        Some(Self {
            correlation_id: id.to_string(),
            cents,
            raw,
        })
    }
}

/// The fencing token of one claim on a payment: only its holder may record attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(u64);

/// Where a payment was last sent: the processor and the `requestedAt` it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The processor.
    pub processor: Which,
    /// `requestedAt`, ms since the Unix epoch.
    pub requested_at_ms: i64,
}

impl Attempt {
    fn encode(&self) -> String {
        format!("{}|{}", self.processor.name(), self.requested_at_ms)
    }

    fn decode(text: &str) -> Option<Self> {
        let (name, at) = text.split_once('|')?;
        Some(Self {
            processor: Which::from_name(name)?,
            requested_at_ms: at.parse().ok()?,
        })
    }
}

/// Counts for `GET /queue-stats`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct QueueStats {
    /// correlationIds ever accepted (since the last purge).
    pub accepted: u64,
    /// Waiting to be taken.
    pub queued: u64,
    /// Taken by some instance and not yet paid.
    pub processing: u64,
}

/// The queue, as seen by one instance.
#[derive(Clone)]
pub struct Queue {
    conn: Conn,
    /// A connection of its own for `BLMOVE`, which holds its connection while it waits.
    blocking: Conn,
    names: Names,
    processing: String,
    alive: String,
    accept_script: redis::Script,
    claim_script: redis::Script,
    record_attempt_script: redis::Script,
    finish_script: redis::Script,
}

impl Queue {
    /// Connects twice to `target` (commands, and blocking takes) as instance `instance`.
    pub async fn connect(target: &Target, instance: &str) -> redis::RedisResult<Self> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500));
        let conn = target.connect(config.clone()).await?;
        let blocking = target.connect(config).await?;
        let names = if target.is_cluster() { CLUSTER } else { SINGLE };
        Ok(Self {
            conn,
            blocking,
            processing: format!("{}{instance}", names.processing_prefix),
            alive: format!("{}{instance}", names.alive_prefix),
            names,
            accept_script: redis::Script::new(ACCEPT_LUA),
            claim_script: redis::Script::new(CLAIM_LUA),
            record_attempt_script: redis::Script::new(RECORD_ATTEMPT_LUA),
            finish_script: redis::Script::new(FINISH_LUA),
        })
    }

    /// The command connection, for the other Redis users of the service.
    pub fn connection(&self) -> Conn {
        self.conn.clone()
    }

    /// Queues a payment; `false` when its correlationId was accepted before.
    pub async fn accept(&self, correlation_id: &str, cents: i64) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let queued: i64 = self
            .accept_script
            .key(self.names.accepted)
            .key(self.names.queue)
            .arg(correlation_id)
            .arg(cents)
            .invoke_async(&mut conn)
            .await?;
        Ok(queued == 1)
    }

    /// Takes the next payment into this instance's processing list, waiting up to `wait`.
    pub async fn take(&self, wait: Duration) -> redis::RedisResult<Option<Job>> {
        let mut conn = self.blocking.clone();
        let raw: Option<String> = conn
            .blmove(
                self.names.queue,
                &self.processing,
                redis::Direction::Right,
                redis::Direction::Left,
                wait.as_secs_f64(),
            )
            .await?;
        Ok(raw.and_then(|raw| {
            let job = Job::parse(raw.clone());
            if job.is_none() {
                tracing::error!(entry = %raw, "unreadable queue entry; left in the processing list");
            }
            job
        }))
    }

    /// What this instance's processing list holds.
    pub async fn processing(&self) -> redis::RedisResult<Vec<Job>> {
        let mut conn = self.conn.clone();
        let raw: Vec<String> = conn.lrange(&self.processing, 0, -1).await?;
        Ok(raw.into_iter().filter_map(Job::parse).collect())
    }

    /// Claims `job`, taken into this instance's processing list, with a fresh token;
    /// `None` when it is no longer there (another instance took it over meanwhile).
    pub async fn claim(&self, job: &Job) -> redis::RedisResult<Option<Token>> {
        let mut conn = self.conn.clone();
        let token: Option<u64> = self
            .claim_script
            .key(&self.processing)
            .key(self.names.fence)
            .key(self.names.owner)
            .arg(&job.raw)
            .arg(&job.correlation_id)
            .invoke_async(&mut conn)
            .await?;
        Ok(token.map(Token))
    }

    /// Marks a payment done: out of the processing list, its attempt forgotten (unless
    /// another claim owns it now).
    pub async fn finish(&self, job: &Job, token: Token) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        self.finish_script
            .key(&self.processing)
            .key(self.names.owner)
            .key(self.names.attempt)
            .arg(&job.raw)
            .arg(&job.correlation_id)
            .arg(token.0)
            .invoke_async(&mut conn)
            .await
    }

    /// The last recorded attempt for a payment, if any.
    pub async fn attempt(&self, correlation_id: &str) -> redis::RedisResult<Option<Attempt>> {
        let mut conn = self.conn.clone();
        let text: Option<String> = conn.hget(self.names.attempt, correlation_id).await?;
        Ok(text.as_deref().and_then(Attempt::decode))
    }

    /// Records the attempt about to be made (before the call, so it survives a crash),
    /// if `token` still owns the payment; `false` when another claim took it over.
    pub async fn record_attempt(
        &self,
        correlation_id: &str,
        token: Token,
        attempt: Attempt,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let recorded: i64 = self
            .record_attempt_script
            .key(self.names.owner)
            .key(self.names.attempt)
            .arg(correlation_id)
            .arg(token.0)
            .arg(attempt.encode())
            .invoke_async(&mut conn)
            .await?;
        Ok(recorded == 1)
    }

    /// Puts what this instance had taken before it stopped back on the queue (to be taken
    /// first). Call after a first [`Queue::heartbeat`].
    pub async fn recover(&self) -> redis::RedisResult<u64> {
        let mut conn = self.conn.clone();
        move_all(&mut conn, &self.processing, self.names.queue).await
    }

    /// Says this instance is alive for `ttl` more, and (re)registers its list so purges
    /// and takeovers find it.
    pub async fn heartbeat(&self, ttl: Duration) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::pipe()
            .pset_ex(&self.alive, 1, ms)
            .sadd(self.names.instances, &self.processing)
            .query_async(&mut conn)
            .await
    }

    /// Puts the payments of instances whose heartbeat expired back on the queue; returns
    /// how many. (An instance that comes back later finds its list empty: nothing lost.)
    pub async fn reclaim_orphans(&self) -> redis::RedisResult<u64> {
        let mut conn = self.conn.clone();
        let lists: Vec<String> = conn.smembers(self.names.instances).await?;
        let mut moved = 0;
        for list in lists.iter().filter(|l| **l != self.processing) {
            let Some(instance) = list.strip_prefix(self.names.processing_prefix) else {
                continue;
            };
            let alive: bool = conn
                .exists(format!("{}{instance}", self.names.alive_prefix))
                .await?;
            if alive {
                continue;
            }
            let n = move_all(&mut conn, list, self.names.queue).await?;
            conn.srem::<_, _, ()>(self.names.instances, list).await?;
            if n > 0 {
                tracing::warn!(
                    instance,
                    payments = n,
                    "took over the payments of a silent instance"
                );
            }
            moved += n;
        }
        Ok(moved)
    }

    /// Forgets every accepted, queued and in-progress payment.
    pub async fn purge(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let lists: Vec<String> = conn.smembers(self.names.instances).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.names.accepted)
            .del(self.names.queue)
            .del(self.names.attempt)
            .del(self.names.owner);
        for list in &lists {
            pipe.del(list);
        }
        pipe.query_async::<()>(&mut conn).await
    }

    /// Accepted / queued / processing counts.
    pub async fn stats(&self) -> redis::RedisResult<QueueStats> {
        let mut conn = self.conn.clone();
        let lists: Vec<String> = conn.smembers(self.names.instances).await?;
        let mut pipe = redis::pipe();
        pipe.hlen(self.names.accepted).llen(self.names.queue);
        for list in &lists {
            pipe.llen(list);
        }
        let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(QueueStats {
            accepted: counts.first().copied().unwrap_or(0),
            queued: counts.get(1).copied().unwrap_or(0),
            processing: counts.iter().skip(2).sum(),
        })
    }
}

/// Moves every entry of `list` to the taking end of the queue, one atomic move at a time
/// (safe while another instance does the same).
async fn move_all(conn: &mut Conn, list: &str, queue: &str) -> redis::RedisResult<u64> {
    let mut moved = 0;
    loop {
        let item: Option<String> = conn
            .lmove(
                list,
                queue,
                redis::Direction::Right,
                redis::Direction::Right,
            )
            .await?;
        if item.is_none() {
            return Ok(moved);
        }
        moved += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_attempts_round_trip() {
        let job = Job::parse("4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3:1990".into()).expect("job");
        assert_eq!(job.cents, 1990);
        assert_eq!(job.correlation_id, "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3");
        assert!(Job::parse("no-amount".into()).is_none());
        let a = Attempt {
            processor: Which::Fallback,
            requested_at_ms: 1_752_580_800_123,
        };
        assert_eq!(Attempt::decode(&a.encode()), Some(a));
        assert_eq!(Attempt::decode("other|1"), None);
    }
}
