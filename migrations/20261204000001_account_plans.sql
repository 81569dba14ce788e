-- gis-auth: an account's plan, the operator's settings beside `daily_quota`.
--
-- Every column is optional. `max_clients` NULL is unlimited; existing accounts get the
-- default cap of 1000 clients. `items` NULL lets the account's clients be granted any item;
-- an empty array, none.

ALTER TABLE accounts
    ADD COLUMN monthly_quota   bigint CHECK (monthly_quota >= 0),
    ADD COLUMN rate_per_second bigint CHECK (rate_per_second BETWEEN 1 AND 4294967295),
    ADD COLUMN rate_burst      bigint CHECK (rate_burst BETWEEN 1 AND 4294967295),
    ADD COLUMN max_clients     bigint DEFAULT 1000 CHECK (max_clients BETWEEN 0 AND 4294967295),
    ADD COLUMN items           text[],
    ADD COLUMN expires_at      timestamptz,
    ADD CONSTRAINT accounts_rate_limit_whole CHECK ((rate_per_second IS NULL) = (rate_burst IS NULL));
