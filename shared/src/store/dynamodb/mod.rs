//! DynamoDB [`ConnectionStore`]: one table, five item kinds.
//!
//! | item | `pk` | `sk` | why |
//! |---|---|---|---|
//! | connection | `CONN#{id}` | `#META` | who the connection is |
//! | room side of a membership | `ROOM#{room}` | `CONN#{id}` | fan-out is one paginated Query on the room |
//! | connection side of a membership | `CONN#{id}` | `ROOM#{room}` | `$disconnect` finds the rooms with one Query |
//! | typing gate of a user in a room | `TYPING#{room}` | `USER#{user id}` | at most one typing fan-out per user, room and interval |
//! | a user's token revocation marker | `USER#{id}` | `#REVOKED` | the authorizer refuses tokens issued before it |
//!
//! The connection item also carries the abuse limits' state ([`crate::limits`]): `roomCount`
//! (rooms joined, kept in the join and leave transactions) and one TAT per rate bucket
//! (`sendTat`, `routeTat`).
//!
//! Connection items also carry `userKey` = `USER#{id}`, the key of the sparse global secondary
//! index `byUser` (keys and `expiresAt` projected): a logout finds the user's connections with
//! one Query.
//!
//! Every item carries `expiresAt` (Unix seconds), the table's TTL attribute: API Gateway closes
//! connections after 2 h and `$disconnect` is best-effort, so stale items expire on their own.
//! TTL deletion is lazy (it can lag by days), so reads also filter on `expiresAt`.
//! Nothing here scans the table.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use time::OffsetDateTime;

mod buckets;
mod sessions;
mod table;

use super::{
    Connection, ConnectionStore, Member, MemberIdPage, MemberPage, MembershipStore, SessionStore,
};
use crate::error::StoreError;
use crate::limits::{self, Bucket, BucketKind, Take};
use crate::protocol::{RoomId, UserRef};

/// BatchWriteItem takes at most 25 requests (a DynamoDB limit).
const BATCH_WRITE_MAX: usize = 25;
/// Unprocessed batch items are retried this many times with exponential backoff starting at
/// 50 ms (AWS's advice for throttled batches); 6 tries span about 3 s, well inside a
/// `$disconnect` invocation, before the leftover is reported (the TTL still removes it).
const BATCH_RETRIES: u32 = 6;
const BATCH_BACKOFF_START: Duration = Duration::from_millis(50);

const META: &str = "#META";
const TTL_ATTR: &str = "expiresAt";
const ROOM_COUNT: &str = "roomCount";
/// A typing gate item outlives its interval by this much before the TTL may remove it, so
/// the table does not keep a row per user and room ever typed in.
const TYPING_TTL_SECS: i64 = 60;
/// Rounds of the token-bucket update before giving up. Each round fails only when another
/// frame of the same connection moved the bucket between our two conditional writes, and
/// the second write's condition is exactly the bucket rule, so two rounds settle every race
/// but one where the clock passes the TAT in between; the third is for that one.
const TOKEN_ROUNDS: u32 = 3;
/// The global secondary index from a user to their connections (sparse: only connection
/// items carry [`USER_KEY`]); a logout reads it to close the user's sockets.
const USER_INDEX: &str = "byUser";
const USER_KEY: &str = "userKey";
/// The sort key of a user's token revocation marker (partition `USER#{id}`).
const REVOKED: &str = "#REVOKED";

/// The DynamoDB-backed connection store.
#[derive(Clone)]
pub struct DynamoConnectionStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn conn_pk(id: &str) -> String {
    format!("CONN#{id}")
}

fn user_key(id: &str) -> String {
    format!("USER#{id}")
}

fn room_pk(room: &RoomId) -> String {
    format!("ROOM#{room}")
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Result<&'a str, StoreError> {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("connection item lacks `{k}`")))
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Result<i64, StoreError> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("connection item lacks numeric `{k}`")))
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn unavailable<E>(op: &'static str) -> impl Fn(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::unavailable(op, e)
}

impl DynamoConnectionStore {
    /// A store over `table`, using a client built once at init.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Reads an item strongly consistently; `None` when there is none or its `expiresAt` has
    /// passed (TTL deletion lags by up to days).
    async fn live_item(
        &self,
        item_key: HashMap<String, AttributeValue>,
        op: &'static str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable(op))?;
        match out.item {
            Some(item) if get_n(&item, TTL_ATTR)? > now_secs() => Ok(Some(item)),
            _ => Ok(None),
        }
    }

    /// Every item `query` matches, page after page (for queries whose results are small:
    /// a connection's memberships, a user's connections).
    async fn query_all(
        &self,
        query: QueryFluentBuilder,
        op: &'static str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable(op))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Deletes keys in batches of 25, retrying unprocessed items with backoff.
    async fn batch_delete(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        const OP: &str = "batch delete";
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(unavailable(OP))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut backoff = BATCH_BACKOFF_START;
            for attempt in 0..=BATCH_RETRIES {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable(OP))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == BATCH_RETRIES {
                    return Err(StoreError::unavailable(
                        OP,
                        format!("{} items still unprocessed after retries", pending.len()),
                    ));
                }
                tracing::warn!(
                    unprocessed = pending.len(),
                    attempt,
                    "retrying unprocessed batch items"
                );
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Ok(())
    }

    /// Runs a transaction; `Ok(None)` on success, `Ok(Some(codes))` with the per-item
    /// cancellation codes when a condition failed.
    async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<String> = e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect();
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                        Ok(Some(codes))
                    } else {
                        Err(StoreError::unavailable(op, e))
                    }
                }
                other => Err(StoreError::unavailable(op, other)),
            },
            Err(e) => Err(StoreError::unavailable(op, e)),
        }
    }
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn put_connection(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut item = key(conn_pk(&conn.id), META.to_owned());
        item.insert("connectionId".into(), s(&conn.id));
        item.insert("userId".into(), s(&conn.user.id));
        item.insert("userName".into(), s(&conn.user.name));
        // Only connection items carry it: the user index holds nothing else.
        item.insert(USER_KEY.into(), s(user_key(&conn.user.id)));
        item.insert(
            "connectedAt".into(),
            n((conn.connected_at.unix_timestamp_nanos() / 1_000_000) as i64),
        );
        item.insert(TTL_ATTR.into(), n(conn.expires_at.unix_timestamp()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable("put connection"))?;
        Ok(())
    }

    async fn get_connection(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        // A route runs right after `$connect` wrote the item: read our own write.
        let Some(item) = self
            .live_item(key(conn_pk(id), META.to_owned()), "get connection")
            .await?
        else {
            return Ok(None);
        };
        let expires = get_n(&item, TTL_ATTR)?;
        let connected_ms = get_n(&item, "connectedAt")?;
        let ts = |nanos: i128| {
            OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .map_err(|_| StoreError::Corrupt("connection timestamp".into()))
        };
        Ok(Some(Connection {
            id: id.to_owned(),
            user: UserRef {
                id: get_s(&item, "userId")?.to_owned(),
                name: get_s(&item, "userName")?.to_owned(),
            },
            connected_at: ts(i128::from(connected_ms) * 1_000_000)?,
            expires_at: ts(i128::from(expires) * 1_000_000_000)?,
        }))
    }

    async fn join_room_within(
        &self,
        conn: &Connection,
        room: &RoomId,
        max_rooms: u32,
    ) -> Result<bool, StoreError> {
        const OP: &str = "join room";
        let expires = n(conn.expires_at.unix_timestamp());
        let mut room_side = key(room_pk(room), conn_pk(&conn.id));
        room_side.insert("connectionId".into(), s(&conn.id));
        room_side.insert("userId".into(), s(&conn.user.id));
        room_side.insert("userName".into(), s(&conn.user.name));
        room_side.insert(TTL_ATTR.into(), expires.clone());
        let mut conn_side = key(conn_pk(&conn.id), format!("ROOM#{room}"));
        conn_side.insert("room".into(), s(room.as_str()));
        conn_side.insert(TTL_ATTR.into(), expires);

        let items = vec![
            // The connection must still exist (a join racing `$disconnect` must not leave a
            // membership behind for a dead connection) and be under its cap; the count goes
            // up in the same transaction as the membership, so concurrent joins cannot pass it.
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(conn_pk(&conn.id), META.to_owned())))
                        .update_expression("SET #count = if_not_exists(#count, :zero) + :one")
                        .condition_expression(
                            "attribute_exists(pk) AND #ttl > :now \
                             AND (attribute_not_exists(#count) OR #count < :max)",
                        )
                        .expression_attribute_names("#ttl", TTL_ATTR)
                        .expression_attribute_names("#count", ROOM_COUNT)
                        .expression_attribute_values(":now", n(now_secs()))
                        .expression_attribute_values(":zero", n(0))
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":max", n(i64::from(max_rooms)))
                        .build()
                        .map_err(unavailable(OP))?,
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(room_side))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(unavailable(OP))?,
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(conn_side))
                        .build()
                        .map_err(unavailable(OP))?,
                )
                .build(),
        ];
        let Some(codes) = self.transact(OP, items).await? else {
            return Ok(true);
        };
        let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        if failed(1) || !failed(0) {
            return Ok(false);
        }
        // The connection's condition failed: gone, or at its cap. An already-joined room at
        // the cap is still `false` (joining again is not an error), whether or not the
        // transaction reported the membership's condition too.
        if self.is_member(&conn.id, room).await? {
            return Ok(false);
        }
        match self.get_connection(&conn.id).await? {
            None => Err(StoreError::NotFound("connection")),
            Some(_) => Err(StoreError::LimitExceeded(limits::JOINED_TOO_MANY)),
        }
    }

    async fn is_member(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(room_pk(room), conn_pk(connection_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("is member"))?;
        Ok(match out.item {
            Some(item) => get_n(&item, TTL_ATTR)? > now_secs(),
            None => false,
        })
    }

    async fn take_token(
        &self,
        connection_id: &str,
        kind: BucketKind,
        bucket: Bucket,
        now_ms: i64,
    ) -> Result<Take, StoreError> {
        self.take_bucket_token(connection_id, kind, bucket, now_ms)
            .await
    }

    async fn typing_gate(
        &self,
        room: &RoomId,
        user_id: &str,
        interval: Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.pass_typing_gate(room, user_id, interval, now_ms).await
    }
}

impl DynamoConnectionStore {
    /// One page of the room's live members, from `cursor` (a member's sort key).
    fn members_query(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":pk", s(room_pk(room)))
            .expression_attribute_values(":now", n(now_secs()))
            .set_exclusive_start_key(cursor.map(|c| key(room_pk(room), c.to_owned())))
            // DynamoDB caps a page at 1 MB anyway; the caller's bound keeps fan-out batches even.
            .limit(page_size.clamp(1, 1000) as i32)
            // Strongly consistent: a member who joined a moment before the commit must
            // receive the message (docs/protocol.md: never skip a member present at commit).
            .consistent_read(true)
    }
}

/// The cursor of the page after this one: the last member's sort key, when there is more.
fn page_cursor(last: Option<&HashMap<String, AttributeValue>>) -> Option<String> {
    last.and_then(|k| k.get("sk"))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

#[async_trait]
impl MembershipStore for DynamoConnectionStore {
    async fn leave_room(&self, connection_id: &str, room: &RoomId) -> Result<bool, StoreError> {
        const OP: &str = "leave room";
        let memberships = || -> Result<Vec<TransactWriteItem>, StoreError> {
            Ok(vec![
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(room_pk(room), conn_pk(connection_id))))
                            .condition_expression("attribute_exists(pk)")
                            .build()
                            .map_err(unavailable(OP))?,
                    )
                    .build(),
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(conn_pk(connection_id), format!("ROOM#{room}"))))
                            .build()
                            .map_err(unavailable(OP))?,
                    )
                    .build(),
            ])
        };
        let mut items = memberships()?;
        // The count comes down with the membership. Its condition fails only for a
        // connection that is gone or was recorded before the count existed; then the
        // membership is removed without it.
        items.push(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(conn_pk(connection_id), META.to_owned())))
                        .update_expression("SET #count = #count - :one")
                        .condition_expression("attribute_exists(pk) AND #count > :zero")
                        .expression_attribute_names("#count", ROOM_COUNT)
                        .expression_attribute_values(":zero", n(0))
                        .expression_attribute_values(":one", n(1))
                        .build()
                        .map_err(unavailable(OP))?,
                )
                .build(),
        );
        let Some(codes) = self.transact(OP, items).await? else {
            return Ok(true);
        };
        if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
            return Ok(false);
        }
        Ok(self.transact(OP, memberships()?).await?.is_none())
    }

    async fn room_members(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberPage, StoreError> {
        let out = self
            .members_query(room, cursor, page_size)
            .send()
            .await
            .map_err(unavailable("room members"))?;
        let members = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                Ok(Member {
                    connection_id: get_s(item, "connectionId")?.to_owned(),
                    user: UserRef {
                        id: get_s(item, "userId")?.to_owned(),
                        name: get_s(item, "userName")?.to_owned(),
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(MemberPage {
            members,
            next: page_cursor(out.last_evaluated_key.as_ref()),
        })
    }

    async fn room_member_ids(
        &self,
        room: &RoomId,
        cursor: Option<&str>,
        page_size: u32,
    ) -> Result<MemberIdPage, StoreError> {
        // Only the ids come back: every message to a room reads its members, and the names
        // would be most of each page's bytes for the function to receive and parse. (The read
        // costs the same capacity: DynamoDB counts the items' full size.)
        let out = self
            .members_query(room, cursor, page_size)
            .projection_expression("connectionId")
            .send()
            .await
            .map_err(unavailable("room member ids"))?;
        let connection_ids = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| get_s(item, "connectionId").map(str::to_owned))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(MemberIdPage {
            connection_ids,
            next: page_cursor(out.last_evaluated_key.as_ref()),
        })
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Vec<RoomId>, StoreError> {
        const OP: &str = "remove connection";
        let mut keys = Vec::new();
        let mut rooms = Vec::new();
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(conn_pk(connection_id)))
                    .consistent_read(true),
                OP,
            )
            .await?;
        for item in items {
            let sk = get_s(&item, "sk")?.to_owned();
            if let Some(room) = sk.strip_prefix("ROOM#") {
                let room = RoomId::parse(room)
                    .map_err(|_| StoreError::Corrupt("membership room id".into()))?;
                keys.push(key(room_pk(&room), conn_pk(connection_id)));
                rooms.push(room);
            }
            keys.push(key(conn_pk(connection_id), sk));
        }
        self.batch_delete(keys).await?;
        Ok(rooms)
    }
}

#[async_trait]
impl SessionStore for DynamoConnectionStore {
    async fn user_connections(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.connections_of_user(user_id).await
    }

    async fn revoke_tokens_before(
        &self,
        user_id: &str,
        before: i64,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write_revocation(user_id, before, keep_until).await
    }

    async fn tokens_revoked_before(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
        self.read_revocation(user_id).await
    }
}
