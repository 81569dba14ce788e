-- gis-auth: revoked access tokens, by their `jti`, until their `exp`.
--
-- Every instance loads the live rows at start and learns of new ones by NOTIFY on the
-- store's channel (`token:<exp>:<jti>`). Each revocation deletes the rows that expired, so
-- the table holds only tokens that would still verify.

CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 128),
    expires_at timestamptz NOT NULL
);

CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
