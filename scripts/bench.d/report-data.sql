-- scripts/bench.d/report-data.sql — data for the report section of scripts/bench, written
-- straight into the tables (the HTTP API would take hours for this much).
--
--   psql -v units=1000000 -v events=10000000 -v experiment=report-bench -f report-data.sql
--
-- Exposures: units 'u-1' … 'u-<units>' of experiment :experiment, control for even n and
-- treatment for odd n, first exposed between 5 % and 95 % of the way from the start of the
-- current month to now (new units keep arriving, so a window of the last days holds some),
-- each served that one variant (one history row per unit). Events: :events rows over those
-- units (unit 1 + (i * 7919) mod units, so every unit gets events/units of them), 90 % after
-- the unit's exposure and 10 % before it, every ts in the current month and not after now, so
-- all land in this month's partition.
--
-- Event types are the ones the report's metrics read: message (count), answer_rating (mean,
-- 1..5), feedback (proportion of value 1; treatment slightly higher), request and
-- request_error (ratio), response (quantile of a latency in ms).
--
-- One transaction, so now() — and with it every unit's exposure time — is the same for both
-- inserts.

\set ON_ERROR_STOP on

BEGIN;

-- When unit n was first exposed; the same for its exposure row and its events.
CREATE FUNCTION pg_temp.bench_first_at(n bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT date_trunc('month', now())
         + (now() - date_trunc('month', now())) * (0.05 + 0.90 * ((n * 2654435761) % 1000003) / 1000003.0)
$$;

\timing on
\echo exposures:
INSERT INTO exposures (experiment_key, unit, variant, first_at, country, app_version)
SELECT :'experiment', 'u-' || n,
       CASE WHEN n % 2 = 0 THEN 'control' ELSE 'treatment' END,
       pg_temp.bench_first_at(n),
       (ARRAY['CN', 'US', 'DE', 'JP'])[1 + n % 4],
       CASE WHEN n % 3 = 0 THEN '1.8.0' ELSE '1.9.0' END
FROM generate_series(1::bigint, :units) AS n;

\echo exposure history:
INSERT INTO exposure_history (experiment_key, unit, variant, first_at)
SELECT experiment_key, unit, variant, first_at FROM exposures WHERE experiment_key = :'experiment';

\echo events:
INSERT INTO events (id, ts, type, user_id, value, model, app_version)
SELECT gen_random_uuid(),
       CASE WHEN e.before THEN date_trunc('month', now()) + (e.first_at - date_trunc('month', now())) * e.r2
            ELSE e.first_at + (now() - e.first_at) * e.r2 END,
       e.type,
       'u-' || e.n,
       CASE e.type WHEN 'answer_rating' THEN 1 + floor(e.r3 * 5)
                   WHEN 'feedback' THEN (e.r3 < 0.60 + 0.02 * (e.n % 2))::int
                   WHEN 'response' THEN round(200 - ln(1 - e.r3) * 800)
                   ELSE 1 END,
       CASE WHEN e.n % 2 = 0 THEN 'gpt-4o' ELSE 'qwen-max' END,
       CASE WHEN e.n % 3 = 0 THEN '1.8.0' ELSE '1.9.0' END
FROM (
    SELECT s.n, pg_temp.bench_first_at(s.n) AS first_at, random() < 0.1 AS before, random() AS r2, random() AS r3,
           CASE WHEN s.r1 < 0.30 THEN 'message'
                WHEN s.r1 < 0.45 THEN 'answer_rating'
                WHEN s.r1 < 0.55 THEN 'feedback'
                WHEN s.r1 < 0.75 THEN 'request'
                WHEN s.r1 < 0.80 THEN 'request_error'
                ELSE 'response' END AS type
    FROM (SELECT 1 + (i * 7919) % :units AS n, random() AS r1
          FROM generate_series(1::bigint, :events) AS i
          OFFSET 0) AS s
    OFFSET 0  -- keep each random() evaluated once per row
) AS e;

\echo commit:
COMMIT;
