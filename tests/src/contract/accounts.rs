//! The `UserStore` and `AttemptStore` contracts: accounts, refresh tokens, login attempts.

use super::*;

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
    // One account whatever the case: found by any spelling, and no second one under another.
    assert_eq!(
        store.user_by_name("ALICE").await.expect("by name"),
        Some(alice.clone())
    );
    assert!(matches!(
        store.create_user(&account("Alice")).await,
        Err(StoreError::Conflict("user"))
    ));
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
    // Revoking answers whose login it was (its user's sessions are then ended).
    assert_eq!(
        store.revoke_refresh_family("l2").await.expect("revoke"),
        Some(bob.id.clone())
    );
    assert_eq!(
        store
            .revoke_refresh_family("l2")
            .await
            .expect("revoke twice"),
        Some(bob.id.clone())
    );
    assert_eq!(
        store
            .revoke_refresh_family("nope")
            .await
            .expect("revoke unknown"),
        None
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

    // pruning: expired tokens go (with families left empty), live ones stay
    let old_family = uuid::Uuid::new_v4();
    store
        .put_refresh_token(&token("p-old", &bob, old_family, -hour))
        .await
        .expect("put expired");
    store
        .put_refresh_token(&token("p-live", &bob, uuid::Uuid::new_v4(), hour))
        .await
        .expect("put live");
    let pruned = store
        .prune_refresh_tokens(now_micros())
        .await
        .expect("prune");
    assert!(pruned >= 1, "{pruned}");
    assert_eq!(
        store
            .prune_refresh_tokens(now_micros())
            .await
            .expect("prune"),
        0,
        "nothing left to prune"
    );
    let kept = store
        .rotate_refresh_token("p-live", "p-live-next", later(), now_micros())
        .await
        .expect("rotate");
    assert!(
        matches!(&kept, Rotation::Rotated { user_id, .. } if *user_id == bob.id),
        "a live token survives pruning: {kept:?}"
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

    // forgiving takes back one count; the key goes at zero
    store.forgive(&busy).await.expect("forgive");
    assert_eq!(store.attempts(&busy, now).await.expect("read").count, 9);
    let once = format!("ip:{}", uuid::Uuid::new_v4().simple());
    store
        .record_failure(&once, minute, now)
        .await
        .expect("record");
    store.forgive(&once).await.expect("forgive");
    assert_eq!(store.attempts(&once, now).await.expect("read").count, 0);
    store.forgive(&once).await.expect("forgive an unknown key");
    let again = store
        .record_failure(&once, minute, now)
        .await
        .expect("record");
    assert_eq!(again.count, 1);

    // pruning removes ended windows only
    let ended = format!("ip:{}", uuid::Uuid::new_v4().simple());
    store
        .record_failure(&ended, minute, now - time::Duration::hours(1))
        .await
        .expect("record");
    assert!(store.prune(now).await.expect("prune") >= 1);
    assert_eq!(store.attempts(&busy, now).await.expect("read").count, 9);
    assert_eq!(store.prune(now).await.expect("prune"), 0);
}
