-- The notice outbox (docs/api.md, "The notice"): a rollback's or pause's notice is written in
-- the transaction of the change that makes it, and delivered at least once by whichever server
-- holds its lease, with the same delivery id on every attempt.
CREATE TABLE notice_outbox (
    id              bigserial PRIMARY KEY,
    delivery        uuid NOT NULL UNIQUE,
    experiment_key  text NOT NULL REFERENCES experiments (key),
    event           text NOT NULL,
    url             text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    -- When the next attempt may start; a server that takes the notice moves it past its lease, so
    -- that another takes it over only when the first died or gave up mid-attempt.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    gave_up_at      timestamptz
);

CREATE INDEX notice_outbox_due ON notice_outbox (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX notice_outbox_experiment ON notice_outbox (experiment_key, id);
