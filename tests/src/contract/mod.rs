//! Contract suites: the behaviour every adapter of a port must show. Each suite runs against
//! the in-memory adapter and the real one (DynamoDB-compatible server, PostgreSQL).
//!
//! This module holds the fixtures the suites share; each port's suite is a submodule.

mod accounts;
mod connections;
mod history;
mod limits;
mod messages;
mod people;

pub use accounts::{attempt_store, user_store};
pub use connections::connection_store;
pub use history::{history_store, private_room};
pub use limits::{Atomic, connection_limits, history_limits};
pub use messages::message_changes;
pub use people::people_store;

use std::collections::BTreeSet;

use futures::future::join_all;
use hubbub_core::error::StoreError;
use hubbub_core::protocol::{
    ClientMsgId, HistoryCursor, HistoryQuery, MessageBody, RoomId, UserRef,
};
use hubbub_core::store::{
    AttemptStore, Commit, Connection, ConnectionStore, HistoryStore, NewMessage, NewRefreshToken,
    NewRoom, Room, RoomAccess, Rotation, UserRecord, UserStore,
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
