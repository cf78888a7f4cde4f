-- The audit trail of admin actions (GET /admin/audit), newest first by id.
-- Never a secret: targets are ids.
CREATE TABLE audit_log (
    id     BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    action TEXT        NOT NULL,
    target TEXT        NOT NULL,
    caller TEXT
);
