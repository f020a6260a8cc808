-- Per-minute aggregates of request events, one row per (minute, route, key, status class).
-- latency_hist is a fixed log-linear histogram (see src/histogram.rs): rows merge by
-- adding their arrays, so quantiles can be computed over any range.
CREATE TABLE minute_stats (
    minute        TIMESTAMPTZ NOT NULL,
    route         TEXT        NOT NULL,
    key_id        TEXT        NOT NULL,   -- '' for requests without an API key
    status_class  TEXT        NOT NULL,   -- 2xx, 4xx, 5xx, none, ...
    count         BIGINT      NOT NULL,
    errors        BIGINT      NOT NULL,   -- 5xx, or no response at all
    limited       BIGINT      NOT NULL,
    hedged        BIGINT      NOT NULL,
    retried       BIGINT      NOT NULL,
    bytes_in      BIGINT      NOT NULL,
    bytes_out     BIGINT      NOT NULL,
    latency_hist  BIGINT[]    NOT NULL,
    PRIMARY KEY (minute, route, key_id, status_class)
);
CREATE INDEX minute_stats_key ON minute_stats (key_id, minute);

-- The next Kafka offset to apply, per partition, written in the same transaction as the
-- aggregates: a replayed message (consumer crash, rebalance, new group) is skipped, so
-- every event is counted exactly once.
CREATE TABLE consumed_offsets (
    topic        TEXT    NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  BIGINT  NOT NULL,
    PRIMARY KEY (topic, partition)
);
