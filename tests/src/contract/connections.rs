//! The `ConnectionStore` contract.

use super::*;

async fn members_of(store: &dyn ConnectionStore, r: &RoomId, page: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .room_members(r, cursor.as_deref(), page)
            .await
            .expect("room members");
        assert!(p.members.len() <= page as usize, "page larger than asked");
        // The id pages fan-out reads are the same pages, cursor for cursor.
        let ids = store
            .room_member_ids(r, cursor.as_deref(), page)
            .await
            .expect("room member ids");
        let want: Vec<String> = p.members.into_iter().map(|m| m.connection_id).collect();
        assert_eq!(ids.connection_ids, want, "member ids page");
        assert_eq!(ids.next, p.next, "member ids cursor");
        out.extend(want);
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

    // a member is listed until its connection expires, and not after
    let brief = room("brief");
    let mut short = connection("short");
    short.expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(2);
    store.put_connection(&short).await.expect("put");
    store.join_room(&short, &brief).await.expect("join");
    assert_eq!(members_of(store, &brief, 10).await, vec![short.id.clone()]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        members_of(store, &brief, 10).await.is_empty(),
        "an expired connection is not a member"
    );
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

    user_sessions(store).await;
    removed_from_room(store).await;
}

/// A member removed from a room: every connection of that user leaves it, at once; other
/// users' connections and the user's other rooms stay.
async fn removed_from_room(store: &dyn ConnectionStore) {
    let name = format!("rex{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (r, other_room) = (room("club"), room("elsewhere"));
    let tabs = [connection(&name), connection(&name), connection(&name)];
    let stranger = connection("stranger");
    for c in tabs.iter().chain([&stranger]) {
        store.put_connection(c).await.expect("put");
    }
    // Two tabs joined the room, the third did not; one tab is also elsewhere.
    for c in &tabs[..2] {
        store.join_room(c, &r).await.expect("join");
    }
    store.join_room(&tabs[0], &other_room).await.expect("join");
    store.join_room(&stranger, &r).await.expect("join");
    let user_id = tabs[0].user.id.clone();
    let mut all: Vec<String> = tabs.iter().map(|c| c.id.clone()).collect();
    all.sort();
    user_connections_settled(store, &user_id, &all).await;

    let mut left = store
        .leave_room_for_user(&user_id, &r)
        .await
        .expect("leave for user");
    left.sort();
    let mut joined: Vec<String> = tabs[..2].iter().map(|c| c.id.clone()).collect();
    joined.sort();
    assert_eq!(left, joined, "the connections that had joined left");
    for c in &tabs {
        assert!(!store.is_member(&c.id, &r).await.expect("member?"));
    }
    assert!(
        store
            .is_member(&tabs[0].id, &other_room)
            .await
            .expect("member?")
    );
    assert!(store.is_member(&stranger.id, &r).await.expect("member?"));
    let members = store.room_members(&r, None, 100).await.expect("members");
    let ids: Vec<&str> = members
        .members
        .iter()
        .map(|m| m.connection_id.as_str())
        .collect();
    assert_eq!(
        ids,
        vec![stranger.id.as_str()],
        "fan-out reaches only the stranger"
    );
    assert!(
        store
            .leave_room_for_user(&user_id, &r)
            .await
            .expect("again")
            .is_empty(),
        "nothing left to leave"
    );
}

/// The user's connections once they equal `expected`, or what they are after 5 s: the
/// DynamoDB index is eventually consistent, so a write shows there a moment later.
async fn user_connections_settled(
    store: &dyn ConnectionStore,
    user_id: &str,
    expected: &[String],
) -> Vec<String> {
    let mut found = Vec::new();
    for _ in 0..50 {
        found = store
            .user_connections(user_id)
            .await
            .expect("user connections");
        if found == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    found
}

/// A user's connections (the user index) and token revocation markers.
async fn user_sessions(store: &dyn ConnectionStore) {
    // A user name of its own: the suite's other connections must not count.
    let name = format!("dora{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let tabs = [connection(&name), connection(&name)];
    for c in &tabs {
        store.put_connection(c).await.expect("put");
    }
    store
        .put_connection(&connection("someone-else"))
        .await
        .expect("put");
    let user_id = tabs[0].user.id.clone();
    let mut expected: Vec<String> = tabs.iter().map(|c| c.id.clone()).collect();
    expected.sort();
    assert_eq!(
        user_connections_settled(store, &user_id, &expected).await,
        expected
    );
    store.remove_connection(&tabs[0].id).await.expect("remove");
    let left = [tabs[1].id.clone()];
    assert_eq!(user_connections_settled(store, &user_id, &left).await, left);
    assert!(
        store
            .user_connections("u-nobody")
            .await
            .expect("none")
            .is_empty()
    );

    // Markers: none at first; the later of two holds; an expired one is gone.
    assert_eq!(
        store.tokens_revoked_before(&user_id).await.expect("read"),
        None
    );
    let now = OffsetDateTime::now_utc();
    let until = now + time::Duration::minutes(20);
    // (marker written, marker in force): a marker never moves back.
    for (written, in_force) in [(2_000, 2_000), (1_000, 2_000), (3_000, 3_000)] {
        store
            .revoke_tokens_before(&user_id, written, until)
            .await
            .expect("revoke");
        assert_eq!(
            store.tokens_revoked_before(&user_id).await.expect("read"),
            Some(in_force),
            "after writing {written}"
        );
    }
    let other = format!("u-{name}-gone");
    store
        .revoke_tokens_before(&other, 3_000, now - time::Duration::seconds(5))
        .await
        .expect("revoke");
    assert_eq!(
        store.tokens_revoked_before(&other).await.expect("read"),
        None,
        "a marker past its keep-until is not in force"
    );
}
