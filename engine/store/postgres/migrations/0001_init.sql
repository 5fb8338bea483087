-- Times are unix milliseconds. See engine/store for what each column means.
CREATE TABLE sessions (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uri         TEXT    NOT NULL,
    live        BOOLEAN NOT NULL,
    creation    BIGINT  NOT NULL,
    last_update BIGINT  NOT NULL
);

CREATE TABLE transactions (
    id                    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rest_id               TEXT    NOT NULL UNIQUE,
    json                  TEXT    NOT NULL,
    message_builder       TEXT,
    input_done            BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled             BOOLEAN NOT NULL DEFAULT FALSE,
    final_attempt_reason  TEXT,
    retry                 BOOLEAN NOT NULL DEFAULT FALSE,
    notification          BOOLEAN NOT NULL DEFAULT FALSE,
    no_final_notification BOOLEAN NOT NULL DEFAULT FALSE,
    creation_session_id   BIGINT,
    inflight_session_id   BIGINT REFERENCES sessions(id) ON DELETE SET NULL,
    attempt_count         INTEGER NOT NULL DEFAULT 0,
    next_attempt_time     BIGINT  NOT NULL,
    creation              BIGINT  NOT NULL,
    last_update           BIGINT  NOT NULL,
    version               BIGINT  NOT NULL
);
-- Dequeue: unleased live work in due order, and owed notifications.
CREATE INDEX transactions_due ON transactions(next_attempt_time)
    WHERE inflight_session_id IS NULL AND final_attempt_reason IS NULL;
CREATE INDEX transactions_notify ON transactions(id)
    WHERE inflight_session_id IS NULL AND no_final_notification AND notification;
-- GC and lease release.
CREATE INDEX transactions_idle ON transactions(last_update) WHERE inflight_session_id IS NULL;
CREATE INDEX transactions_lease ON transactions(inflight_session_id) WHERE inflight_session_id IS NOT NULL;

CREATE TABLE attempts (
    transaction_id BIGINT  NOT NULL REFERENCES transactions(id) ON DELETE CASCADE,
    attempt_id     INTEGER NOT NULL,
    responses      TEXT,
    creation       BIGINT  NOT NULL,
    last_update    BIGINT  NOT NULL,
    PRIMARY KEY (transaction_id, attempt_id)
);

-- A blob's bytes are rows of at most the configured chunk size, so appends never rewrite
-- what is stored and reads stream. total is the declared final length (NULL until known);
-- the blob is finalized when length = total.
CREATE TABLE blobs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    length      BIGINT NOT NULL DEFAULT 0,
    total       BIGINT,
    creation    BIGINT NOT NULL,
    last_update BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
    blob_id BIGINT NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    pos     BIGINT NOT NULL,
    data    BYTEA  NOT NULL,
    PRIMARY KEY (blob_id, pos)
);
-- A blob lives while some transaction refers to it.
CREATE TABLE blob_refs (
    transaction_id BIGINT NOT NULL REFERENCES transactions(id) ON DELETE CASCADE,
    blob_rest_id   TEXT   NOT NULL,
    blob_id        BIGINT NOT NULL REFERENCES blobs(id),
    PRIMARY KEY (transaction_id, blob_rest_id)
);
CREATE INDEX blob_refs_blob ON blob_refs(blob_id);
-- Mail bodies are stored out of line and uncompressed: compressing them costs more CPU than
-- the disk it saves on a queue whose rows live for seconds.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
