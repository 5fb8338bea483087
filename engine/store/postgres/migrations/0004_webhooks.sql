-- Events for senders' webhooks (docs/webhooks.md), written in the same database transaction
-- as the attempt outcome they report. rest_id names the transaction without a foreign key:
-- events outlive its garbage collection. id orders a transaction's events. A pending event
-- has finished NULL; a claimed one holds a lease (lease_session until lease_until).
CREATE TABLE webhook_events (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT    NOT NULL,
    rest_id       TEXT    NOT NULL,
    sender        TEXT    NOT NULL,
    tag           TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    creation      BIGINT  NOT NULL,
    next_attempt  BIGINT  NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_session BIGINT,
    lease_until   BIGINT,
    last_error    TEXT,
    finished      BIGINT,
    dropped       TEXT
);
-- Claims: pending events in due order, and a transaction's earlier pending events.
CREATE INDEX webhook_events_due ON webhook_events(next_attempt) WHERE finished IS NULL;
CREATE INDEX webhook_events_tx ON webhook_events(rest_id, id);
-- Purge.
CREATE INDEX webhook_events_finished ON webhook_events(finished) WHERE finished IS NOT NULL;
