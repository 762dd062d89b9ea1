//! The PostgreSQL migration runner.
//!
//! Migrations are the SQL files of `infra/migrations/`, embedded at build time, applied in
//! version order, each in its own transaction, and recorded in `schema_migrations` with a
//! checksum. A session-level advisory lock makes concurrent runners (several cold starts, a
//! deploy hook and hubbub-local) safe: one applies, the others wait and then find nothing to do.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. `tests::embedded_list_matches_the_folder` keeps this list and
/// `infra/migrations/` in step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../../infra/migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_accounts.sql",
        sql: include_str!("../../../infra/migrations/0002_accounts.sql"),
    },
    Migration {
        version: 3,
        name: "0003_room_quotas.sql",
        sql: include_str!("../../../infra/migrations/0003_room_quotas.sql"),
    },
    Migration {
        version: 4,
        name: "0004_usernames.sql",
        sql: include_str!("../../../infra/migrations/0004_usernames.sql"),
    },
    Migration {
        version: 5,
        name: "0005_message_events.sql",
        sql: include_str!("../../../infra/migrations/0005_message_events.sql"),
    },
    Migration {
        version: 6,
        name: "0006_read_state_roles.sql",
        sql: include_str!("../../../infra/migrations/0006_read_state_roles.sql"),
    },
    Migration {
        version: 7,
        name: "0007_one_owner_record.sql",
        sql: include_str!("../../../infra/migrations/0007_one_owner_record.sql"),
    },
];

/// Arbitrary but fixed key of the advisory lock ("hubbub" in ASCII).
const LOCK_KEY: i64 = 0x6875_6262_7562;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database error while migrating")]
    Db(#[from] tokio_postgres::Error),
    #[error(
        "migration {version} was changed after it was applied (checksum mismatch); add a new migration instead"
    )]
    Changed { version: i64 },
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies every pending migration; returns the versions applied by this call.
///
/// Pending means not recorded, whatever the version: a migration numbered below one already
/// applied (two developed side by side, landing in either order) is still applied. Such
/// migrations must not depend on each other.
pub async fn run(client: &mut Client) -> Result<Vec<i64>, MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_pending(client).await;
    // Unlock even after a failure; if the connection itself broke, the lock died with it.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let applied = result?;
    unlocked?;
    Ok(applied)
}

async fn apply_pending(client: &mut Client) -> Result<Vec<i64>, MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     bigint      PRIMARY KEY,
                name        text        NOT NULL,
                checksum    text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let rows = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?;
    let done: std::collections::HashMap<i64, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let sum = checksum(m.sql);
        match done.get(&m.version) {
            Some(s) if *s == sum => continue,
            Some(_) => return Err(MigrateError::Changed { version: m.version }),
            None => {}
        }
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &sum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_list_matches_the_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("infra/migrations exists")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(
            files, embedded,
            "every file in infra/migrations must be embedded, in order"
        );
        // Versions increase but may leave a gap for a while: a migration developed beside
        // another lands first, and the runner applies whichever version a database has not
        // recorded, so the one below it still applies when it lands (see `apply_pending`).
        let mut previous = 0;
        for m in MIGRATIONS {
            assert!(m.version > previous, "versions increase: {}", m.name);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            previous = m.version;
        }
    }
}
