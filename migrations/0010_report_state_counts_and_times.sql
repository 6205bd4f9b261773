-- Reports from the state, faster and with windows.
--
-- The quantile values of the report state, counted: per experiment, group (variant, model, app
-- version), quantile metric (`slot`, its index among the experiment's quantile metrics) and
-- value, how many events of the state's units have that value. A report from the state ranks
-- these counts (a few thousand rows per group for latencies in whole milliseconds) instead of
-- unnesting every unit's values; the units it recomputes swap their rows' values (in
-- `report_unit_dimensions`) for their fresh ones. The refresh keeps the counts equal to those
-- of the rows of `report_unit_dimensions`, in the same transaction.
CREATE TABLE report_quantile_counts (
    experiment_key  text NOT NULL REFERENCES report_states (experiment_key) ON DELETE CASCADE,
    variant         text NOT NULL,
    model           text,
    app_version     text,
    slot            smallint NOT NULL,
    value           double precision NOT NULL,
    count           bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (experiment_key, variant, model, app_version, slot, value)
);

-- States made before this migration have no counts and no times: rebuild them all (their rows
-- go with them).
DELETE FROM report_states;

-- Every report from the state reads the counts: the per-unit rows keep no values of their own.
ALTER TABLE report_units DROP COLUMN quantile_slots, DROP COLUMN quantile_values;

-- Reports with a window from the state: each row's unit's first exposure (`first_at`, a window
-- takes the units first exposed in it) and, per unit, its last counted event (`last_ts`: a
-- window ending after it leaves none of the unit's events out, so the unit's values are the
-- state's; else the report recomputes the unit).
ALTER TABLE report_units ADD COLUMN first_at timestamptz NOT NULL, ADD COLUMN last_ts timestamptz;
ALTER TABLE report_unit_dimensions ADD COLUMN first_at timestamptz NOT NULL;

-- The units first exposed in a window, found by time.
CREATE INDEX exposures_first_at ON exposures (experiment_key, first_at);
