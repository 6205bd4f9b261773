-- Exposure history: units change variant when a split is edited or a rollout ramps, so one row
-- per unit with its first variant is not enough. `exposure_history` keeps every variant a unit
-- was served in an experiment, with the first time it was served it; `exposures` stays the
-- per-unit summary that reports read (the earliest exposure) and says whether the unit was
-- served more than one variant. Events naming an experiment and a variant (`$exposure` and
-- the like) are exposures too, recorded when they are ingested.

CREATE TABLE exposure_history (
    experiment_key  text NOT NULL,
    unit            text NOT NULL,
    variant         text NOT NULL,
    first_at        timestamptz NOT NULL,
    PRIMARY KEY (experiment_key, unit, variant)
);

-- True once the unit has been served a variant other than `variant`; such a unit is left out
-- of every A/B comparison.
ALTER TABLE exposures ADD COLUMN multiple boolean NOT NULL DEFAULT false;

-- The unit an event belongs to in an experiment: its `unit` id, else its `fallback_unit` id.
-- The one place of this rule in SQL, for claims at ingestion and below.
CREATE FUNCTION aviary_event_unit(definition jsonb, user_id text, anonymous_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN definition->>'unit' = 'anonymous_id'
                THEN coalesce(anonymous_id, CASE WHEN definition->>'fallback_unit' = 'user_id' THEN user_id END)
                ELSE coalesce(user_id, CASE WHEN definition->>'fallback_unit' = 'anonymous_id' THEN anonymous_id END)
           END
$$;

INSERT INTO exposure_history (experiment_key, unit, variant, first_at)
SELECT experiment_key, unit, variant, first_at FROM exposures;

-- Events that named an experiment were exposures the reports found at read time; they join the
-- history now.
INSERT INTO exposure_history AS h (experiment_key, unit, variant, first_at)
SELECT c.experiment_key, c.unit, c.variant, min(c.ts)
FROM (SELECT e.experiment_key, aviary_event_unit(x.definition, e.user_id, e.anonymous_id) AS unit, e.variant, e.ts
      FROM events e JOIN experiments x ON x.key = e.experiment_key
      WHERE e.experiment_key IS NOT NULL) c
WHERE c.unit IS NOT NULL
GROUP BY 1, 2, 3
ON CONFLICT (experiment_key, unit, variant) DO UPDATE SET first_at = excluded.first_at WHERE excluded.first_at < h.first_at;

INSERT INTO exposures AS x (experiment_key, unit, variant, first_at, multiple)
SELECT experiment_key, unit, (array_agg(variant ORDER BY first_at, variant COLLATE "C"))[1], min(first_at), count(*) > 1
FROM exposure_history GROUP BY experiment_key, unit
ON CONFLICT (experiment_key, unit) DO UPDATE
    SET variant = excluded.variant, first_at = excluded.first_at, multiple = excluded.multiple, recorded_at = now()
    WHERE (x.variant, x.first_at, x.multiple) IS DISTINCT FROM (excluded.variant, excluded.first_at, excluded.multiple);

-- Report states were computed with the first exposure's variant for every unit; the servers
-- rebuild them.
DELETE FROM report_states;
