-- Every acknowledged change of a session (login, phone number, logout,
-- revoke, its app removed), written by the change's own statement so that
-- it commits with it. It is the outbox of what Redis must be told: the
-- instance that made the change tells Redis at once and marks it synced;
-- any instance tells Redis what is still unsynced a moment later (its
-- maker failed, was cut off, or could not reach Redis). Ordered by seq, it
-- is also the feed session events will read.
CREATE TABLE session_changes (
    seq          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid         UUID        NOT NULL,
    app_id       BIGINT      NOT NULL,
    change       TEXT        NOT NULL
                 CHECK (change IN ('login', 'phone', 'logout', 'revoke', 'app_removed')),
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    redis_synced BOOLEAN     NOT NULL DEFAULT false
);

-- What Redis has not been told yet, oldest first. (The retention purge
-- walks the primary key: seq grows with at, so the oldest rows come first;
-- an index on at would cost every change one more insert.)
CREATE INDEX session_changes_unsynced ON session_changes (seq) WHERE NOT redis_synced;
