-- Outcome events, partitioned by month of their time. Idempotency: a resent event has the same
-- id and ts, so (id, ts) — which includes the partition key, as PostgreSQL requires — makes a
-- resend store nothing new.

CREATE TABLE events (
    id              uuid NOT NULL,
    ts              timestamptz NOT NULL,
    type            text NOT NULL,
    user_id         text,
    anonymous_id    text,
    value           double precision NOT NULL,
    model           text,
    app_version     text,
    experiment_key  text,
    variant         text,
    props           jsonb,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, ts),
    CHECK (user_id IS NOT NULL OR anonymous_id IS NOT NULL)
) PARTITION BY RANGE (ts);

-- Whatever falls outside the monthly partitions the server keeps ahead of time.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_user ON events (user_id, type, ts) WHERE user_id IS NOT NULL;
CREATE INDEX events_anonymous ON events (anonymous_id, type, ts) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_experiment ON events (experiment_key, variant, type) WHERE experiment_key IS NOT NULL;

-- Creates the partition of the month holding `day` unless it exists; called by the server.
CREATE FUNCTION aviary_ensure_event_partition(day date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', day)::date;
    name text := format('events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    -- Replicas may call this together; one creates, the others then see it.
    PERFORM pg_advisory_xact_lock(hashtext(name));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            name, first_day, (first_day + interval '1 month')::date);
    END IF;
END
$$;
