-- hubbub accounts schema, version 2: users, refresh tokens (by family) and failed-login counters.

CREATE TABLE users (
    -- The `sub` of the user's access tokens.
    id             text        PRIMARY KEY,
    -- Login and display name; unique as given (the API restricts it to [A-Za-z0-9_.-]).
    username       text        NOT NULL UNIQUE,
    -- argon2id PHC string: algorithm, parameters, per-user salt and hash.
    password_hash  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per login: every refresh token descended from it belongs to the family. Revoking
-- the family (logout, reuse of a spent token) kills all of them at once. Rotation locks the
-- family row, so a revocation and a rotation of the same family never interleave.
CREATE TABLE refresh_families (
    family      uuid        PRIMARY KEY,
    user_id     text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE refresh_tokens (
    -- Hex SHA-256 of the opaque token: the token itself is never stored.
    hash        text        PRIMARY KEY,
    family      uuid        NOT NULL REFERENCES refresh_families (family) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    -- Set when the token is exchanged for its successor; presenting it again is reuse.
    spent_at    timestamptz
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- Fixed-window counters of failed logins, keyed by `user:<name>` or `ip:<address>`.
CREATE TABLE login_failures (
    key          text        PRIMARY KEY,
    window_ends  timestamptz NOT NULL,
    failures     integer     NOT NULL CHECK (failures > 0)
);
