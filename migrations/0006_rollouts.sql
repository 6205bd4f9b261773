-- Rollouts (SPEC 9): the live state beside the definition, and the history of transitions.

-- `rollout_state` of the API plus the paused clock; NULL until an experiment with a rollout starts.
ALTER TABLE experiments ADD COLUMN rollout_state jsonb;

-- Every rollout transition (started, advanced, awaiting_approval, approved, paused, resumed,
-- completed, rolled_back), written in the transaction that makes it.
CREATE TABLE rollout_history (
    id              bigserial PRIMARY KEY,
    experiment_key  text NOT NULL REFERENCES experiments (key),
    at              timestamptz NOT NULL DEFAULT now(),
    event           text NOT NULL,
    step            integer NOT NULL,
    percent         double precision NOT NULL,
    reason          text,
    actor_key_id    text,
    guardrails      jsonb NOT NULL DEFAULT '[]'
);

CREATE INDEX rollout_history_experiment ON rollout_history (experiment_key, id);
