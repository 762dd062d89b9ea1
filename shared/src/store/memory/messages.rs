//! The in-memory history's message changes: replies, edits, deletes and reactions, on one
//! room's state while the store's lock is held (so each is atomic, as the PostgreSQL
//! transaction is), and the decoration of a history page with current quotes and reactions.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::RoomState;
use crate::error::StoreError;
use crate::protocol::{
    ChatMessage, Emoji, MessageKind, REACTIONS_PER_MESSAGE_MAX, ReactionCount, ReplyRef,
};
use crate::store::{Change, Commit, NewChange, NewReaction, ReactionUpdate, refusals};

/// Reactions of one message: emoji (byte order, as PostgreSQL's `COLLATE "C"`) -> user ids.
pub(super) type Reactions = BTreeMap<Emoji, BTreeSet<String>>;

impl RoomState {
    /// The plain message `seq`, or why it cannot be used.
    fn plain(&self, seq: i64) -> Result<usize, StoreError> {
        let i = usize::try_from(seq - 1).map_err(|_| StoreError::NotFound(refusals::NO_MESSAGE))?;
        match self.messages.get(i) {
            Some(m) if m.kind == MessageKind::Message => Ok(i),
            _ => Err(StoreError::NotFound(refusals::NO_MESSAGE)),
        }
    }

    /// The quote of the plain, undeleted message `seq`, for a new reply.
    pub(super) fn reply_ref(&self, seq: i64) -> Result<ReplyRef, StoreError> {
        let target = &self.messages[self.plain(seq)?];
        if target.deleted {
            return Err(StoreError::Gone(refusals::DELETED));
        }
        Ok(quote(target))
    }

    /// Commits an edit or delete ([`crate::store::HistoryStore::commit_change`]).
    pub(super) fn commit_change(&mut self, c: &NewChange) -> Result<Commit, StoreError> {
        let key = (c.actor.id.clone(), c.client_msg_id.to_string());
        if let Some(&i) = self.by_client_id.get(&key) {
            return Ok(Commit::Duplicate(self.messages[i].clone()));
        }
        let t = self.plain(c.target)?;
        let target = &self.messages[t];
        let own = target.sender.id == c.actor.id;
        match c.change {
            Change::Edit(_) if !own => {
                return Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_EDIT));
            }
            Change::Delete if !own && !self.owned_by(&c.actor.id) => {
                return Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_DELETE));
            }
            _ => {}
        }
        if target.deleted {
            return Err(StoreError::Gone(refusals::DELETED));
        }
        let seq = self.messages.len() as i64 + 1;
        let now = OffsetDateTime::now_utc();
        let (kind, body) = match &c.change {
            Change::Edit(body) => (MessageKind::Edit, Some(body.clone())),
            Change::Delete => (MessageKind::Delete, None),
        };
        let event = ChatMessage {
            room: c.room.clone(),
            id: uuid::Uuid::now_v7(),
            seq,
            kind,
            target: Some(c.target),
            sender: c.actor.clone(),
            body: body.clone(),
            client_msg_id: c.client_msg_id.clone(),
            sent_at: now,
            reply_to: None,
            edit_seq: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
        };
        match kind {
            MessageKind::Edit => {
                let target = &mut self.messages[t];
                target.body = body;
                target.edit_seq = Some(seq);
                target.edited_at = Some(now);
            }
            _ => {
                self.messages[t].body = None;
                self.messages[t].deleted = true;
                for m in &mut self.messages {
                    if m.kind == MessageKind::Edit && m.target == Some(c.target) {
                        m.body = None;
                    }
                }
                self.reactions.remove(&c.target);
            }
        }
        self.by_client_id.insert(key, self.messages.len());
        self.messages.push(event.clone());
        Ok(Commit::New(event))
    }

    /// Adds or takes back a reaction ([`crate::store::HistoryStore::react`]).
    pub(super) fn react(&mut self, r: &NewReaction) -> Result<ReactionUpdate, StoreError> {
        let t = self.plain(r.seq)?;
        if self.messages[t].deleted {
            return Err(StoreError::Gone(refusals::DELETED));
        }
        let on = self.reactions.entry(r.seq).or_default();
        let emoji = &r.emoji;
        if r.add && !on.contains_key(emoji) && on.len() >= REACTIONS_PER_MESSAGE_MAX {
            return Err(StoreError::LimitExceeded(refusals::TOO_MANY_REACTIONS));
        }
        let changed = if r.add {
            on.entry(emoji.clone())
                .or_default()
                .insert(r.user.id.clone())
        } else {
            let removed = on
                .get_mut(emoji)
                .is_some_and(|users| users.remove(&r.user.id));
            if on.get(emoji).is_some_and(BTreeSet::is_empty) {
                on.remove(emoji);
            }
            removed
        };
        let count = on.get(emoji).map_or(0, BTreeSet::len) as u32;
        if on.is_empty() {
            self.reactions.remove(&r.seq);
        }
        Ok(ReactionUpdate { count, changed })
    }

    /// A page's messages as history shows them to `viewer`: quotes of the replied-to
    /// messages as they are now, and reactions.
    pub(super) fn decorate(&self, page: &[ChatMessage], viewer: &str) -> Vec<ChatMessage> {
        page.iter()
            .map(|m| {
                let mut m = m.clone();
                let target = m.reply_to.as_ref().and_then(|r| {
                    usize::try_from(r.seq - 1)
                        .ok()
                        .and_then(|i| self.messages.get(i))
                });
                if let Some(target) = target {
                    m.reply_to = Some(quote(target));
                }
                m.reactions = self
                    .reactions
                    .get(&m.seq)
                    .map(|on| {
                        on.iter()
                            .map(|(emoji, users)| ReactionCount {
                                emoji: emoji.clone(),
                                count: users.len() as u32,
                                me: users.contains(viewer),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                m
            })
            .collect()
    }
}

/// The quote of `target` as it is now.
fn quote(target: &ChatMessage) -> ReplyRef {
    ReplyRef::new(
        target.seq,
        target.sender.clone(),
        target.body.as_ref().map(|b| b.as_str()),
    )
}
