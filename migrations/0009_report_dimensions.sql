-- The report state by model and app version: reports `by=model`, `by=app_version` or both read
-- these rows instead of every event. One row per unit and (model, app version) it has attributed
-- events with: additive components of its metrics (counts, sums), so that any grouping — by
-- model, by app version, by both — sums a unit's rows and then computes its per-unit values
-- exactly as the report from every event does. Kept with `report_units`, under the same
-- watermark and refresh (units touched since are recomputed from the events). Most units use
-- one model and one app version: `only_model_row` / `only_version_row` say that this is the
-- unit's one row with its model / app version, whose components are then its per-unit values
-- for that grouping as they stand, with nothing to sum.
CREATE TABLE report_unit_dimensions (
    experiment_key   text NOT NULL REFERENCES report_states (experiment_key) ON DELETE CASCADE,
    unit             text NOT NULL,
    variant          text NOT NULL,
    model            text,
    app_version      text,
    events           bigint NOT NULL,
    components       double precision[] NOT NULL,
    only_model_row   boolean NOT NULL,
    only_version_row boolean NOT NULL,
    quantile_slots   smallint[],
    quantile_values  double precision[]
);
CREATE INDEX report_unit_dimensions_unit ON report_unit_dimensions (experiment_key, unit);

-- States made before this table existed have no rows in it: rebuild them all.
DELETE FROM report_states;
