-- hubbub history schema, version 5: edits, deletes, replies and reactions.
--
-- Edits and deletes are rows of `messages` like any message: each takes the room's next
-- gap-free seq (the same `rooms.last_seq` bump), so `history after` replays them in order and
-- an offline client converges. The message they change (`target_seq`) also carries its
-- current state, so a client reading a page needs no events from outside it:
--   * `edit_seq`/`edited_at`: the edit whose body `body` now holds;
--   * `deleted_at`: a tombstone; its `body` (and the bodies of its edits) are set to NULL,
--     so deleted text is not kept.

-- The creator of a room is its owner: an owner may delete any message in it. NULL for rooms
-- created before this version and for rooms created outside the API (tools).
ALTER TABLE rooms ADD COLUMN created_by text;

ALTER TABLE messages
    ALTER COLUMN body DROP NOT NULL,
    ADD COLUMN kind text NOT NULL DEFAULT 'message'
        CHECK (kind IN ('message', 'edit', 'delete')),
    -- The seq an edit or delete applies to; NULL exactly for plain messages.
    ADD COLUMN target_seq bigint,
    -- The seq a message answers (same room); never on edits and deletes.
    ADD COLUMN reply_to bigint,
    ADD COLUMN edit_seq bigint,
    ADD COLUMN edited_at timestamptz,
    ADD COLUMN deleted_at timestamptz,
    ADD CONSTRAINT messages_target_iff_event CHECK ((kind = 'message') = (target_seq IS NULL)),
    ADD CONSTRAINT messages_body_unless_deleted
        CHECK (body IS NOT NULL OR deleted_at IS NOT NULL OR kind <> 'message');

-- A delete clears the bodies of the target's edits: found by this index.
CREATE INDEX messages_edits_by_target ON messages (room_id, target_seq) WHERE target_seq IS NOT NULL;

-- Who reacted with which emoji to which message. Not sequenced: the counts in `history` are
-- the truth, `reaction` frames are hints. Removed with the message's delete.
CREATE TABLE reactions (
    room_id     text        NOT NULL,
    seq         bigint      NOT NULL,
    user_id     text        NOT NULL,
    emoji       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq, emoji, user_id),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
