//! The abuse-limit part of the `ConnectionStore` contract: token buckets, the typing gate and
//! the cap on rooms joined, each atomic under concurrent callers (on AWS those are frames of
//! one connection handled by different Lambda environments at once).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use hubbub_core::limits::{self, Bucket, BucketKind, Take};

use super::*;

const BUCKET: Bucket = Bucket {
    rate_per_sec: 5,
    burst: 20,
};

async fn take(store: &dyn ConnectionStore, id: &str, kind: BucketKind, at: i64) -> Take {
    store
        .take_token(id, kind, BUCKET, at)
        .await
        .expect("take token")
}

async fn allowed_in_a_row(
    store: &dyn ConnectionStore,
    id: &str,
    kind: BucketKind,
    at: i64,
) -> usize {
    let mut n = 0;
    while take(store, id, kind, at).await == Take::Allowed {
        n += 1;
        assert!(n <= 1000, "the bucket never ran dry");
    }
    n
}

/// Whether the store under test applies each conditional write atomically, as DynamoDB and
/// the in-memory adapter do. moto does not: it evaluates a condition and applies the write
/// without a lock in between, so two concurrent requests can both pass a condition that only
/// one would pass on DynamoDB (which documents conditional writes as atomic, and which the
/// adapter relies on). The concurrent assertions run only where the promise holds; every
/// sequential one runs everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomic {
    Yes,
    NotOnThisEmulator,
}

/// Token buckets, the typing gate and the join cap.
pub async fn connection_limits(store: Arc<dyn ConnectionStore>, atomic: Atomic) {
    let s = store.as_ref();
    let t0 = limits::now_ms();

    // A burst, then one token per interval; the refusal says how long to wait.
    let alice = connection("alice");
    s.put_connection(&alice).await.expect("put");
    assert_eq!(
        allowed_in_a_row(s, &alice.id, BucketKind::Send, t0).await,
        20
    );
    assert_eq!(
        take(s, &alice.id, BucketKind::Send, t0 + 50).await,
        Take::Limited {
            retry_after_ms: 150
        }
    );
    assert_eq!(
        take(s, &alice.id, BucketKind::Send, t0 + 200).await,
        Take::Allowed
    );
    assert!(matches!(
        take(s, &alice.id, BucketKind::Send, t0 + 200).await,
        Take::Limited { .. }
    ));
    // The other bucket and other connections are untouched.
    assert_eq!(
        allowed_in_a_row(s, &alice.id, BucketKind::Route, t0).await,
        20
    );
    let bob = connection("bob");
    s.put_connection(&bob).await.expect("put");
    assert_eq!(take(s, &bob.id, BucketKind::Send, t0).await, Take::Allowed);
    // A quiet spell refills to the burst, not beyond.
    assert_eq!(
        allowed_in_a_row(s, &alice.id, BucketKind::Send, t0 + 3_600_000).await,
        20
    );
    // A connection the store does not know is not limited here (its route refuses it).
    for _ in 0..30 {
        assert_eq!(take(s, "never=", BucketKind::Send, t0).await, Take::Allowed);
    }

    // Concurrent frames of one connection: exactly a burst gets through.
    if atomic == Atomic::Yes {
        let carol = connection("carol");
        s.put_connection(&carol).await.expect("put");
        let takes = join_all((0..40).map(|_| {
            let store = store.clone();
            let id = carol.id.clone();
            async move { take(store.as_ref(), &id, BucketKind::Send, t0).await }
        }))
        .await;
        let granted = takes.iter().filter(|t| **t == Take::Allowed).count();
        assert_eq!(granted, 20, "{takes:?}");
    }

    // Typing: one per user, room and interval.
    let lobby = room("lobby");
    let every = Duration::from_secs(3);
    let gate = |r: RoomId, u: &'static str, at: i64| {
        let store = store.clone();
        async move {
            store
                .typing_gate(&r, u, every, at)
                .await
                .expect("typing gate")
        }
    };
    assert!(gate(lobby.clone(), "u-alice", t0).await);
    assert!(!gate(lobby.clone(), "u-alice", t0 + 10).await);
    assert!(!gate(lobby.clone(), "u-alice", t0 + 2_999).await);
    assert!(gate(lobby.clone(), "u-bob", t0 + 10).await, "per user");
    assert!(gate(room("den"), "u-alice", t0 + 10).await, "per room");
    assert!(
        gate(lobby.clone(), "u-alice", t0 + 3_000).await,
        "after the interval"
    );
    if atomic == Atomic::Yes {
        let gates = join_all((0..10).map(|_| gate(lobby.clone(), "u-carol", t0))).await;
        assert_eq!(gates.iter().filter(|g| **g).count(), 1, "{gates:?}");
    }

    // Rooms joined per connection: the cap holds, re-joining is not an error, a leave makes room.
    let dave = connection("dave");
    s.put_connection(&dave).await.expect("put");
    for i in 0..3 {
        assert!(
            s.join_room_within(&dave, &room(&format!("cap{i}")), 3)
                .await
                .expect("join")
        );
    }
    let over = s.join_room_within(&dave, &room("cap3"), 3).await;
    assert!(
        matches!(over, Err(StoreError::LimitExceeded(m)) if m == limits::JOINED_TOO_MANY),
        "{over:?}"
    );
    assert!(!s.is_member(&dave.id, &room("cap3")).await.expect("member"));
    assert!(
        !s.join_room_within(&dave, &room("cap0"), 3)
            .await
            .expect("again")
    );
    assert!(s.leave_room(&dave.id, &room("cap0")).await.expect("leave"));
    assert!(
        !s.leave_room(&dave.id, &room("cap0"))
            .await
            .expect("leave again")
    );
    assert!(
        s.join_room_within(&dave, &room("cap3"), 3)
            .await
            .expect("join after a leave")
    );
    assert!(matches!(
        s.join_room_within(&dave, &room("cap0"), 3).await,
        Err(StoreError::LimitExceeded(_))
    ));
    // Concurrent joins of one connection cannot pass the cap.
    let erin = connection("erin");
    s.put_connection(&erin).await.expect("put");
    if atomic == Atomic::Yes {
        let joins = join_all((0..8).map(|i| {
            let store = store.clone();
            let erin = erin.clone();
            async move {
                store
                    .join_room_within(&erin, &room(&format!("race{i}")), 3)
                    .await
            }
        }))
        .await;
        let joined = joins.iter().filter(|j| matches!(j, Ok(true))).count();
        let refused = joins
            .iter()
            .filter(|j| matches!(j, Err(StoreError::LimitExceeded(_))))
            .count();
        assert_eq!((joined, refused), (3, 5), "{joins:?}");
    } else {
        for i in 0..3 {
            assert!(
                s.join_room_within(&erin, &room(&format!("race{i}")), 3)
                    .await
                    .expect("join")
            );
        }
    }
    // Removing the connection forgets its rooms; the cap does not apply to an unknown one.
    assert_eq!(
        s.remove_connection(&erin.id).await.expect("remove").len(),
        3
    );
    assert!(matches!(
        s.join_room_within(&erin, &room("race0"), 3).await,
        Err(StoreError::NotFound("connection"))
    ));
}

/// The cap on rooms created per user, kept by the history store: atomic with the creation,
/// per user, and a taken id is not counted.
pub async fn history_limits(store: Arc<dyn HistoryStore>) {
    let s = store.as_ref();
    let alice = user("alice");
    let public = |id: &str| NewRoom {
        id: room(id),
        name: id.to_owned(),
        private: false,
        read_receipts: false,
    };
    for i in 0..3 {
        s.create_room_within(&public(&format!("a{i}")), &alice, 3)
            .await
            .expect("under the cap");
    }
    let over = s.create_room_within(&public("a3"), &alice, 3).await;
    assert!(
        matches!(over, Err(StoreError::LimitExceeded(m)) if m == limits::CREATED_TOO_MANY),
        "{over:?}"
    );
    assert_eq!(
        s.get_room(&room("a3")).await.expect("get"),
        None,
        "not created"
    );
    // A taken id is a conflict, counted or not, and another user has a cap of their own.
    let bob = user("bob");
    assert!(matches!(
        s.create_room_within(&public("a0"), &bob, 3).await,
        Err(StoreError::Conflict(_))
    ));
    for i in 0..3 {
        s.create_room_within(&public(&format!("b{i}")), &bob, 3)
            .await
            .expect("bob's own cap");
    }
    // A raised cap lets the user go on.
    s.create_room_within(&public("a3"), &alice, 4)
        .await
        .expect("under the raised cap");

    // Concurrent creations by one user cannot pass the cap.
    let carol = user("carol");
    let made = join_all((0..8).map(|i| {
        let store = store.clone();
        let carol = carol.clone();
        let r = public(&format!("c{i}"));
        async move { store.create_room_within(&r, &carol, 3).await }
    }))
    .await;
    let ok = made.iter().filter(|m| m.is_ok()).count();
    let capped = made
        .iter()
        .filter(|m| matches!(m, Err(StoreError::LimitExceeded(_))))
        .count();
    assert_eq!((ok, capped), (3, 5), "{made:?}");
}
