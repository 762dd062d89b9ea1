//! Creating the connections table where no template does (hubbub-local and tests): the same
//! keys, user index and TTL as `ConnectionsTable` in `template.yaml`.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use super::{DynamoConnectionStore, TTL_ATTR, USER_INDEX, USER_KEY, unavailable};
use crate::error::StoreError;

impl DynamoConnectionStore {
    /// Creates the table (on-demand, TTL on `expiresAt`) unless it exists. For hubbub-local
    /// and tests; on AWS the template creates it.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        const OP: &str = "create table";
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable(OP))
        };
        let key_elem = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(unavailable(OP))
        };
        // The user index: keys and `expiresAt` (its Query filters on it), as in the template.
        let index_key = key_elem(USER_KEY, KeyType::Hash)?;
        let projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes(TTL_ATTR)
            .build();
        if let Ok(out) = exists {
            // A table made before the user index existed gets it now.
            let has_index = out
                .table()
                .map(|t| t.global_secondary_indexes())
                .is_some_and(|ix| ix.iter().any(|i| i.index_name() == Some(USER_INDEX)));
            if !has_index {
                self.client
                    .update_table()
                    .table_name(&self.table)
                    .attribute_definitions(attr(USER_KEY)?)
                    .global_secondary_index_updates(
                        GlobalSecondaryIndexUpdate::builder()
                            .create(
                                CreateGlobalSecondaryIndexAction::builder()
                                    .index_name(USER_INDEX)
                                    .key_schema(index_key)
                                    .projection(projection)
                                    .build()
                                    .map_err(unavailable(OP))?,
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(unavailable(OP))?;
            }
            return Ok(());
        }
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr(USER_KEY)?)
            .key_schema(key_elem("pk", KeyType::Hash)?)
            .key_schema(key_elem("sk", KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(USER_INDEX)
                    .key_schema(index_key)
                    .projection(projection)
                    .build()
                    .map_err(unavailable(OP))?,
            )
            .send()
            .await;
        if let Err(e) = created {
            // Another process may have created it in between: that is success.
            let raced = e
                .as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception());
            if !raced {
                return Err(StoreError::unavailable(OP, e));
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTR)
                    .build()
                    .map_err(unavailable(OP))?,
            )
            .send()
            .await
            .map_err(unavailable(OP))?;
        Ok(())
    }
}
