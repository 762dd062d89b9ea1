//! The `PeopleStore` contract: roles, direct rooms, read state and the paged room list.

use hubbub_core::people::direct_room_id;
use hubbub_core::store::{Change, NewChange, Role, RoomKind};

use super::*;

fn new_message(r: &RoomId, sender: &UserRef, cmid: &str) -> NewMessage {
    NewMessage {
        room: r.clone(),
        sender: sender.clone(),
        body: MessageBody::parse("hi").expect("body"),
        client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
        reply_to: None,
    }
}

async fn delete(
    store: &dyn HistoryStore,
    r: &RoomId,
    who: &UserRef,
    target: i64,
    cmid: &str,
) -> Result<Commit, StoreError> {
    store
        .commit_change(&NewChange {
            room: r.clone(),
            actor: who.clone(),
            target,
            change: Change::Delete,
            client_msg_id: ClientMsgId::parse(cmid).expect("cmid"),
        })
        .await
}

fn public(id: &str) -> NewRoom {
    NewRoom::new(room(id), id.to_owned(), false)
}

/// The `PeopleStore` contract (through the history store it is part of).
pub async fn people_store(store: &dyn HistoryStore) {
    roles(store).await;
    direct_rooms(store).await;
    read_state(store).await;
    room_list(store).await;
}

async fn roles(store: &dyn HistoryStore) {
    let (ann, bob, cat) = (user("ann"), user("bob"), user("cat"));
    let club = room("club");
    let made = store
        .create_room(&NewRoom::new(club.clone(), "Club".into(), true), &ann)
        .await
        .expect("create");
    assert!(made.read_receipts, "private rooms have receipts by default");
    assert_eq!(made.kind, RoomKind::Room);
    assert_eq!(
        store.member_role(&club, &ann.id).await.expect("role"),
        Some(Role::Owner),
        "the creator owns a private room"
    );
    assert_eq!(store.member_role(&club, &bob.id).await.expect("role"), None);
    store
        .put_member(&club, &bob.id, Some("bob"))
        .await
        .expect("add bob");
    store
        .put_member(&club, &cat.id, None)
        .await
        .expect("add cat");
    // Idempotent, and a repeat without a name keeps the name.
    store.put_member(&club, &bob.id, None).await.expect("again");
    assert_eq!(
        store.member_role(&club, &bob.id).await.expect("role"),
        Some(Role::Member)
    );
    let listed = store.member_list(&club, None, 10).await.expect("list");
    let view: Vec<(&str, Option<&str>, Role)> = listed
        .iter()
        .map(|m| (m.user_id.as_str(), m.name.as_deref(), m.role))
        .collect();
    assert_eq!(
        view,
        vec![
            ("u-ann", Some("ann"), Role::Owner),
            ("u-bob", Some("bob"), Role::Member),
            ("u-cat", None, Role::Member),
        ]
    );
    let page = store
        .member_list(&club, Some("u-ann"), 1)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].user_id, "u-bob", "pages continue after the key");
    assert!(matches!(
        store.put_member(&room("nowhere"), &bob.id, None).await,
        Err(StoreError::NotFound("room"))
    ));

    // Ownership is one record: the owner members. A member may not delete another's message.
    for (who, cmid) in [(&ann, "a1"), (&bob, "b1")] {
        store
            .commit_message(&new_message(&club, who, cmid))
            .await
            .expect("send");
    }
    assert!(matches!(
        delete(store, &club, &bob, 1, "b-del-1").await,
        Err(StoreError::Forbidden(_))
    ));

    // Removal: the member is gone and the private room refuses them.
    let gone = store
        .remove_member(&club, &cat.id)
        .await
        .expect("remove")
        .expect("was a member");
    assert_eq!((gone.user_id.as_str(), gone.role), ("u-cat", Role::Member));
    assert_eq!(
        store.room_access(&club, &cat.id).await.expect("access"),
        RoomAccess::Denied
    );
    assert_eq!(
        store.remove_member(&club, &cat.id).await.expect("again"),
        None
    );
    // The last owner leaving hands the room to the longest-standing member.
    let owner = store
        .remove_member(&club, &ann.id)
        .await
        .expect("remove")
        .expect("was a member");
    assert_eq!(owner.role, Role::Owner);
    assert_eq!(
        store.member_role(&club, &bob.id).await.expect("role"),
        Some(Role::Owner)
    );
    // The owner's powers went with the role: the new owner deletes the creator's message, the
    // creator (no longer an owner) may not delete the new owner's.
    assert!(matches!(
        delete(store, &club, &ann, 2, "a-del-2").await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        delete(store, &club, &bob, 1, "b-del-1b").await,
        Ok(Commit::New(_))
    ));
    assert_eq!(
        store
            .remove_member(&room("nowhere"), &bob.id)
            .await
            .expect("missing"),
        None
    );
}

async fn direct_rooms(store: &dyn HistoryStore) {
    let (dee, eli, fay) = (user("dee"), user("eli"), user("fay"));
    let id = direct_room_id(&dee.id, &eli.id).expect("id");
    // Concurrent opens from both sides converge on one room, created once.
    let opens = join_all([
        store.open_direct(&id, &dee, &eli, 100),
        store.open_direct(&id, &eli, &dee, 100),
    ])
    .await;
    let created: Vec<bool> = opens.iter().map(|o| o.as_ref().expect("open").1).collect();
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    let (direct, _) = opens[0].as_ref().expect("open").clone();
    assert_eq!(direct.kind, RoomKind::Direct);
    assert!(direct.private && direct.read_receipts);
    for u in [&dee, &eli] {
        assert_eq!(
            store.member_role(&id, &u.id).await.expect("role"),
            Some(Role::Member),
            "nobody owns a direct room"
        );
    }
    assert_eq!(
        store.room_access(&id, &fay.id).await.expect("access"),
        RoomAccess::Denied
    );
    let (again, fresh) = store
        .open_direct(&id, &dee, &eli, 100)
        .await
        .expect("reopen");
    assert!(!fresh);
    assert_eq!(again, direct);
    // Each side sees the other as the peer.
    for (me, peer) in [(&dee, &eli), (&eli, &dee)] {
        let list = store.room_list(&me.id, None, 100).await.expect("list");
        let entry = list.iter().find(|e| e.room.id == id).expect("listed");
        assert_eq!(entry.peer.as_ref(), Some(peer));
    }
    // An id taken by another room, or by another pair, is a conflict.
    let taken = room("dm-taken");
    store
        .create_room(&public("dm-taken"), &fay)
        .await
        .expect("create");
    assert!(matches!(
        store.open_direct(&taken, &dee, &eli, 100).await,
        Err(StoreError::Conflict("room"))
    ));
    assert!(matches!(
        store.open_direct(&id, &dee, &fay, 100).await,
        Err(StoreError::Conflict("room"))
    ));
    // Counted against the opener's rooms created.
    let other = direct_room_id(&fay.id, &eli.id).expect("id");
    assert!(matches!(
        store.open_direct(&other, &fay, &eli, 1).await,
        Err(StoreError::LimitExceeded(_))
    ));
    assert!(store.get_room(&other).await.expect("get").is_none());
}

async fn read_state(store: &dyn HistoryStore) {
    let gus = user("gus");
    let r = room("reading");
    store
        .create_room(&public("reading"), &gus)
        .await
        .expect("create");
    let first = store.mark_read(&r, &gus.id, 0).await.expect("mark");
    assert_eq!(
        (first.last_read, first.last_seq, first.moved),
        (0, 0, false)
    );
    for i in 0..5 {
        store
            .commit_message(&new_message(&r, &gus, &format!("m{i}")))
            .await
            .expect("commit");
    }
    let m = store.mark_read(&r, &gus.id, 3).await.expect("mark");
    assert_eq!(
        (m.last_read, m.last_seq, m.moved, m.unread()),
        (3, 5, true, 2)
    );
    let back = store.mark_read(&r, &gus.id, 1).await.expect("mark");
    assert_eq!((back.last_read, back.moved), (3, false), "never backwards");
    let same = store.mark_read(&r, &gus.id, 3).await.expect("mark");
    assert!(!same.moved);
    let past = store.mark_read(&r, &gus.id, 99).await.expect("mark");
    assert_eq!(
        (past.last_read, past.moved, past.unread()),
        (5, true, 0),
        "clamped to the last seq"
    );
    // Per user: another reader starts at zero.
    let other = store.mark_read(&r, "u-hal", 0).await.expect("mark");
    assert_eq!((other.last_read, other.unread()), (0, 5));
    assert!(matches!(
        store.mark_read(&room("nowhere"), &gus.id, 1).await,
        Err(StoreError::NotFound("room"))
    ));
    // Concurrent marks end at the highest.
    let marks = [2_i64, 5, 4, 1].map(|s| store.mark_read(&r, "u-ida", s));
    join_all(marks).await;
    assert_eq!(
        store
            .mark_read(&r, "u-ida", 0)
            .await
            .expect("read")
            .last_read,
        5
    );
}

async fn room_list(store: &dyn HistoryStore) {
    let (kim, lou) = (user("kim"), user("lou"));
    let names = ["pa", "pb", "pc", "pd"];
    for n in names {
        store.create_room(&public(n), &kim).await.expect("create");
    }
    store
        .create_room(&NewRoom::new(room("pe"), "Mine".into(), true), &kim)
        .await
        .expect("private");
    store
        .commit_message(&new_message(&room("pb"), &kim, "x1"))
        .await
        .expect("commit");
    store
        .commit_message(&new_message(&room("pb"), &kim, "x2"))
        .await
        .expect("commit");
    store
        .mark_read(&room("pb"), &lou.id, 1)
        .await
        .expect("mark");

    // Pages by id, from after the cursor, never a private room of others.
    let mut seen = Vec::new();
    let mut after: Option<RoomId> = Some(room("p"));
    loop {
        let page = store
            .room_list(&lou.id, after.as_ref(), 2)
            .await
            .expect("page");
        let ids: Vec<String> = page
            .iter()
            .map(|e| e.room.id.to_string())
            .filter(|id| id.starts_with('p'))
            .collect();
        seen.extend(ids);
        match page.last() {
            Some(last) if page.len() == 2 && last.room.id.as_str() < "pz" => {
                after = Some(last.room.id.clone());
            }
            _ => break,
        }
    }
    assert_eq!(seen, vec!["pa", "pb", "pc", "pd"]);
    let lous = store
        .room_list(&lou.id, Some(&room("pa")), 1)
        .await
        .expect("list");
    let pb = &lous[0];
    assert_eq!(pb.room.id, room("pb"));
    assert_eq!(
        (pb.last_seq, pb.last_read, pb.unread(), pb.role),
        (2, 1, 1, None)
    );
    let kims = store
        .room_list(&kim.id, Some(&room("pd")), 1)
        .await
        .expect("list");
    assert_eq!(kims[0].room.id, room("pe"));
    assert_eq!(kims[0].role, Some(Role::Owner));
    assert_eq!(kims[0].unread(), 0);
}
