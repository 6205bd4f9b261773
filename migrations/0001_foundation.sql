-- Keys, cohorts, experiments, their revision history and the audit log.

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('admin', 'client')),
    name        text NOT NULL DEFAULT '',
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_hash    bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    revoked_at  timestamptz
);

CREATE TABLE cohorts (
    key          text PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    condition    jsonb NOT NULL,
    -- Cohorts this one's condition refers to, for cycle checks.
    cohort_refs  text[] NOT NULL DEFAULT '{}',
    revision     integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE experiments (
    key          text PRIMARY KEY,
    definition   jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft', 'running', 'paused', 'stopped', 'rolled_back')),
    winner       text,
    revision     integer NOT NULL,
    -- Denormalised from the definition so that cohort deletion and layer checks are plain queries.
    cohort_refs  text[] NOT NULL DEFAULT '{}',
    layer        text,
    layer_start  integer,
    layer_end    integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    archived_at  timestamptz
);

CREATE INDEX experiments_active_status ON experiments (status) WHERE archived_at IS NULL;
CREATE INDEX experiments_cohort_refs ON experiments USING gin (cohort_refs) WHERE archived_at IS NULL;

CREATE TABLE experiment_revisions (
    experiment_key  text NOT NULL REFERENCES experiments (key),
    revision        integer NOT NULL,
    action          text NOT NULL,
    definition      jsonb NOT NULL,
    status          text NOT NULL,
    winner          text,
    actor_key_id    text,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_key, revision)
);

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_key_id    text,
    action          text NOT NULL,
    target_type     text NOT NULL,
    target_key      text NOT NULL,
    experiment_key  text,
    before          jsonb,
    after           jsonb
);

CREATE INDEX audit_log_experiment ON audit_log (experiment_key, id) WHERE experiment_key IS NOT NULL;
