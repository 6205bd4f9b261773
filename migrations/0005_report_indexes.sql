-- Reports walk each exposed unit's events in time order (a nested loop over the experiment's
-- units). These covering indexes answer that walk from the index alone: the unit, then the
-- time, with every column a report reads included, so no heap page is visited once the table
-- is vacuumed. They replace the (unit, type, ts) indexes of 0003, which served the same
-- lookups with a heap visit per event.
DROP INDEX events_user;
DROP INDEX events_anonymous;
CREATE INDEX events_user ON events (user_id, ts)
    INCLUDE (type, value, model, app_version, experiment_key, variant) WHERE user_id IS NOT NULL;
CREATE INDEX events_anonymous ON events (anonymous_id, ts)
    INCLUDE (type, value, model, app_version, experiment_key, variant) WHERE anonymous_id IS NOT NULL;
