-- hubbub accounts schema, version 4: usernames are one account whatever their case.
--
-- "Alice" and "alice" must not be two accounts (one could pass for the other in every message
-- and presence frame), so uniqueness moves from the name as given to its lower-case form; the
-- name as registered stays what is shown. Usernames are ASCII ([A-Za-z0-9_.-]), so lower()
-- is the whole of case folding for them.
--
-- Accounts registered before this version may clash case-insensitively: the oldest keeps its
-- name, each later one is renamed to its name (cut to 23 characters) followed by `-` and the
-- last 8 characters of its id, at most 32 characters as the API requires (a rename its owner
-- learns at the next login, which still works under the new name). The last characters, not
-- the first: ids are UUIDv7, whose first 8 hex digits are the same for every account made
-- within the same minute, while their last ones are random.
UPDATE users AS u
SET username = left(u.username, 23) || '-' || right(u.id, 8)
WHERE EXISTS (
    SELECT 1 FROM users AS o
    WHERE lower(o.username) = lower(u.username)
      AND (o.created_at, o.id) < (u.created_at, u.id)
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
