//! The scheduled clean-up deletes expired refresh tokens and ended failed-login counters, and
//! nothing that is still in use.

use ::maintenance::{MaintenanceDeps, Pruned};
use hubbub_core::store::memory::MemoryUserStore;
use hubbub_core::store::{AttemptStore, NewRefreshToken, Rotation, UserRecord, UserStore};
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

/// An account to hang refresh tokens on.
fn account(now: OffsetDateTime) -> UserRecord {
    UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username: "alice".into(),
        password_hash: "$argon2id$stand-in".into(),
        created_at: now,
    }
}

async fn suite(deps: MaintenanceDeps) {
    let now = OffsetDateTime::now_utc();
    let user = account(now);
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

/// hubbub-local runs the same clean-up on its own timer, the first run at start: what expired
/// before the server started is gone moments later, and what is live stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubbub_local_prunes_on_its_timer_over_postgres() {
    let (db, url) = hubbub_tests::migrated_database().await;
    let users = db.users();
    let now = OffsetDateTime::now_utc();
    let user = account(now);
    users.create_user(&user).await.expect("user");
    users
        .put_refresh_token(&token("expired", &user.id, now - Duration::minutes(1)))
        .await
        .expect("expired token");
    users
        .put_refresh_token(&token("live", &user.id, now + Duration::days(1)))
        .await
        .expect("live token");
    users
        .record_failure(
            "ip:192.0.2.1",
            Duration::minutes(15),
            now - Duration::hours(1),
        )
        .await
        .expect("ended counter");

    let mut config = hubbub_tests::local::TestLocal::config();
    config.database_url = Some(url.clone());
    let server = hubbub_local::Server::start(config)
        .await
        .expect("hubbub-local starts");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect(sql)
                .get::<_, i64>(0)
        }
    };
    let mut left = (1, 1);
    for _ in 0..50 {
        left = (
            count("SELECT count(*) FROM refresh_tokens WHERE hash = 'expired'").await,
            count("SELECT count(*) FROM login_failures").await,
        );
        if left == (0, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        left,
        (0, 0),
        "(expired tokens, ended counters) left after start"
    );
    assert_eq!(
        count("SELECT count(*) FROM refresh_tokens WHERE hash = 'live'").await,
        1
    );
    server.shutdown().await;
}
