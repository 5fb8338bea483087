-- Idempotency-Key of the create request (namespaced by the caller) and a hash of that
-- request, so that a retried create returns the original transaction and a different
-- request under the same key is refused. Keys go away with their transaction.
ALTER TABLE transactions ADD COLUMN idempotency_key TEXT;
ALTER TABLE transactions ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX transactions_idempotency ON transactions(idempotency_key) WHERE idempotency_key IS NOT NULL;
