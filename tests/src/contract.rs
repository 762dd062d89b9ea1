//! Contract suites: the behaviour every adapter of a port must show. Each suite runs against
//! the in-memory adapter and the real one (DynamoDB-compatible server, PostgreSQL).

use std::collections::BTreeSet;

use futures::future::join_all;
use hubbub_core::error::StoreError;
use hubbub_core::protocol::{
    ClientMsgId, HistoryCursor, HistoryQuery, MessageBody, RoomId, UserRef,
};
use hubbub_core::store::{
    AttemptStore, Commit, Connection, ConnectionStore, HistoryStore, NewMessage, NewRefreshToken,
    Room, RoomAccess, Rotation, UserRecord, UserStore,
};
use time::OffsetDateTime;

/// A room id from a literal.
pub fn room(id: &str) -> RoomId {
    RoomId::parse(id).expect("valid room id")
}

/// A user from a name (`u-{name}` as id).
pub fn user(name: &str) -> UserRef {
    UserRef {
        id: format!("u-{name}"),
        name: name.to_owned(),
    }
}

/// A connection opened now, with a unique id.
pub fn connection(name: &str) -> Connection {
    // Millisecond precision: what every adapter can store.
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .expect("ms");
    Connection::new(
        format!("{}=", &uuid::Uuid::new_v4().simple().to_string()[..11]),
        user(name),
        now,
    )
}

async fn members_of(store: &dyn ConnectionStore, r: &RoomId, page: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .room_members(r, cursor.as_deref(), page)
            .await
            .expect("room members");
        assert!(p.members.len() <= page as usize, "page larger than asked");
        out.extend(p.members.into_iter().map(|m| m.connection_id));
        match p.next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
}

/// The `ConnectionStore` contract.
pub async fn connection_store(store: &dyn ConnectionStore) {
    let general = room("general");

    // put / get
    let alice = connection("alice");
    store.put_connection(&alice).await.expect("put");
    let got = store
        .get_connection(&alice.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.id, alice.id);
    assert_eq!(got.user, alice.user);
    assert_eq!(got.connected_at, alice.connected_at);
    assert_eq!(
        got.expires_at.unix_timestamp(),
        alice.expires_at.unix_timestamp()
    );
    assert!(store.get_connection("nope=").await.expect("get").is_none());

    // join is idempotent and reports whether it was new
    assert!(store.join_room(&alice, &general).await.expect("join"));
    assert!(!store.join_room(&alice, &general).await.expect("join again"));
    assert!(store.is_member(&alice.id, &general).await.expect("member"));
    assert!(
        !store
            .is_member(&alice.id, &room("other"))
            .await
            .expect("member")
    );

    // an unknown or expired connection cannot join
    let ghost = connection("ghost");
    assert!(matches!(
        store.join_room(&ghost, &general).await,
        Err(StoreError::NotFound("connection"))
    ));
    let mut expired = connection("late");
    expired.expires_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    store.put_connection(&expired).await.expect("put expired");
    assert!(
        store
            .get_connection(&expired.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(matches!(
        store.join_room(&expired, &general).await,
        Err(StoreError::NotFound("connection"))
    ));

    // paginated members: every member exactly once, pages bounded
    let big = room("big");
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let c = connection(&format!("m{i}"));
        store.put_connection(&c).await.expect("put");
        store.join_room(&c, &big).await.expect("join");
        want.insert(c.id);
    }
    let got = members_of(store, &big, 3).await;
    assert_eq!(got.len(), 7, "no member twice: {got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(members_of(store, &room("empty"), 3).await.is_empty());
    let page = store
        .room_members(&general, None, 10)
        .await
        .expect("members");
    assert_eq!(page.members.len(), 1);
    assert_eq!(page.members[0].user, alice.user, "members carry the user");

    // leave
    assert!(store.leave_room(&alice.id, &general).await.expect("leave"));
    assert!(
        !store
            .leave_room(&alice.id, &general)
            .await
            .expect("leave again")
    );
    assert!(!store.is_member(&alice.id, &general).await.expect("member"));
    assert!(members_of(store, &general, 10).await.is_empty());

    // remove: the connection and every membership, more than one batch's worth
    let bob = connection("bob");
    store.put_connection(&bob).await.expect("put");
    let mut rooms = BTreeSet::new();
    for i in 0..30 {
        let r = room(&format!("r{i:02}"));
        store.join_room(&bob, &r).await.expect("join");
        rooms.insert(r);
    }
    let removed: BTreeSet<RoomId> = store
        .remove_connection(&bob.id)
        .await
        .expect("remove")
        .into_iter()
        .collect();
    assert_eq!(removed, rooms);
    assert!(store.get_connection(&bob.id).await.expect("get").is_none());
    for r in &rooms {
        assert!(!store.is_member(&bob.id, r).await.expect("member"));
        assert!(members_of(store, r, 10).await.is_empty());
    }
    assert!(
        store
            .remove_connection(&bob.id)
            .await
            .expect("remove twice")
            .is_empty()
    );
    assert!(
        store
            .remove_connection("never=")
            .await
            .expect("remove unknown")
            .is_empty()
    );
}

fn new_message(r: &RoomId, sender: &UserRef, cmid: &str, body: &str) -> NewMessage {
    NewMessage {
        room: r.clone(),
        sender: sender.clone(),
        body: MessageBody::parse(body).expect("body"),
        client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
    }
}

fn public_room(id: &str) -> Room {
    Room {
        id: room(id),
        name: format!("Room {id}"),
        private: false,
        created_at: OffsetDateTime::now_utc(),
    }
}

/// A private room `id` named "Secret", created now.
pub fn private_room(id: &str) -> Room {
    Room {
        private: true,
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
    store.create_room(&lobby, &alice).await.expect("create");
    let got = store
        .get_room(&lobby.id)
        .await
        .expect("get")
        .expect("exists");
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
    let secret = Room {
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
    assert_eq!((m1.seq, m1.body.as_str(), &m1.sender), (1, "one", &alice));
    let dup = store
        .commit_message(&new_message(&lobby.id, &alice, "a1", "one, retried"))
        .await
        .expect("replay");
    assert_eq!(
        dup,
        Commit::Duplicate(m1.clone()),
        "a replay returns the first commit"
    );
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
        .history(&lobby.id, &query(HistoryCursor::Latest, 3))
        .await
        .expect("history");
    assert_eq!((seqs(&latest), latest.has_more), (vec![5, 6, 7], true));
    let back = store
        .history(&lobby.id, &query(HistoryCursor::Before(5), 3))
        .await
        .expect("history");
    assert_eq!((seqs(&back), back.has_more), (vec![2, 3, 4], true));
    let first = store
        .history(&lobby.id, &query(HistoryCursor::Before(2), 3))
        .await
        .expect("history");
    assert_eq!((seqs(&first), first.has_more), (vec![1], false));
    let after = store
        .history(&lobby.id, &query(HistoryCursor::After(0), 5))
        .await
        .expect("history");
    assert_eq!((seqs(&after), after.has_more), (vec![1, 2, 3, 4, 5], true));
    let tail = store
        .history(&lobby.id, &query(HistoryCursor::After(5), 5))
        .await
        .expect("history");
    assert_eq!((seqs(&tail), tail.has_more), (vec![6, 7], false));
    let none = store
        .history(&lobby.id, &query(HistoryCursor::After(7), 5))
        .await
        .expect("history");
    assert_eq!((seqs(&none), none.has_more), (vec![], false));
    assert_eq!(latest.messages[2].body.as_str(), "m7");
    assert_eq!(latest.messages[0].room, lobby.id);
    assert!(matches!(
        store
            .history(&room("nowhere"), &query(HistoryCursor::Latest, 3))
            .await,
        Err(StoreError::NotFound("room"))
    ));
    let empty = store
        .history(&secret.id, &query(HistoryCursor::Latest, 3))
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

/// Now, at the microsecond precision every adapter keeps.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .expect("micros")
}

fn account(name: &str) -> UserRecord {
    UserRecord {
        id: format!("id-{name}-{}", uuid::Uuid::new_v4().simple()),
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        created_at: now_micros(),
    }
}

fn token(
    hash: &str,
    user: &UserRecord,
    family: uuid::Uuid,
    ttl: time::Duration,
) -> NewRefreshToken {
    NewRefreshToken {
        hash: hash.to_owned(),
        user_id: user.id.clone(),
        family,
        expires_at: now_micros() + ttl,
    }
}

/// The `UserStore` contract.
pub async fn user_store(store: &dyn UserStore) {
    let hour = time::Duration::hours(1);
    let later = || now_micros() + time::Duration::days(30);

    // accounts
    let alice = account("alice");
    store.create_user(&alice).await.expect("create");
    assert!(matches!(
        store.create_user(&account("alice")).await,
        Err(StoreError::Conflict("user"))
    ));
    assert_eq!(
        store.user_by_name("alice").await.expect("by name"),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_name("Alice").await.expect("by name"), None);
    assert_eq!(
        store.user_by_id(&alice.id).await.expect("by id"),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_id("nobody").await.expect("by id"), None);
    let bob = account("bob");
    store.create_user(&bob).await.expect("create bob");

    // rotation within a family
    let fam = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("h1", &alice, fam, hour))
        .await
        .expect("put");
    assert!(matches!(
        store
            .put_refresh_token(&token("h1", &bob, uuid::Uuid::new_v4(), hour))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let rotated = |user: &UserRecord, family| Rotation::Rotated {
        user_id: user.id.clone(),
        family,
    };
    assert_eq!(
        store
            .rotate_refresh_token("h1", "h2", later(), now_micros())
            .await
            .expect("rotate"),
        rotated(&alice, fam)
    );
    assert_eq!(
        store
            .rotate_refresh_token("h2", "h3", later(), now_micros())
            .await
            .expect("rotate"),
        rotated(&alice, fam)
    );
    // reuse of a spent token revokes the family, successors included
    assert_eq!(
        store
            .rotate_refresh_token("h1", "h4", later(), now_micros())
            .await
            .expect("reuse"),
        Rotation::Reused {
            user_id: alice.id.clone(),
            family: fam
        }
    );
    for (presented, next) in [("h3", "h5"), ("h4", "h6"), ("h1", "h7"), ("unknown", "h8")] {
        assert_eq!(
            store
                .rotate_refresh_token(presented, next, later(), now_micros())
                .await
                .expect("rotate"),
            Rotation::Invalid,
            "{presented}"
        );
    }

    // expiry
    let old = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("e1", &bob, old, time::Duration::seconds(-1)))
        .await
        .expect("put expired");
    assert_eq!(
        store
            .rotate_refresh_token("e1", "e2", later(), now_micros())
            .await
            .expect("rotate"),
        Rotation::Invalid
    );

    // logout revokes the family
    let fam2 = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("l1", &bob, fam2, hour))
        .await
        .expect("put");
    assert_eq!(
        store
            .rotate_refresh_token("l1", "l2", later(), now_micros())
            .await
            .expect("rotate"),
        rotated(&bob, fam2)
    );
    assert!(store.revoke_refresh_family("l2").await.expect("revoke"));
    assert!(
        store
            .revoke_refresh_family("l2")
            .await
            .expect("revoke twice")
    );
    assert!(
        !store
            .revoke_refresh_family("nope")
            .await
            .expect("revoke unknown")
    );
    for presented in ["l2", "l1"] {
        assert_eq!(
            store
                .rotate_refresh_token(
                    presented,
                    &format!("{presented}-next"),
                    later(),
                    now_micros()
                )
                .await
                .expect("rotate"),
            Rotation::Invalid,
            "{presented} after logout"
        );
    }
    // another family of the same user is untouched
    let fam3 = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("o1", &bob, fam3, hour))
        .await
        .expect("put");
    assert_eq!(
        store
            .rotate_refresh_token("o1", "o2", later(), now_micros())
            .await
            .expect("rotate"),
        rotated(&bob, fam3)
    );

    // concurrent presentations of one token: exactly one rotates; the others are refused
    // (the first refusal revokes the family, so later ones find it revoked)
    let fam4 = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("c1", &alice, fam4, hour))
        .await
        .expect("put");
    let successors: Vec<String> = (0..6).map(|i| format!("c1-next-{i}")).collect();
    let results = join_all(
        successors
            .iter()
            .map(|next| store.rotate_refresh_token("c1", next, later(), now_micros())),
    )
    .await;
    let results: Vec<Rotation> = results.into_iter().map(|r| r.expect("rotate")).collect();
    let winners: Vec<usize> = (0..results.len())
        .filter(|&i| matches!(results[i], Rotation::Rotated { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results.iter().any(|r| matches!(r, Rotation::Reused { .. })),
        "{results:?}"
    );
    // the reuse revoked the family: the winner's successor is dead too
    assert_eq!(
        store
            .rotate_refresh_token(&successors[winners[0]], "c1-after", later(), now_micros())
            .await
            .expect("rotate"),
        Rotation::Invalid
    );
}

/// The `AttemptStore` contract.
pub async fn attempt_store(store: &dyn AttemptStore) {
    let minute = time::Duration::minutes(1);
    let t0 = now_micros();
    let key = format!("user:alice-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(store.attempts(&key, t0).await.expect("read").count, 0);
    let a = store
        .record_failure(&key, minute, t0)
        .await
        .expect("record");
    assert_eq!((a.count, a.window_ends), (1, t0 + minute));
    let b = store
        .record_failure(&key, minute, t0 + time::Duration::seconds(1))
        .await
        .expect("record");
    assert_eq!((b.count, b.window_ends), (2, t0 + minute), "same window");
    let read = store
        .attempts(&key, t0 + time::Duration::seconds(2))
        .await
        .expect("read");
    assert_eq!((read.count, read.window_ends), (2, t0 + minute));
    assert_eq!(
        store
            .attempts("ip:198.51.100.1", t0)
            .await
            .expect("read")
            .count,
        0,
        "keys are independent"
    );
    // the window ends: the count starts again
    let after = t0 + minute + time::Duration::seconds(1);
    assert_eq!(store.attempts(&key, after).await.expect("read").count, 0);
    let c = store
        .record_failure(&key, minute, after)
        .await
        .expect("record");
    assert_eq!((c.count, c.window_ends), (1, after + minute));
    store.clear(&key).await.expect("clear");
    assert_eq!(store.attempts(&key, after).await.expect("read").count, 0);
    store.clear(&key).await.expect("clear twice");

    // concurrent failures are all counted
    let busy = format!("ip:{}", uuid::Uuid::new_v4().simple());
    let now = now_micros();
    let results = join_all((0..10).map(|_| store.record_failure(&busy, minute, now))).await;
    let mut counts: Vec<u32> = results
        .into_iter()
        .map(|r| r.expect("record").count)
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>());
    assert_eq!(store.attempts(&busy, now).await.expect("read").count, 10);
}
