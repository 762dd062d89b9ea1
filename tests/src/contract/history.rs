//! The `HistoryStore` contract (and the room catalogue it keeps).

use super::*;

fn new_message(r: &RoomId, sender: &UserRef, cmid: &str, body: &str) -> NewMessage {
    NewMessage {
        room: r.clone(),
        sender: sender.clone(),
        body: MessageBody::parse(body).expect("body"),
        client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
        reply_to: None,
    }
}

fn public_room(id: &str) -> NewRoom {
    NewRoom {
        id: room(id),
        name: format!("Room {id}"),
        private: false,
        read_receipts: false,
    }
}

/// A private room `id` named "Secret".
pub fn private_room(id: &str) -> NewRoom {
    NewRoom {
        private: true,
        read_receipts: true,
        name: "Secret".into(),
        ..public_room(id)
    }
}

fn seqs(page: &hubbub_core::store::HistoryPage) -> Vec<i64> {
    page.messages.iter().map(|m| m.seq).collect()
}

fn query(cursor: HistoryCursor, limit: u32) -> HistoryQuery {
    HistoryQuery { cursor, limit }
}

/// The `HistoryStore` contract.
pub async fn history_store(store: &dyn HistoryStore) {
    let alice = user("alice");
    let bob = user("bob");
    let carol = user("carol");

    // rooms
    let lobby = public_room("lobby");
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let created = store.create_room(&lobby, &alice).await.expect("create");
    let got = store
        .get_room(&lobby.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        created, got,
        "create answers the room as stored, to the stored precision"
    );
    assert!(
        created.created_at > before,
        "the store stamps the creation time"
    );
    assert_eq!((got.name.as_str(), got.private), ("Room lobby", false));
    assert!(matches!(
        store.create_room(&lobby, &bob).await,
        Err(StoreError::Conflict("room"))
    ));
    assert!(
        store
            .get_room(&room("nowhere"))
            .await
            .expect("get")
            .is_none()
    );
    let irc = store
        .ensure_public_room(&room("irc-style"))
        .await
        .expect("ensure");
    assert_eq!((irc.name.as_str(), irc.private), ("irc-style", false));
    let again = store
        .ensure_public_room(&room("irc-style"))
        .await
        .expect("ensure again");
    assert_eq!(
        again.created_at, irc.created_at,
        "ensure returns the existing room"
    );

    // access
    let secret = NewRoom {
        private: true,
        ..public_room("secret")
    };
    store
        .create_room(&secret, &alice)
        .await
        .expect("create private");
    let same = store.ensure_public_room(&secret.id).await.expect("ensure");
    assert!(same.private, "ensure never turns a private room public");
    assert_eq!(
        store
            .room_access(&room("nowhere"), &bob.id)
            .await
            .expect("access"),
        RoomAccess::Missing
    );
    assert_eq!(
        store.room_access(&lobby.id, &bob.id).await.expect("access"),
        RoomAccess::Allowed
    );
    assert_eq!(
        store
            .room_access(&secret.id, &alice.id)
            .await
            .expect("access"),
        RoomAccess::Allowed
    );
    assert_eq!(
        store
            .room_access(&secret.id, &bob.id)
            .await
            .expect("access"),
        RoomAccess::Denied
    );
    store
        .add_member(&secret.id, &bob.id)
        .await
        .expect("add member");
    store
        .add_member(&secret.id, &bob.id)
        .await
        .expect("add member twice");
    assert_eq!(
        store
            .room_access(&secret.id, &bob.id)
            .await
            .expect("access"),
        RoomAccess::Allowed
    );
    assert!(matches!(
        store.add_member(&room("nowhere"), &bob.id).await,
        Err(StoreError::NotFound("room"))
    ));

    // commits: gap-free seq, idempotent on (room, sender, clientMsgId)
    let c1 = store
        .commit_message(&new_message(&lobby.id, &alice, "a1", "one"))
        .await
        .expect("commit");
    let Commit::New(m1) = &c1 else {
        panic!("first commit is new")
    };
    assert_eq!(
        (m1.seq, m1.body.as_ref().map(|b| b.as_str()), &m1.sender),
        (1, Some("one"), &alice)
    );
    let dup = store
        .commit_message(&new_message(&lobby.id, &alice, "a1", "one, retried"))
        .await
        .expect("replay");
    assert_eq!(
        dup,
        Commit::Duplicate(m1.clone()),
        "a replay returns the first commit"
    );
    let id = |s: &str| ClientMsgId::parse(s).expect("client msg id");
    assert_eq!(
        store
            .committed(&lobby.id, &alice.id, &id("a1"))
            .await
            .expect("committed"),
        Some(m1.clone()),
        "the first commit, found without committing"
    );
    for (room, sender, client_msg_id) in [
        (&lobby.id, &bob.id, "a1"),
        (&lobby.id, &alice.id, "a2"),
        (&room("nowhere"), &alice.id, "a1"),
    ] {
        assert_eq!(
            store
                .committed(room, sender, &id(client_msg_id))
                .await
                .expect("committed"),
            None,
            "{room} {sender} {client_msg_id}"
        );
    }
    let c2 = store
        .commit_message(&new_message(&lobby.id, &bob, "a1", "same id, other sender"))
        .await
        .expect("commit");
    assert!(
        matches!(&c2, Commit::New(m) if m.seq == 2),
        "a replay takes no seq: {c2:?}"
    );
    let other_room = store
        .commit_message(&new_message(&irc.id, &alice, "a1", "other room"))
        .await
        .expect("commit");
    assert!(
        matches!(&other_room, Commit::New(m) if m.seq == 1),
        "seq is per room"
    );
    assert!(matches!(
        store
            .commit_message(&new_message(&room("nowhere"), &alice, "x", "x"))
            .await,
        Err(StoreError::NotFound("room"))
    ));

    // keyset pagination
    for i in 3..=7 {
        store
            .commit_message(&new_message(
                &lobby.id,
                &carol,
                &format!("c{i}"),
                &format!("m{i}"),
            ))
            .await
            .expect("commit");
    }
    let latest = store
        .history(&lobby.id, &query(HistoryCursor::Latest, 3), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&latest), latest.has_more), (vec![5, 6, 7], true));
    let back = store
        .history(&lobby.id, &query(HistoryCursor::Before(5), 3), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&back), back.has_more), (vec![2, 3, 4], true));
    let first = store
        .history(&lobby.id, &query(HistoryCursor::Before(2), 3), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&first), first.has_more), (vec![1], false));
    let after = store
        .history(&lobby.id, &query(HistoryCursor::After(0), 5), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&after), after.has_more), (vec![1, 2, 3, 4, 5], true));
    let tail = store
        .history(&lobby.id, &query(HistoryCursor::After(5), 5), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&tail), tail.has_more), (vec![6, 7], false));
    let none = store
        .history(&lobby.id, &query(HistoryCursor::After(7), 5), "u-viewer")
        .await
        .expect("history");
    assert_eq!((seqs(&none), none.has_more), (vec![], false));
    assert_eq!(
        latest.messages[2].body.as_ref().map(|b| b.as_str()),
        Some("m7")
    );
    assert_eq!(latest.messages[0].room, lobby.id);
    assert!(matches!(
        store
            .history(
                &room("nowhere"),
                &query(HistoryCursor::Latest, 3),
                "u-viewer"
            )
            .await,
        Err(StoreError::NotFound("room"))
    ));
    let empty = store
        .history(&secret.id, &query(HistoryCursor::Latest, 3), "u-viewer")
        .await
        .expect("empty room");
    assert_eq!(empty, Default::default());

    // concurrent senders: every commit gets its own seq, with no gap and no repeat
    let busy = public_room("busy");
    store.create_room(&busy, &alice).await.expect("create");
    let senders: Vec<UserRef> = (0..20).map(|i| user(&format!("s{i}"))).collect();
    let msgs: Vec<NewMessage> = senders
        .iter()
        .map(|s| new_message(&busy.id, s, "m", "hi"))
        .collect();
    let commits = join_all(msgs.iter().map(|m| store.commit_message(m))).await;
    let mut got: Vec<i64> = commits
        .into_iter()
        .map(|c| match c.expect("concurrent commit") {
            Commit::New(m) => m.seq,
            Commit::Duplicate(m) => panic!("distinct senders are not duplicates: {m:?}"),
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());

    // concurrent replays of one send: one message, one seq
    let retry = new_message(&busy.id, &alice, "retry-1", "once");
    let replays = join_all((0..6).map(|_| store.commit_message(&retry))).await;
    let stored: Vec<_> = replays.into_iter().map(|c| c.expect("replay")).collect();
    assert_eq!(
        stored
            .iter()
            .filter(|c| matches!(c, Commit::New(_)))
            .count(),
        1
    );
    assert!(stored.iter().all(|c| c.message() == stored[0].message()));
    assert_eq!(stored[0].message().seq, 21);

    // visible rooms: public rooms for everybody, private ones for members, by id, bounded
    let ids = |rooms: Vec<Room>| {
        rooms
            .into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.visible_rooms(&carol.id, 100).await.expect("visible")),
        vec!["busy", "irc-style", "lobby"]
    );
    assert_eq!(
        ids(store.visible_rooms(&bob.id, 100).await.expect("visible")),
        vec!["busy", "irc-style", "lobby", "secret"]
    );
    assert_eq!(
        ids(store.visible_rooms(&alice.id, 2).await.expect("visible")),
        vec!["busy", "irc-style"]
    );
    let listed = store.visible_rooms(&alice.id, 100).await.expect("visible");
    let s = listed
        .iter()
        .find(|r| r.id == secret.id)
        .expect("secret listed");
    assert!(s.private);
    assert_eq!(s.name, secret.name);
}
