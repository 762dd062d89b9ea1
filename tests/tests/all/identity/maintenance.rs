//! The scheduled clean-up deletes expired refresh tokens and ended failed-login counters, and
//! nothing that is still in use.

use ::maintenance::{MaintenanceDeps, Pruned};
use hubbub_core::store::memory::MemoryUserStore;
use hubbub_core::store::{NewRefreshToken, Rotation, UserRecord};
use time::{Duration, OffsetDateTime};

use super::*;

fn token(hash: &str, user: &str, expires_at: OffsetDateTime) -> NewRefreshToken {
    NewRefreshToken {
        hash: hash.into(),
        user_id: user.into(),
        family: uuid::Uuid::new_v4(),
        expires_at,
    }
}

async fn suite(deps: MaintenanceDeps) {
    let now = OffsetDateTime::now_utc();
    let user = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username: "alice".into(),
        password_hash: "$argon2id$stand-in".into(),
        created_at: now,
    };
    deps.users.create_user(&user).await.expect("user");
    for (hash, at) in [
        ("old-1", now - Duration::days(2)),
        ("old-2", now - Duration::minutes(1)),
        ("live", now + Duration::days(30)),
    ] {
        deps.users
            .put_refresh_token(&token(hash, &user.id, at))
            .await
            .expect("token");
    }
    let window = Duration::minutes(15);
    deps.attempts
        .record_failure("ip:192.0.2.1", window, now - Duration::hours(1))
        .await
        .expect("old counter");
    deps.attempts
        .record_failure("ip:192.0.2.2", window, now)
        .await
        .expect("live counter");

    let pruned = ::maintenance::run(&deps, now).await.expect("run");
    assert_eq!(
        pruned,
        Pruned {
            refresh_tokens: 2,
            login_counters: 1
        }
    );
    // What is still in use is untouched.
    assert_eq!(
        deps.attempts
            .attempts("ip:192.0.2.2", now)
            .await
            .expect("read")
            .count,
        1
    );
    assert!(matches!(
        deps.users
            .rotate_refresh_token("live", "live-next", now + Duration::days(30), now)
            .await
            .expect("rotate"),
        Rotation::Rotated { .. }
    ));
    let again = ::maintenance::run(&deps, now).await.expect("run");
    assert_eq!(
        again,
        Pruned {
            refresh_tokens: 0,
            login_counters: 0
        }
    );
}

#[tokio::test]
async fn maintenance_prunes_what_is_over_on_memory_stores() {
    let users = Arc::new(MemoryUserStore::new());
    suite(MaintenanceDeps {
        users: users.clone(),
        attempts: users,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_prunes_what_is_over_on_postgres() {
    let (db, _) = hubbub_tests::migrated_database().await;
    let users = Arc::new(db.users());
    suite(MaintenanceDeps {
        users: users.clone(),
        attempts: users,
    })
    .await;
}
