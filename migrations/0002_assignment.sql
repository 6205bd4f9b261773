-- Opt-outs and exposures for assignment.

-- Units (user or anonymous ids) that left every experiment allowing opt-out.
CREATE TABLE opt_outs (
    unit        text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The first time a unit was assigned a variant of a running experiment. The primary key makes
-- an exposure once per unit; writers keep the earliest one.
CREATE TABLE exposures (
    experiment_key  text NOT NULL,
    unit            text NOT NULL,
    variant         text NOT NULL,
    first_at        timestamptz NOT NULL,
    country         text,
    app_version     text,
    PRIMARY KEY (experiment_key, unit)
);

CREATE INDEX exposures_experiment_variant ON exposures (experiment_key, variant);
