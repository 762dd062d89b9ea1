-- hubbub rooms schema, version 6: room kinds, member roles, read state.
--
-- Independent of every other migration after 0004 (it touches only rooms, room_members and
-- its own tables), so it applies the same whether or not a migration numbered below it is
-- applied before or after it (the runner applies every version it has not recorded).

-- `direct`: a two-person room opened with POST /dm/{username}; its id is derived from the two
-- user ids (`dm-` + 40 hex digits), so that two concurrent opens converge on one row.
ALTER TABLE rooms ADD COLUMN kind text NOT NULL DEFAULT 'room'
    CHECK (kind IN ('room', 'direct'));
-- Whether members may see each other's read positions. Only private rooms (and direct rooms,
-- which are private) may turn it on: in a public room anyone could watch anyone read.
ALTER TABLE rooms ADD COLUMN read_receipts boolean NOT NULL DEFAULT false;
UPDATE rooms SET read_receipts = true WHERE private;
ALTER TABLE rooms ADD CONSTRAINT rooms_receipts_private CHECK (private OR NOT read_receipts);

-- Owners add and remove members; members may leave. The display name is known when the
-- member was added by username or opened a direct room; a member added by id has none.
ALTER TABLE room_members ADD COLUMN role text NOT NULL DEFAULT 'member'
    CHECK (role IN ('owner', 'member'));
ALTER TABLE room_members ADD COLUMN user_name text;
-- Rooms made before this version: their creator was inserted as the first member, in the
-- room's own transaction, so the earliest member of each room becomes its owner.
UPDATE room_members AS m SET role = 'owner'
WHERE NOT EXISTS (
    SELECT 1 FROM room_members AS o
    WHERE o.room_id = m.room_id AND (o.added_at, o.user_id) < (m.added_at, m.user_id)
);

-- The two people of a direct room, ordered by id (user_a < user_b), with the names they had
-- when it was opened (usernames do not change).
CREATE TABLE direct_rooms (
    room_id  text PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    user_a   text NOT NULL,
    name_a   text NOT NULL,
    user_b   text NOT NULL,
    name_b   text NOT NULL,
    CHECK (user_a < user_b)
);

-- Each user's last-read seq per room. Only ever raised (GREATEST on upsert) and never past
-- the room's last_seq (clamped when written), so unread = last_seq - last_read >= 0.
CREATE TABLE read_state (
    room_id     text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     text        NOT NULL,
    last_read   bigint      NOT NULL CHECK (last_read >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
