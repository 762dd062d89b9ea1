-- hubbub history schema, version 1: rooms, private-room members, messages.

CREATE TABLE rooms (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    private     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The last seq handed out in this room. Bumped by UPDATE inside the commit
    -- transaction: the row lock serialises senders of one room (and only that room), and a
    -- rolled-back commit takes its number back, so seq stays gap-free.
    last_seq    bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

CREATE TABLE room_members (
    room_id     text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    room_id        text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq            bigint      NOT NULL CHECK (seq > 0),
    id             uuid        NOT NULL UNIQUE,
    sender_id      text        NOT NULL,
    sender_name    text        NOT NULL,
    body           text        NOT NULL,
    client_msg_id  text        NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    -- Keyset pagination reads ranges of this key.
    PRIMARY KEY (room_id, seq),
    -- Idempotency: a retried send finds its first commit here.
    UNIQUE (room_id, sender_id, client_msg_id)
);
