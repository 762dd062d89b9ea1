//! The abuse limits' state on DynamoDB ([`crate::limits`]): a connection's token buckets,
//! kept as TATs on its own item, and the per-user typing gate items.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::{
    DynamoConnectionStore, META, TOKEN_ROUNDS, TTL_ATTR, TYPING_TTL_SECS, conn_pk, get_n, key, n,
    unavailable,
};
use crate::error::StoreError;
use crate::limits::{Bucket, BucketKind, Take};
use crate::protocol::RoomId;

/// How a conditional update of a connection's bucket went.
enum Failed {
    /// It was applied.
    No,
    /// The condition failed because the connection has no item.
    Gone,
    /// The condition failed; the bucket's TAT at that moment (`None`: never used).
    Tat(Option<i64>),
}

impl DynamoConnectionStore {
    // One bucket check is one conditional UpdateItem on the connection's own item in the
    // usual case (a frame after a quiet spell: one write request unit, as the item is far
    // below 1 KB), two inside a burst and for a refused frame, and no read: the rule of
    // `Bucket::check` is written as condition expressions. At on-demand prices that is about
    // a dollar per million frames, less than the API Gateway messages the same frame costs
    // (its own, the ack and one post per member) and a few milliseconds of latency in the
    // region. It is the price of a limit that holds across Lambda environments: a counter in
    // memory would not (each environment would grant the full rate), API Gateway's route
    // throttling is per stage and route, not per connection (one flood would throttle
    // everyone), and a cache cluster would cost more than these writes at this scale.
    pub(super) async fn take_bucket_token(
        &self,
        connection_id: &str,
        kind: BucketKind,
        bucket: Bucket,
        now_ms: i64,
    ) -> Result<Take, StoreError> {
        const OP: &str = "take token";
        let interval = bucket.interval_ms();
        let limit = now_ms + bucket.tolerance_ms();
        let item_key = key(conn_pk(connection_id), META.to_owned());
        for _ in 0..TOKEN_ROUNDS {
            // A full bucket (never used, or quiet for a burst's worth of intervals): the TAT
            // starts again from now.
            let refill = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key.clone()))
                .update_expression("SET #tat = :next")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(#tat) OR #tat <= :now)",
                )
                .expression_attribute_names("#tat", kind.attribute())
                .expression_attribute_values(":next", n(now_ms + interval))
                .expression_attribute_values(":now", n(now_ms))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let tat = match self
                .failed_condition(refill, connection_id, kind, OP)
                .await?
            {
                Failed::No => return Ok(Take::Allowed),
                // Not a connection of ours (the route refuses it), or the TAT fell due
                // between the write and the read: look again.
                Failed::Gone => return Ok(Take::Allowed),
                Failed::Tat(None) => continue,
                Failed::Tat(Some(tat)) => tat,
            };
            if tat > limit {
                return Ok(Take::Limited {
                    retry_after_ms: u64::try_from(tat - limit).unwrap_or(1).max(1),
                });
            }
            if tat <= now_ms {
                continue;
            }
            // Inside the burst: one more interval on the TAT, if it is still within the limit
            // (concurrent frames each add theirs; the condition stops them at the limit).
            let spend = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key.clone()))
                .update_expression("SET #tat = #tat + :interval")
                .condition_expression("attribute_exists(pk) AND #tat > :now AND #tat <= :limit")
                .expression_attribute_names("#tat", kind.attribute())
                .expression_attribute_values(":interval", n(interval))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":limit", n(limit))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match self
                .failed_condition(spend, connection_id, kind, OP)
                .await?
            {
                Failed::No | Failed::Gone => return Ok(Take::Allowed),
                Failed::Tat(Some(tat)) if tat > limit => {
                    return Ok(Take::Limited {
                        retry_after_ms: u64::try_from(tat - limit).unwrap_or(1).max(1),
                    });
                }
                Failed::Tat(_) => continue,
            }
        }
        tracing::warn!(
            connection_id,
            ?kind,
            "token bucket still contended; refusing the frame"
        );
        Ok(Take::Limited {
            retry_after_ms: u64::try_from(interval).unwrap_or(1),
        })
    }

    pub(super) async fn pass_typing_gate(
        &self,
        room: &RoomId,
        user_id: &str,
        interval: Duration,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let mut item = key(format!("TYPING#{room}"), format!("USER#{user_id}"));
        item.insert("at".into(), n(now_ms));
        item.insert(TTL_ATTR.into(), n(now_ms / 1000 + TYPING_TTL_SECS));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #at <= :cutoff")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":cutoff", n(now_ms.saturating_sub(interval)))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::unavailable("typing gate", e)),
        }
    }

    /// Sorts the outcome of a bucket update. DynamoDB hands back the item whose condition
    /// failed (`ReturnValuesOnConditionCheckFailure`); a server that does not is asked with a
    /// consistent read.
    async fn failed_condition<T>(
        &self,
        outcome: Result<T, SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>>,
        connection_id: &str,
        kind: BucketKind,
        op: &'static str,
    ) -> Result<Failed, StoreError> {
        let err = match outcome {
            Ok(_) => return Ok(Failed::No),
            Err(SdkError::ServiceError(ctx)) => ctx.into_err(),
            Err(e) => return Err(StoreError::unavailable(op, e)),
        };
        let UpdateItemError::ConditionalCheckFailedException(failed) = err else {
            return Err(StoreError::unavailable(op, err));
        };
        let item = match failed.item {
            Some(item) => Some(item),
            None => {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(conn_pk(connection_id), META.to_owned())))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable(op))?
                    .item
            }
        };
        let Some(item) = item.filter(|i| i.contains_key("pk")) else {
            return Ok(Failed::Gone);
        };
        Ok(Failed::Tat(match item.get(kind.attribute()) {
            Some(_) => Some(get_n(&item, kind.attribute())?),
            None => None,
        }))
    }
}
