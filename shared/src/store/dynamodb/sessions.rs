//! A user's sessions on DynamoDB: their connections, found through the sparse `byUser`
//! index, and their token revocation marker (`USER#{id}` / `#REVOKED`), which the authorizer
//! reads ([`crate::session`]).

use time::OffsetDateTime;

use super::{
    DynamoConnectionStore, REVOKED, TTL_ATTR, USER_INDEX, USER_KEY, get_n, get_s, key, n, now_secs,
    s, user_key,
};
use crate::error::StoreError;

impl DynamoConnectionStore {
    pub(super) async fn connections_of_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(USER_INDEX)
                    .key_condition_expression("#uk = :uk")
                    .filter_expression("#ttl > :now")
                    .expression_attribute_names("#uk", USER_KEY)
                    .expression_attribute_names("#ttl", TTL_ATTR)
                    .expression_attribute_values(":uk", s(user_key(user_id)))
                    .expression_attribute_values(":now", n(now_secs())),
                "user connections",
            )
            .await?;
        let mut ids = items
            .iter()
            .map(|item| {
                get_s(item, "pk")?
                    .strip_prefix("CONN#")
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::Corrupt("user index item".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    pub(super) async fn write_revocation(
        &self,
        user_id: &str,
        before: i64,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_key(user_id), REVOKED.to_owned())))
            .update_expression("SET revokedBefore = :b, #ttl = :until")
            // Never back: a later marker written first holds.
            .condition_expression("attribute_not_exists(revokedBefore) OR revokedBefore <= :b")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":b", n(before))
            .expression_attribute_values(":until", n(keep_until.unix_timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::unavailable("revoke tokens", e)),
        }
    }

    pub(super) async fn read_revocation(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
        // A handshake right after the logout must see the marker.
        let marker = self
            .live_item(
                key(user_key(user_id), REVOKED.to_owned()),
                "read revocation",
            )
            .await?;
        marker.map(|item| get_n(&item, "revokedBefore")).transpose()
    }
}
