-- gis-auth: accounts, their clients, the clients' credential digests and item grants.
--
-- Applied by `PostgresStore::migrate()` (and `gis-auth migrate`) into the first schema of the
-- connection's search_path. Only SHA-256 digests of credentials are stored, never a key or a
-- secret.

CREATE TABLE accounts (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    roles         text[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'inactive')),
    daily_quota   bigint CHECK (daily_quota >= 0),
    contact_name  text,
    contact_email text,
    contact_phone text
);

CREATE TABLE clients (
    id                    text PRIMARY KEY,
    account_id            text NOT NULL REFERENCES accounts (id),
    name                  text NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('JavaScript', 'NativeConfidential')),
    -- NULL: all of the account's roles, following the account as its roles change.
    roles                 text[],
    status                text NOT NULL CHECK (status IN ('active', 'inactive')),
    allowed_origins       text[] NOT NULL DEFAULT '{}',
    allow_missing_origin  boolean NOT NULL DEFAULT false,
    allowed_ips           text[] NOT NULL DEFAULT '{}',
    expires_at            timestamptz,
    -- NULL: whatever the roles allow.
    privileges            text[],
    rate_per_second       bigint CHECK (rate_per_second BETWEEN 1 AND 4294967295),
    rate_burst            bigint CHECK (rate_burst BETWEEN 1 AND 4294967295),
    shadow                text[] NOT NULL DEFAULT '{}',
    -- How many times the credential was regenerated (tokens carry it).
    credential_generation bigint NOT NULL DEFAULT 0 CHECK (credential_generation >= 0),
    CHECK ((rate_per_second IS NULL) = (rate_burst IS NULL))
);

CREATE INDEX clients_by_account ON clients (account_id, id);

-- Two slots per client: the current digest and, during a rotation's grace period, the
-- previous one with the end of its grace. One table for both, so that no two clients can
-- ever hold the same credential, and a lookup by digest is one primary-key probe.
CREATE TABLE credential_digests (
    digest      bytea PRIMARY KEY CHECK (octet_length(digest) = 32),
    client_id   text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    slot        text NOT NULL CHECK (slot IN ('current', 'previous')),
    grace_until timestamptz,
    UNIQUE (client_id, slot),
    CHECK ((slot = 'previous') = (grace_until IS NOT NULL))
);

CREATE TABLE client_grants (
    client_id text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    position  integer NOT NULL,
    item      text NOT NULL,
    can_read  boolean NOT NULL,
    can_write boolean NOT NULL,
    PRIMARY KEY (client_id, item),
    CHECK (can_read OR can_write)
);
