-- Rooms each user has created, for the cap on rooms created per user (docs/protocol.md,
-- Limits). A counter rather than a count over `rooms`: a creation takes its place under the
-- cap with one conditional upsert whose row lock orders concurrent creations by one user.
CREATE TABLE room_quotas (
    user_id text PRIMARY KEY,
    created bigint NOT NULL CHECK (created >= 0)
);
