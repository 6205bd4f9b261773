-- Per-unit report state: each experiment's units with their per-unit metric values, kept by a
-- background refresher, so a report aggregates one row per unit instead of joining every event
-- with its unit's exposure. The state is exact as of its watermark: every event received and
-- every exposure recorded before it is in the state; a report recomputes, from the events, the
-- units with anything received or recorded since.

-- When an exposure row was written or moved to an earlier first exposure (the writer's
-- transaction time), to find the units a report must recompute.
ALTER TABLE exposures ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();

-- The recent rows, found by time. B-trees: new rows land in the free space vacuum leaves in
-- old pages as well as at the end, which widens every block range of a BRIN index until it
-- matches everything. Their keys only grow, so inserts touch the rightmost leaf (no measurable
-- cost to event ingestion against the covering indexes of 0005).
CREATE INDEX exposures_recorded ON exposures (experiment_key, recorded_at);
CREATE INDEX events_received ON events (received_at);

-- One row per experiment with a state: which metric definitions it was computed for
-- (`signature`; another one means the state is rebuilt) and its watermark.
CREATE TABLE report_states (
    experiment_key  text PRIMARY KEY,
    signature       text NOT NULL,
    watermark       timestamptz NOT NULL,
    refreshed_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per unit with at least one attributed event: its variant, its events, one value per
-- per-unit metric column (`metrics`, NULL where the unit has none, as for a mean) and the values
-- of quantile metrics' events (`quantile_values`, each tagged with the quantile metric's index
-- in `quantile_slots`).
CREATE TABLE report_units (
    experiment_key   text NOT NULL REFERENCES report_states (experiment_key) ON DELETE CASCADE,
    unit             text NOT NULL,
    variant          text NOT NULL,
    events           bigint NOT NULL,
    metrics          double precision[] NOT NULL,
    quantile_slots   smallint[],
    quantile_values  double precision[],
    PRIMARY KEY (experiment_key, unit)
);
