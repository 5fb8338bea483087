-- The queue admin API (engine/admin): the sender a transaction was created under and its
-- recipient's domain (lower-case A-labels), indexed for listing newest first. rcpt_domain is
-- NULL for a transaction whose recipients are not one for good: an incremental sender's (an
-- exploder parent), whose per-recipient children carry their own. Rows from before this
-- migration keep NULL in both.
ALTER TABLE transactions ADD COLUMN sender_name TEXT;
ALTER TABLE transactions ADD COLUMN rcpt_domain TEXT;
CREATE INDEX transactions_sender ON transactions(sender_name, id) WHERE sender_name IS NOT NULL;
CREATE INDEX transactions_rcpt_domain ON transactions(rcpt_domain, id) WHERE rcpt_domain IS NOT NULL;

-- Destination domains an operator suspended: no attempt starts for a transaction whose
-- rcpt_domain is here (it stays queued, held) until the row goes.
CREATE TABLE suspended_domains (
    domain   TEXT    PRIMARY KEY,
    creation INTEGER NOT NULL
);
