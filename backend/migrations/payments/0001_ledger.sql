-- What each processor confirmed: one row per paid correlationId, with the requestedAt
-- the processor was given, so summaries here equal the processors' own.
CREATE TABLE ledger (
    correlation_id text PRIMARY KEY,
    processor      text NOT NULL CHECK (processor IN ('default', 'fallback')),
    amount_cents   bigint NOT NULL CHECK (amount_cents > 0),
    requested_at   timestamptz NOT NULL
);

CREATE INDEX ledger_requested_at ON ledger (requested_at);
