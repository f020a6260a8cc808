-- Events that cannot be stored (a timestamp PostgreSQL cannot hold, a NUL in a string, a
-- sum past bigint): kept here with the reason instead of blocking their partition.
CREATE TABLE dead_letters (
    id              BIGSERIAL   PRIMARY KEY,
    topic           TEXT        NOT NULL,
    partition       INTEGER     NOT NULL,
    "offset"        BIGINT      NOT NULL,
    reason          TEXT        NOT NULL,
    payload         BYTEA       NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
