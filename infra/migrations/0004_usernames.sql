-- hubbub accounts schema, version 4: usernames are one account whatever their case.
--
-- "Alice" and "alice" must not be two accounts (one could pass for the other in every message
-- and presence frame), so uniqueness moves from the name as given to its lower-case form; the
-- name as registered stays what is shown. Usernames are ASCII ([A-Za-z0-9_.-]), so lower()
-- is the whole of case folding for them.
--
-- Accounts registered before this version may clash case-insensitively: the oldest keeps its
-- name, each later one is renamed to its name followed by `-` and the first 8 characters of its
-- id (a rename its owner learns at the next login, which still works under the new name).
UPDATE users AS u
SET username = left(u.username, 23) || '-' || left(u.id, 8)
WHERE EXISTS (
    SELECT 1 FROM users AS o
    WHERE lower(o.username) = lower(u.username)
      AND (o.created_at, o.id) < (u.created_at, u.id)
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
