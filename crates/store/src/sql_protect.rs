//! The SQL of data protection (data keys, data subjects, connector secrets), shared by both backends like
//! `sql.rs`.

/// Implements [`crate::KeyStore`], [`crate::SubjectStore`] and [`crate::SecretStore`] for a struct with a
/// `pool` field.
macro_rules! impl_protection_sql {
    ($store:ty, $db:ty, $row:ty) => {
        #[async_trait]
        impl KeyStore for $store {
            async fn insert_data_key(&self, row: &DataKeyRow) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO data_keys (id, master_key_id, wrapped, created_at_ms, retired_at_ms) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(row.id.clone());
                values.push_bind(row.master_key_id.clone());
                values.push_bind(row.wrapped.clone());
                values.push_bind(row.created_at.0);
                values.push_bind(row.retired_at.map(|t| t.0));
                insert.push(")");
                execute(insert, &self.pool, "cannot store the data key").await.map(|_| ())
            }

            async fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError> {
                let sql = QueryBuilder::<$db>::new(
                    "SELECT id, master_key_id, wrapped, created_at_ms, retired_at_ms FROM data_keys \
                     ORDER BY created_at_ms, id",
                );
                let rows = fetch_all(sql, &self.pool, "cannot read the data keys").await?;
                rows.iter()
                    .map(|row| {
                        let get = |e| from_sqlx("corrupt data key row", e);
                        Ok(DataKeyRow {
                            id: row.try_get("id").map_err(get)?,
                            master_key_id: row.try_get("master_key_id").map_err(get)?,
                            wrapped: row.try_get("wrapped").map_err(get)?,
                            created_at: UnixMillis(row.try_get("created_at_ms").map_err(get)?),
                            retired_at: row.try_get::<Option<i64>, _>("retired_at_ms").map_err(get)?.map(UnixMillis),
                        })
                    })
                    .collect()
            }

            async fn rewrap_data_key(
                &self,
                id: &str,
                from_master: &str,
                master_key_id: &str,
                wrapped: &[u8],
            ) -> Result<bool, StoreError> {
                let mut sql = QueryBuilder::<$db>::new("UPDATE data_keys SET master_key_id = ");
                sql.push_bind(master_key_id.to_owned())
                    .push(", wrapped = ")
                    .push_bind(wrapped.to_vec())
                    .push(" WHERE id = ")
                    .push_bind(id.to_owned())
                    .push(" AND master_key_id = ")
                    .push_bind(from_master.to_owned());
                Ok(execute(sql, &self.pool, "cannot re-wrap the data key").await? == 1)
            }

            async fn retire_data_keys(&self, keep: &str, at: UnixMillis) -> Result<u64, StoreError> {
                let mut sql = QueryBuilder::<$db>::new("UPDATE data_keys SET retired_at_ms = ");
                sql.push_bind(at.0)
                    .push(" WHERE retired_at_ms IS NULL AND id <> ")
                    .push_bind(keep.to_owned());
                execute(sql, &self.pool, "cannot retire data keys").await
            }
        }

        #[async_trait]
        impl SubjectStore for $store {
            async fn insert_subject(&self, row: &SubjectRow) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO subjects (subject_id, tenant_id, lookup, sealed_key, sealed_profile, restricted, \
                     created_at_ms, updated_at_ms, erased_at_ms, purge_after_ms) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(row.subject_id.clone());
                values.push_bind(row.tenant_id.clone());
                values.push_bind(row.lookup.clone());
                values.push_bind(row.sealed_key.clone());
                values.push_bind(row.sealed_profile.clone());
                values.push_bind(i64::from(row.restricted));
                values.push_bind(row.created_at.0);
                values.push_bind(row.updated_at.0);
                values.push_bind(row.erased_at.map(|t| t.0));
                values.push_bind(row.purge_after.map(|t| t.0));
                insert.push(")");
                execute(insert, &self.pool, "cannot register the data subject").await.map(|_| ())
            }

            async fn subject_by_lookup(&self, lookup: &str) -> Result<Option<SubjectRow>, StoreError> {
                subject_where(&self.pool, "lookup", lookup).await
            }

            async fn subject_by_id(&self, subject_id: &str) -> Result<Option<SubjectRow>, StoreError> {
                subject_where(&self.pool, "subject_id", subject_id).await
            }

            async fn update_subject(
                &self,
                subject_id: &str,
                sealed_profile: Option<&[u8]>,
                restricted: Option<bool>,
                at: UnixMillis,
            ) -> Result<bool, StoreError> {
                let mut sql = QueryBuilder::<$db>::new("UPDATE subjects SET updated_at_ms = ");
                sql.push_bind(at.0);
                if let Some(profile) = sealed_profile {
                    sql.push(", sealed_profile = ").push_bind(profile.to_vec());
                }
                if let Some(restricted) = restricted {
                    sql.push(", restricted = ").push_bind(i64::from(restricted));
                }
                sql.push(" WHERE erased_at_ms IS NULL AND subject_id = ").push_bind(subject_id.to_owned());
                Ok(execute(sql, &self.pool, "cannot update the data subject").await? == 1)
            }

            async fn erase_subject(
                &self,
                subject_id: &str,
                at: UnixMillis,
                purge_after: UnixMillis,
            ) -> Result<bool, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(
                    "UPDATE subjects SET lookup = NULL, sealed_key = NULL, sealed_profile = NULL, erased_at_ms = ",
                );
                sql.push_bind(at.0)
                    .push(", updated_at_ms = ")
                    .push_bind(at.0)
                    .push(", purge_after_ms = ")
                    .push_bind(purge_after.0)
                    .push(" WHERE erased_at_ms IS NULL AND subject_id = ")
                    .push_bind(subject_id.to_owned());
                Ok(execute(sql, &self.pool, "cannot erase the data subject").await? == 1)
            }

            async fn purge_erased_subjects(&self, now: UnixMillis) -> Result<u64, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(
                    "DELETE FROM subjects WHERE erased_at_ms IS NOT NULL AND purge_after_ms <= ",
                );
                sql.push_bind(now.0);
                execute(sql, &self.pool, "cannot purge erased data subjects").await
            }
        }

        async fn subject_where(
            pool: &sqlx::Pool<$db>,
            column: &'static str,
            value: &str,
        ) -> Result<Option<SubjectRow>, StoreError> {
            let mut sql = QueryBuilder::<$db>::new(
                "SELECT subject_id, tenant_id, lookup, sealed_key, sealed_profile, restricted, created_at_ms, \
                 updated_at_ms, erased_at_ms, purge_after_ms FROM subjects WHERE ",
            );
            sql.push(column).push(" = ").push_bind(value.to_owned());
            let row = sql
                .build()
                .fetch_optional(pool)
                .await
                .map_err(|e| from_sqlx("cannot read the data subject", e))?;
            row.map(|row| {
                let get = |e| from_sqlx("corrupt data subject row", e);
                let millis = |name| row.try_get::<Option<i64>, _>(name).map(|t| t.map(UnixMillis)).map_err(get);
                Ok(SubjectRow {
                    subject_id: row.try_get("subject_id").map_err(get)?,
                    tenant_id: row.try_get("tenant_id").map_err(get)?,
                    lookup: row.try_get("lookup").map_err(get)?,
                    sealed_key: row.try_get("sealed_key").map_err(get)?,
                    sealed_profile: row.try_get("sealed_profile").map_err(get)?,
                    restricted: row.try_get::<i64, _>("restricted").map_err(get)? != 0,
                    created_at: UnixMillis(row.try_get("created_at_ms").map_err(get)?),
                    updated_at: UnixMillis(row.try_get("updated_at_ms").map_err(get)?),
                    erased_at: millis("erased_at_ms")?,
                    purge_after: millis("purge_after_ms")?,
                })
            })
            .transpose()
        }

        #[async_trait]
        impl SecretStore for $store {
            async fn put_connector_secret(&self, row: &ConnectorSecretRow) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO connector_secrets (tenant_id, connector, sealed, created_by, created_at_ms, \
                     updated_at_ms) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(row.tenant_id.clone());
                values.push_bind(row.connector.clone());
                values.push_bind(row.sealed.clone());
                values.push_bind(row.created_by.clone());
                values.push_bind(row.created_at.0);
                values.push_bind(row.updated_at.0);
                insert.push(
                    ") ON CONFLICT (tenant_id, connector) DO UPDATE SET sealed = excluded.sealed, \
                     updated_at_ms = excluded.updated_at_ms",
                );
                execute(insert, &self.pool, "cannot store the connector secret").await.map(|_| ())
            }

            async fn connector_secret(
                &self,
                tenant_id: &str,
                connector: &str,
            ) -> Result<Option<ConnectorSecretRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(SECRET_COLUMNS);
                sql.push(" WHERE tenant_id = ")
                    .push_bind(tenant_id.to_owned())
                    .push(" AND connector = ")
                    .push_bind(connector.to_owned());
                Ok(fetch_all(sql, &self.pool, "cannot read the connector secret")
                    .await?
                    .iter()
                    .map(secret_row)
                    .next()
                    .transpose()?)
            }

            async fn list_connector_secrets(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<ConnectorSecretRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(SECRET_COLUMNS);
                sql.push(" WHERE tenant_id = ").push_bind(tenant_id.to_owned()).push(" ORDER BY connector");
                fetch_all(sql, &self.pool, "cannot list connector secrets").await?.iter().map(secret_row).collect()
            }

            async fn delete_connector_secret(&self, tenant_id: &str, connector: &str) -> Result<bool, StoreError> {
                let mut sql = QueryBuilder::<$db>::new("DELETE FROM connector_secrets WHERE tenant_id = ");
                sql.push_bind(tenant_id.to_owned()).push(" AND connector = ").push_bind(connector.to_owned());
                Ok(execute(sql, &self.pool, "cannot delete the connector secret").await? == 1)
            }
        }

        const SECRET_COLUMNS: &str =
            "SELECT tenant_id, connector, sealed, created_by, created_at_ms, updated_at_ms FROM connector_secrets";

        fn secret_row(row: &$row) -> Result<ConnectorSecretRow, StoreError> {
            let get = |e| from_sqlx("corrupt connector secret row", e);
            Ok(ConnectorSecretRow {
                tenant_id: row.try_get("tenant_id").map_err(get)?,
                connector: row.try_get("connector").map_err(get)?,
                sealed: row.try_get("sealed").map_err(get)?,
                created_by: row.try_get("created_by").map_err(get)?,
                created_at: UnixMillis(row.try_get("created_at_ms").map_err(get)?),
                updated_at: UnixMillis(row.try_get("updated_at_ms").map_err(get)?),
            })
        }

        async fn execute(
            mut sql: QueryBuilder<$db>,
            pool: &sqlx::Pool<$db>,
            what: &'static str,
        ) -> Result<u64, StoreError> {
            sql.build().execute(pool).await.map(|r| r.rows_affected()).map_err(|e| from_sqlx(what, e))
        }

        async fn fetch_all(
            mut sql: QueryBuilder<$db>,
            pool: &sqlx::Pool<$db>,
            what: &'static str,
        ) -> Result<Vec<$row>, StoreError> {
            sql.build().fetch_all(pool).await.map_err(|e| from_sqlx(what, e))
        }
    };
}

pub(crate) use impl_protection_sql;
