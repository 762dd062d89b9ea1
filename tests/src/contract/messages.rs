//! The `HistoryStore` contract for changes to messages: replies, edits, deletes (sequenced,
//! gap-free, idempotent, permission-checked) and reactions (counted, capped, `me` per reader).

use hubbub_core::protocol::{ChatMessage, Emoji, MessageKind, REACTIONS_PER_MESSAGE_MAX};
use hubbub_core::store::{Change, NewChange, NewReaction, ReactionUpdate, refusals};

use super::*;

fn body(text: &str) -> MessageBody {
    MessageBody::parse(text).expect("body")
}

fn emoji(e: &str) -> Emoji {
    Emoji::parse(e).expect("emoji")
}

fn text(m: &ChatMessage) -> Option<&str> {
    m.body.as_ref().map(MessageBody::as_str)
}

async fn send(
    store: &dyn HistoryStore,
    r: &RoomId,
    who: &UserRef,
    cmid: &str,
    text: &str,
    reply_to: Option<i64>,
) -> Result<Commit, StoreError> {
    store
        .commit_message(&NewMessage {
            room: r.clone(),
            sender: who.clone(),
            body: body(text),
            client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
            reply_to,
        })
        .await
}

async fn change(
    store: &dyn HistoryStore,
    r: &RoomId,
    who: &UserRef,
    target: i64,
    change: Change,
    cmid: &str,
) -> Result<Commit, StoreError> {
    store
        .commit_change(&NewChange {
            room: r.clone(),
            actor: who.clone(),
            target,
            change,
            client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
        })
        .await
}

async fn react(
    store: &dyn HistoryStore,
    r: &RoomId,
    who: &UserRef,
    seq: i64,
    e: &str,
    add: bool,
) -> Result<ReactionUpdate, StoreError> {
    store
        .react(&NewReaction {
            room: r.clone(),
            seq,
            user: who.clone(),
            emoji: emoji(e),
            add,
        })
        .await
}

/// The whole room as `viewer` reads it, oldest first.
async fn everything(store: &dyn HistoryStore, r: &RoomId, viewer: &UserRef) -> Vec<ChatMessage> {
    store
        .history(
            r,
            &HistoryQuery::new(None, Some(0), Some(100)).expect("query"),
            &viewer.id,
        )
        .await
        .expect("history")
        .messages
}

fn new(c: Result<Commit, StoreError>) -> ChatMessage {
    match c {
        Ok(Commit::New(m)) => m,
        other => panic!("expected a new commit, got {other:?}"),
    }
}

/// Runs the suite against `store`.
pub async fn message_changes(store: &dyn HistoryStore) {
    let (olga, alice, bob, carol) = (user("olga"), user("alice"), user("bob"), user("carol"));
    let talk = store
        .create_room(
            &NewRoom {
                id: room("talk"),
                name: "Talk".into(),
                private: false,
                read_receipts: false,
            },
            &olga,
        )
        .await
        .expect("room")
        .id;
    let r = &talk;

    // replies
    let m1 = new(send(store, r, &alice, "a1", "first words", None).await);
    let m2 = new(send(store, r, &bob, "b1", "an answer", Some(1)).await);
    let quote = m2.reply_to.as_ref().expect("the reply carries its quote");
    assert_eq!(
        (
            quote.seq,
            &quote.sender,
            quote.body_preview.as_str(),
            quote.deleted
        ),
        (1, &alice, "first words", false)
    );
    for (target, seqless) in [(99, "b-x"), (0, "b-y")] {
        assert!(
            matches!(
                send(store, r, &bob, seqless, "to nothing", Some(target)).await,
                Err(StoreError::NotFound(refusals::NO_MESSAGE))
            ),
            "a reply to {target}"
        );
    }

    // edits: own messages only, each the next seq, idempotent
    assert!(matches!(
        change(store, r, &bob, 1, Change::Edit(body("mine now")), "b2").await,
        Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_EDIT))
    ));
    let e3 = new(change(
        store,
        r,
        &alice,
        1,
        Change::Edit(body("first words, fixed")),
        "a2",
    )
    .await);
    assert_eq!(
        (e3.seq, e3.kind, e3.target, text(&e3), &e3.sender),
        (
            3,
            MessageKind::Edit,
            Some(1),
            Some("first words, fixed"),
            &alice
        )
    );
    assert_eq!(
        change(store, r, &alice, 1, Change::Edit(body("other text")), "a2")
            .await
            .expect("replay"),
        Commit::Duplicate(e3.clone()),
        "a replayed edit returns the first"
    );
    assert!(
        matches!(
            change(
                store,
                r,
                &alice,
                3,
                Change::Edit(body("an edit of an edit")),
                "a3"
            )
            .await,
            Err(StoreError::NotFound(refusals::NO_MESSAGE))
        ),
        "events are not messages"
    );
    assert!(matches!(
        change(store, r, &alice, 42, Change::Edit(body("x")), "a4").await,
        Err(StoreError::NotFound(refusals::NO_MESSAGE))
    ));
    assert!(matches!(
        change(
            store,
            &room("nowhere"),
            &alice,
            1,
            Change::Edit(body("x")),
            "a5"
        )
        .await,
        Err(StoreError::NotFound("room"))
    ));

    // reactions
    let up = |count, changed| ReactionUpdate { count, changed };
    assert_eq!(
        react(store, r, &bob, 1, "👍", true).await.expect("react"),
        up(1, true)
    );
    assert_eq!(
        react(store, r, &bob, 1, "👍", true).await.expect("again"),
        up(1, false)
    );
    assert_eq!(
        react(store, r, &alice, 1, "👍", true).await.expect("react"),
        up(2, true)
    );
    assert_eq!(
        react(store, r, &alice, 1, "🎉", true).await.expect("react"),
        up(1, true)
    );
    assert_eq!(
        react(store, r, &bob, 1, "👍", false)
            .await
            .expect("unreact"),
        up(1, true)
    );
    assert_eq!(
        react(store, r, &bob, 1, "👍", false).await.expect("again"),
        up(1, false)
    );
    assert_eq!(
        react(store, r, &carol, 2, "👀", false)
            .await
            .expect("nothing"),
        up(0, false)
    );
    for seq in [3, 99] {
        assert!(matches!(
            react(store, r, &bob, seq, "👍", true).await,
            Err(StoreError::NotFound(refusals::NO_MESSAGE))
        ));
    }

    // history: current state, quotes as they are now, reactions with `me` for the reader
    let seen = everything(store, r, &alice).await;
    assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let first = &seen[0];
    assert_eq!(
        (
            text(first),
            first.edit_seq,
            first.edited_at,
            first.deleted,
            first.kind
        ),
        (
            Some("first words, fixed"),
            Some(3),
            Some(e3.sent_at),
            false,
            MessageKind::Message
        )
    );
    assert_eq!(
        (first.id, first.sent_at),
        (m1.id, m1.sent_at),
        "the message keeps its identity"
    );
    let counts: Vec<_> = first
        .reactions
        .iter()
        .map(|c| (c.emoji.as_str(), c.count, c.me))
        .collect();
    assert_eq!(
        counts,
        [("🎉", 1, true), ("👍", 1, true)],
        "by emoji, `me` for alice"
    );
    let as_bob = everything(store, r, &bob).await;
    assert!(
        as_bob[0].reactions.iter().all(|c| !c.me),
        "bob took his back"
    );
    assert_eq!(
        seen[1].reply_to.as_ref().map(|q| q.body_preview.as_str()),
        Some("first words, fixed"),
        "history quotes the current body"
    );
    assert_eq!(seen[2], e3, "the edit is in the sequence as committed");

    // deletes: own messages, or any for the owner (a public room's creator); a tombstone remains
    assert!(matches!(
        change(store, r, &bob, 1, Change::Delete, "b3").await,
        Err(StoreError::Forbidden(refusals::NOT_YOURS_TO_DELETE))
    ));
    let d4 = new(change(store, r, &olga, 2, Change::Delete, "o1").await);
    assert_eq!(
        (d4.seq, d4.kind, d4.target, text(&d4), &d4.sender),
        (4, MessageKind::Delete, Some(2), None, &olga),
        "the public room's creator deletes bob's message"
    );
    let m5 = new(send(store, r, &carol, "c1", "quoting alice", Some(1)).await);
    let d6 = new(change(store, r, &alice, 1, Change::Delete, "a6").await);
    assert_eq!(d6.seq, 6);
    assert_eq!(
        change(store, r, &alice, 1, Change::Delete, "a6")
            .await
            .expect("replay"),
        Commit::Duplicate(d6.clone())
    );
    for refused in [
        change(store, r, &alice, 1, Change::Edit(body("undo")), "a7").await,
        change(store, r, &alice, 1, Change::Delete, "a8").await,
        send(store, r, &bob, "b4", "to a tombstone", Some(1)).await,
    ] {
        assert!(
            matches!(refused, Err(StoreError::Gone(refusals::DELETED))),
            "{refused:?}"
        );
    }
    assert!(matches!(
        react(store, r, &bob, 1, "👍", true).await,
        Err(StoreError::Gone(refusals::DELETED))
    ));

    let seen = everything(store, r, &alice).await;
    assert_eq!(
        seen.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6],
        "refusals took no seq"
    );
    let (tomb, edit) = (&seen[0], &seen[2]);
    assert!(
        tomb.deleted && text(tomb).is_none() && tomb.reactions.is_empty(),
        "{tomb:?}"
    );
    assert_eq!(
        tomb.edit_seq,
        Some(3),
        "the tombstone keeps its edit history"
    );
    assert!(
        text(edit).is_none(),
        "a delete drops the text of the message's edits too"
    );
    assert!(seen[1].deleted, "bob's message, deleted by the owner");
    let quote = seen[4].reply_to.as_ref().expect("quote");
    assert_eq!(
        (
            quote.seq,
            quote.body_preview.as_str(),
            quote.deleted,
            seen[4].id
        ),
        (1, "", true, m5.id),
        "a quote of a deleted message"
    );

    // the cap on distinct emoji per message
    let m7 = new(send(store, r, &carol, "c2", "react to me", None).await);
    let many: Vec<String> = (0..=REACTIONS_PER_MESSAGE_MAX as u32)
        .map(|i| char::from_u32(0x1F600 + i).expect("emoji").to_string())
        .collect();
    for e in &many[..REACTIONS_PER_MESSAGE_MAX] {
        react(store, r, &carol, m7.seq, e, true)
            .await
            .expect("under the cap");
    }
    assert!(matches!(
        react(
            store,
            r,
            &carol,
            m7.seq,
            &many[REACTIONS_PER_MESSAGE_MAX],
            true
        )
        .await,
        Err(StoreError::LimitExceeded(refusals::TOO_MANY_REACTIONS))
    ));
    assert_eq!(
        react(store, r, &bob, m7.seq, &many[0], true)
            .await
            .expect("an existing emoji"),
        up(2, true)
    );
    let last = everything(store, r, &bob).await.pop().expect("m7");
    assert_eq!(last.reactions.len(), REACTIONS_PER_MESSAGE_MAX);
    assert_eq!((last.reactions[0].count, last.reactions[0].me), (2, true));
}
