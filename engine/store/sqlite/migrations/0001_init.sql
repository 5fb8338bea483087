-- Times are unix milliseconds. See engine/store for what each column means.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uri         TEXT    NOT NULL,
    live        BOOLEAN NOT NULL,
    creation    INTEGER NOT NULL,
    last_update INTEGER NOT NULL
);

CREATE TABLE transactions (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    rest_id               TEXT    NOT NULL UNIQUE,
    json                  TEXT    NOT NULL,
    message_builder       TEXT,
    input_done            BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled             BOOLEAN NOT NULL DEFAULT FALSE,
    final_attempt_reason  TEXT,
    retry                 BOOLEAN NOT NULL DEFAULT FALSE,
    notification          BOOLEAN NOT NULL DEFAULT FALSE,
    no_final_notification BOOLEAN NOT NULL DEFAULT FALSE,
    creation_session_id   INTEGER,
    inflight_session_id   INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
    attempt_count         INTEGER NOT NULL DEFAULT 0,
    next_attempt_time     INTEGER NOT NULL,
    creation              INTEGER NOT NULL,
    last_update           INTEGER NOT NULL,
    version               INTEGER NOT NULL
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
    transaction_id INTEGER NOT NULL REFERENCES transactions(id) ON DELETE CASCADE,
    attempt_id     INTEGER NOT NULL,
    responses      TEXT,
    creation       INTEGER NOT NULL,
    last_update    INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, attempt_id)
);

-- A blob's bytes are rows of at most the configured chunk size, so appends never rewrite
-- what is stored and reads stream. total is the declared final length (NULL until known);
-- the blob is finalized when length = total.
CREATE TABLE blobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    length      INTEGER NOT NULL DEFAULT 0,
    total       INTEGER,
    creation    INTEGER NOT NULL,
    last_update INTEGER NOT NULL
);
CREATE TABLE blob_chunks (
    blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    pos     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (blob_id, pos)
) WITHOUT ROWID;
-- A blob lives while some transaction refers to it.
CREATE TABLE blob_refs (
    transaction_id INTEGER NOT NULL REFERENCES transactions(id) ON DELETE CASCADE,
    blob_rest_id   TEXT    NOT NULL,
    blob_id        INTEGER NOT NULL REFERENCES blobs(id),
    PRIMARY KEY (transaction_id, blob_rest_id)
);
CREATE INDEX blob_refs_blob ON blob_refs(blob_id);
