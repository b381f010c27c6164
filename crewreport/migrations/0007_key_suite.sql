-- Envelope version 2 (post-quantum, X-Wing): a recipient owner may hold one
-- current key per suite. 'v1' keys are P-256 (HPKE DHKEM(P-256) recipients,
-- and the receipt signing key); 'v2' keys are X-Wing recipients. Every key
-- that existed before this migration is a 'v1' key; none is changed.

ALTER TABLE service_key ADD COLUMN suite TEXT NOT NULL DEFAULT 'v1'
    CHECK (suite IN ('v1', 'v2'));

DROP INDEX service_key_current;

CREATE UNIQUE INDEX service_key_current ON service_key (owner, suite) WHERE retired_at IS NULL;

-- The receipt key signs (ES256); it is never an X-Wing key.
CREATE TRIGGER service_key_receipt_is_v1 BEFORE INSERT ON service_key
WHEN NEW.owner = 'receipt' AND NEW.suite != 'v1'
BEGIN
    SELECT RAISE(ABORT, 'the receipt key is a P-256 (v1) key');
END;
