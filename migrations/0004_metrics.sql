-- Metric definitions: named aggregations of events per unit.
CREATE TABLE metrics (
    key          text PRIMARY KEY,
    definition   jsonb NOT NULL,
    revision     integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
