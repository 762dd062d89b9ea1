//! The PostgreSQL history's messages: reading them with their current state (the quote of a
//! reply, reactions), and the statements behind edits, deletes, replies and reactions.
//!
//! Every change that takes a seq runs under the room's row lock (the `last_seq` bump), so
//! edits, deletes and replies of one room are serialised like sends; a reaction locks only its
//! message's row, which a delete also takes, so a reaction never outlives its message's delete.

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::session::{Client, Session};
use crate::error::StoreError;
use crate::protocol::{
    ChatMessage, ClientMsgId, Emoji, MessageBody, MessageKind, REACTIONS_PER_MESSAGE_MAX,
    REPLY_PREVIEW_CHARS, ReactionCount, ReplyRef, RoomId, UserRef,
};
use crate::store::{Change, NewChange, NewReaction, ReactionUpdate, refusals};

/// A message and the quote of the one it replies to, as [`message_from_row`] reads them; the
/// caller appends `WHERE` (on `m.`) and ordering.
pub(super) fn select_messages() -> String {
    format!(
        "SELECT m.room_id, m.seq, m.id, m.sender_id, m.sender_name, m.body, m.client_msg_id,
                m.sent_at, m.kind, m.target_seq, m.edit_seq, m.edited_at, m.deleted_at IS NOT NULL,
                m.reply_to, q.sender_id, q.sender_name, left(q.body, {REPLY_PREVIEW_CHARS})
         FROM messages m
         LEFT JOIN messages q ON q.room_id = m.room_id AND q.seq = m.reply_to"
    )
}

/// Reads a row of [`select_messages`] (reactions are added by [`with_reactions`]).
pub(super) fn message_from_row(r: &Row) -> Result<ChatMessage, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("message {what}"));
    let body = r
        .get::<_, Option<String>>(5)
        .map(MessageBody::parse)
        .transpose()
        .map_err(|_| corrupt("body"))?;
    let reply_to = match (r.get::<_, Option<i64>>(13), r.get::<_, Option<String>>(14)) {
        (Some(seq), Some(sender_id)) => Some(ReplyRef::new(
            seq,
            UserRef {
                id: sender_id,
                name: r.get::<_, Option<String>>(15).unwrap_or_default(),
            },
            r.get::<_, Option<String>>(16).as_deref(),
        )),
        (None, _) => None,
        (Some(_), None) => return Err(corrupt("reply target")),
    };
    Ok(ChatMessage {
        room: RoomId::parse(r.get::<_, String>(0)).map_err(|_| corrupt("room id"))?,
        seq: r.get(1),
        id: r.get(2),
        kind: MessageKind::parse(r.get::<_, &str>(8)).ok_or_else(|| corrupt("kind"))?,
        target: r.get(9),
        sender: UserRef {
            id: r.get(3),
            name: r.get(4),
        },
        body,
        client_msg_id: ClientMsgId::parse(r.get::<_, String>(6))
            .map_err(|_| corrupt("client id"))?,
        sent_at: r.get(7),
        reply_to,
        edit_seq: r.get(10),
        edited_at: r.get(11),
        deleted: r.get(12),
        reactions: Vec::new(),
    })
}

/// The entry `seq` of the room, read in the session (a transaction sees its own writes).
pub(super) async fn load<C: Client>(
    s: &Session<C>,
    room: &RoomId,
    seq: i64,
) -> Result<ChatMessage, StoreError> {
    let row = s
        .query_one(
            &format!("{} WHERE m.room_id = $1 AND m.seq = $2", select_messages()),
            &[&room.as_str(), &seq],
        )
        .await?;
    message_from_row(&row)
}

/// The entry a (room, user, clientMsgId) key committed, if any: the idempotency check.
pub(super) async fn by_client_id<C: Client>(
    s: &Session<C>,
    room: &RoomId,
    user_id: &str,
    client_msg_id: &ClientMsgId,
) -> Result<Option<ChatMessage>, StoreError> {
    let row = s
        .query_opt(
            &format!(
                "{} WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_msg_id = $3",
                select_messages()
            ),
            &[&room.as_str(), &user_id, &client_msg_id.as_str()],
        )
        .await?;
    row.as_ref().map(message_from_row).transpose()
}

/// The sender of the plain message `seq`, locked for update, or why it cannot be used:
/// `NotFound("message")`, and `Gone` when `refuse_deleted` and it was deleted. Returns the
/// sender and whether it was deleted.
async fn lock_plain<C: Client>(
    s: &Session<C>,
    room: &RoomId,
    seq: i64,
) -> Result<(String, bool), StoreError> {
    let row = s
        .query_opt(
            "SELECT sender_id, deleted_at IS NOT NULL FROM messages
             WHERE room_id = $1 AND seq = $2 AND kind = 'message' FOR UPDATE",
            &[&room.as_str(), &seq],
        )
        .await?
        .ok_or(StoreError::NotFound(refusals::NO_MESSAGE))?;
    Ok((row.get(0), row.get(1)))
}

/// Checks that a reply's target is a plain, undeleted message of the room.
pub(super) async fn check_reply<C: Client>(
    s: &Session<C>,
    room: &RoomId,
    seq: i64,
) -> Result<(), StoreError> {
    match lock_plain(s, room, seq).await? {
        (_, true) => Err(StoreError::Gone(refusals::DELETED)),
        (_, false) => Ok(()),
    }
}

/// Checks and applies an edit or delete whose event takes `seq`, then stores the event
/// (the room's row lock is held: `owner`, whether the actor owns the room, was read with it).
pub(super) async fn apply_change<C: Client>(
    s: &Session<C>,
    c: &NewChange,
    seq: i64,
    owner: bool,
) -> Result<ChatMessage, StoreError> {
    let room = c.room.as_str();
    let (sender, deleted) = lock_plain(s, &c.room, c.target).await?;
    let own = sender == c.actor.id;
    match c.change {
        Change::Edit(_) if !own => return Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_EDIT)),
        Change::Delete if !own && !owner => {
            return Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_DELETE));
        }
        _ => {}
    }
    if deleted {
        return Err(StoreError::Gone(refusals::DELETED));
    }
    let now = OffsetDateTime::now_utc();
    let (kind, body) = match &c.change {
        Change::Edit(body) => {
            s.execute(
                "UPDATE messages SET body = $3, edit_seq = $4, edited_at = $5
                 WHERE room_id = $1 AND seq = $2",
                &[&room, &c.target, &body.as_str(), &seq, &now],
            )
            .await?;
            (MessageKind::Edit, Some(body.as_str()))
        }
        Change::Delete => {
            // The tombstone keeps no text: neither its body nor those of its edits.
            s.execute(
                "UPDATE messages SET body = NULL,
                        deleted_at = CASE WHEN seq = $2 THEN $3 ELSE deleted_at END
                 WHERE room_id = $1 AND (seq = $2 OR (kind = 'edit' AND target_seq = $2))",
                &[&room, &c.target, &now],
            )
            .await?;
            s.execute(
                "DELETE FROM reactions WHERE room_id = $1 AND seq = $2",
                &[&room, &c.target],
            )
            .await?;
            (MessageKind::Delete, None)
        }
    };
    s.execute(
        "INSERT INTO messages (room_id, seq, id, sender_id, sender_name, body, client_msg_id,
                               sent_at, kind, target_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &room,
            &seq,
            &uuid::Uuid::now_v7(),
            &c.actor.id,
            &c.actor.name,
            &body,
            &c.client_msg_id.as_str(),
            &now,
            &kind.as_str(),
            &c.target,
        ],
    )
    .await?;
    load(s, &c.room, seq).await
}

/// Adds or takes back a reaction in the transaction `s` (commit it after).
pub(super) async fn react<C: Client>(
    s: &Session<C>,
    r: &NewReaction,
) -> Result<ReactionUpdate, StoreError> {
    let room = r.room.as_str();
    // The message's row lock orders concurrent reactions to it, so the cap on distinct emoji
    // holds, and a delete cannot slip between the check and the insert.
    if lock_plain(s, &r.room, r.seq).await?.1 {
        return Err(StoreError::Gone(refusals::DELETED));
    }
    let changed = if r.add {
        let row = s
            .query_one(
                "SELECT count(DISTINCT emoji), count(*) FILTER (WHERE emoji = $3)
                 FROM reactions WHERE room_id = $1 AND seq = $2",
                &[&room, &r.seq, &r.emoji.as_str()],
            )
            .await?;
        let (distinct, this): (i64, i64) = (row.get(0), row.get(1));
        if this == 0 && distinct >= REACTIONS_PER_MESSAGE_MAX as i64 {
            return Err(StoreError::LimitExceeded(refusals::TOO_MANY_REACTIONS));
        }
        s.execute(
            "INSERT INTO reactions (room_id, seq, user_id, emoji) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&room, &r.seq, &r.user.id, &r.emoji.as_str()],
        )
        .await?
    } else {
        s.execute(
            "DELETE FROM reactions WHERE room_id = $1 AND seq = $2 AND user_id = $3 AND emoji = $4",
            &[&room, &r.seq, &r.user.id, &r.emoji.as_str()],
        )
        .await?
    };
    let count: i64 = s
        .query_one(
            "SELECT count(*) FROM reactions WHERE room_id = $1 AND seq = $2 AND emoji = $3",
            &[&room, &r.seq, &r.emoji.as_str()],
        )
        .await?
        .get(0);
    Ok(ReactionUpdate {
        count: u32::try_from(count).map_err(|_| StoreError::Corrupt("reaction count".into()))?,
        changed: changed == 1,
    })
}

/// Fills in the reactions of a page's messages, `me` for `viewer`, in one query.
pub(super) async fn with_reactions<C: Client>(
    s: &Session<C>,
    room: &RoomId,
    messages: &mut [ChatMessage],
    viewer: &str,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    // Byte order of the emoji (COLLATE "C"), as the in-memory store sorts them.
    let rows = s
        .query(
            "SELECT seq, emoji, count(*), bool_or(user_id = $3) FROM reactions
             WHERE room_id = $1 AND seq = ANY($2)
             GROUP BY seq, emoji ORDER BY seq, emoji COLLATE \"C\"",
            &[&room.as_str(), &seqs, &viewer],
        )
        .await?;
    for row in rows {
        let seq: i64 = row.get(0);
        let emoji = Emoji::parse(row.get::<_, String>(1))
            .map_err(|_| StoreError::Corrupt("reaction emoji".into()))?;
        let count: i64 = row.get(2);
        if let Some(m) = messages.iter_mut().find(|m| m.seq == seq) {
            m.reactions.push(ReactionCount {
                emoji,
                count: count as u32,
                me: row.get(3),
            });
        }
    }
    Ok(())
}
