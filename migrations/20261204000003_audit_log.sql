-- gis-auth: the audit log, one row per change made through the store's management
-- operations (the admin API, the command-line tool, programs using the store), applied or
-- refused. It names the fields a change set, never their values: no credential or digest.

CREATE TABLE audit_log (
    seq        bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    changed_by text NOT NULL,
    account_id text,
    client_id  text,
    action     text NOT NULL,
    fields     text[] NOT NULL DEFAULT '{}',
    outcome    text NOT NULL
);

CREATE INDEX audit_log_by_account ON audit_log (account_id, at);
CREATE INDEX audit_log_by_time ON audit_log (at);
