//! The SQL shared by both backends, written once as a macro over the sqlx database type. Placeholders are
//! produced by `QueryBuilder`, so the same text serves SQLite (`?`) and PostgreSQL (`$n`).

/// The most audit rows one INSERT statement carries (11 parameters a row: 2,816 parameters, below both
/// databases' limits, 32,766 for SQLite and 65,535 for PostgreSQL).
pub(crate) const AUDIT_INSERT_CHUNK: usize = 256;

/// Implements [`crate::Store`] (but `open`) and [`crate::AuditStore`] for a struct with a `pool` field and an
/// `appender()` method: the pool audit records are appended through.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty, $backend:expr) => {
    #[async_trait]
    impl Store for $store {
        fn backend(&self) -> Backend {
            $backend
        }

        async fn ping(&self) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| from_sqlx("the database is unreachable", e))?;
            Ok(())
        }

        async fn schema_version(&self) -> Result<i64, StoreError> {
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| from_sqlx("cannot read the schema version", e))
        }

        async fn close(&self) {
            self.before_close().await;
            self.pool.close().await;
        }
    }

    #[async_trait]
    impl AuditStore for $store {
            async fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
                QueryBuilder::<$db>::new(
                    "SELECT chain_id FROM audit_records UNION SELECT chain_id FROM audit_horizons ORDER BY chain_id",
                )
                    .build_query_scalar()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot list audit chains", e))
            }

            async fn audit_chain_page(
                &self,
                chain_id: &str,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<AuditRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(
                    "SELECT id, chain_id, seq, ts_ms, tenant_id, actor, kind, verdict, body, prev_hash, hash \
                     FROM audit_records WHERE chain_id = ",
                );
                sql.push_bind(chain_id.to_owned())
                    .push(" AND seq > ")
                    .push_bind(after_seq)
                    .push(" ORDER BY seq LIMIT ")
                    .push_bind(clamp_limit(limit));
                let rows = sql
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot read the audit chain", e))?;
                rows.iter().map(audit_row).collect()
            }

            async fn append_checkpoint(&self, checkpoint: &CheckpointRow) -> Result<(), StoreError> {
                self.append_audit(&[], Some(checkpoint)).await
            }

            async fn audit_checkpoints(&self, chain_id: &str) -> Result<Vec<CheckpointRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(
                    "SELECT chain_id, seq, hash, ts_ms, public_key, signature FROM audit_checkpoints \
                     WHERE chain_id = ",
                );
                sql.push_bind(chain_id.to_owned()).push(" ORDER BY seq");
                let rows = sql
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot read audit checkpoints", e))?;
                rows.iter()
                    .map(|row| {
                        let get = |e| from_sqlx("corrupt checkpoint row", e);
                        Ok(CheckpointRow {
                            chain_id: row.try_get("chain_id").map_err(get)?,
                            seq: row.try_get("seq").map_err(get)?,
                            hash: row.try_get("hash").map_err(get)?,
                            ts: UnixMillis(row.try_get("ts_ms").map_err(get)?),
                            public_key: row.try_get("public_key").map_err(get)?,
                            signature: row.try_get("signature").map_err(get)?,
                        })
                    })
                    .collect()
            }

        async fn between_audit_appends(&self) {
            self.restart_wal().await;
        }

        async fn audit_appends_in_background(&self) {
            self.lower_appender().await;
        }

        async fn append_audit(
            &self,
            rows: &[AuditRow],
            checkpoint: Option<&CheckpointRow>,
        ) -> Result<(), StoreError> {
            if rows.is_empty() && checkpoint.is_none() {
                return Ok(());
            }
            // One statement per chunk of rows rather than per row: each statement is a round trip to the
            // database (for SQLite, to its connection's thread). A batch that fits one statement, with no
            // checkpoint, needs no transaction around it: one statement is atomic on its own, which saves the
            // BEGIN and COMMIT round trips (most batches, at any load).
            let insert = |chunk: &[AuditRow]| {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO audit_records \
                     (id, chain_id, seq, ts_ms, tenant_id, actor, kind, verdict, body, prev_hash, hash) ",
                );
                insert.push_values(chunk, |mut values, row| {
                    values.push_bind(row.id.clone());
                    values.push_bind(row.chain_id.clone());
                    values.push_bind(row.seq);
                    values.push_bind(row.ts.0);
                    values.push_bind(row.tenant_id.clone());
                    values.push_bind(row.actor.clone());
                    values.push_bind(row.kind.clone());
                    values.push_bind(row.verdict.clone());
                    values.push_bind(row.body.clone());
                    values.push_bind(row.prev_hash.clone());
                    values.push_bind(row.hash.clone());
                });
                insert
            };
            if checkpoint.is_none() && rows.len() <= $crate::sql::AUDIT_INSERT_CHUNK {
                return insert(rows)
                    .build()
                    .execute(self.appender())
                    .await
                    .map(drop)
                    .map_err(|e| from_sqlx("cannot write an audit record", e));
            }
            let mut tx = self.appender().begin().await.map_err(|e| from_sqlx("cannot begin an audit write", e))?;
            for chunk in rows.chunks($crate::sql::AUDIT_INSERT_CHUNK) {
                insert(chunk)
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| from_sqlx("cannot write an audit record", e))?;
            }
            if let Some(checkpoint) = checkpoint {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO audit_checkpoints (chain_id, seq, hash, ts_ms, public_key, signature) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(checkpoint.chain_id.clone());
                values.push_bind(checkpoint.seq);
                values.push_bind(checkpoint.hash.clone());
                values.push_bind(checkpoint.ts.0);
                values.push_bind(checkpoint.public_key.clone());
                values.push_bind(checkpoint.signature.clone());
                insert.push(")");
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| from_sqlx("cannot write an audit checkpoint", e))?;
            }
            tx.commit().await.map_err(|e| from_sqlx("cannot commit audit records", e))
        }

        async fn audit_chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError> {
            let row = QueryBuilder::<$db>::new("SELECT seq, hash FROM audit_records WHERE chain_id = ")
                .push_bind(chain_id)
                .push(" ORDER BY seq DESC LIMIT 1")
                .build()
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| from_sqlx("cannot read the audit chain head", e))?;
            if let Some(row) = row {
                return Ok(Some(ChainHead {
                    seq: row.try_get("seq").map_err(|e| from_sqlx("corrupt audit row", e))?,
                    hash: row.try_get("hash").map_err(|e| from_sqlx("corrupt audit row", e))?,
                }));
            }
            // Retention may have deleted every record: the chain continues from its horizon.
            let horizon = self.audit_horizon(chain_id).await?;
            Ok(horizon.map(|h| ChainHead { seq: h.through_seq, hash: h.through_hash }))
        }

        async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
            let mut sql = QueryBuilder::<$db>::new(
                "SELECT id, chain_id, seq, ts_ms, tenant_id, actor, kind, verdict, body, prev_hash, hash \
                 FROM audit_records WHERE 1 = 1",
            );
            push_filters(&mut sql, query);
            sql.push(" ORDER BY ts_ms DESC, chain_id, seq DESC LIMIT ")
                .push_bind(clamp_limit(query.limit))
                .push(" OFFSET ")
                .push_bind(i64::from(query.offset));
            let rows = sql.build().fetch_all(&self.pool).await.map_err(|e| from_sqlx("cannot search audit records", e))?;
            rows.iter().map(audit_row).collect()
        }

        async fn count_audit(&self, query: &AuditQuery) -> Result<u64, StoreError> {
            let mut sql = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM audit_records WHERE 1 = 1");
            push_filters(&mut sql, query);
            let count: i64 = sql
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(|e| from_sqlx("cannot count audit records", e))?;
            Ok(u64::try_from(count).unwrap_or(0))
        }

        async fn audit_horizon(&self, chain_id: &str) -> Result<Option<HorizonRow>, StoreError> {
            let row = QueryBuilder::<$db>::new(
                "SELECT chain_id, through_seq, through_hash, ts_ms, public_key, signature FROM audit_horizons \
                 WHERE chain_id = ",
            )
            .push_bind(chain_id.to_owned())
            .build()
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| from_sqlx("cannot read the audit horizon", e))?;
            row.map(|row| {
                let get = |e| from_sqlx("corrupt audit horizon", e);
                Ok(HorizonRow {
                    chain_id: row.try_get("chain_id").map_err(get)?,
                    through_seq: row.try_get("through_seq").map_err(get)?,
                    through_hash: row.try_get("through_hash").map_err(get)?,
                    ts: UnixMillis(row.try_get("ts_ms").map_err(get)?),
                    public_key: row.try_get("public_key").map_err(get)?,
                    signature: row.try_get("signature").map_err(get)?,
                })
            })
            .transpose()
        }

        async fn audit_prune_point(
            &self,
            chain_id: &str,
            before: UnixMillis,
            max_records: u32,
        ) -> Result<Option<ChainHead>, StoreError> {
            let error = |e| from_sqlx("cannot read the audit chain", e);
            let bounds: (Option<i64>, Option<i64>) = QueryBuilder::<$db>::new(
                "SELECT MIN(seq), MAX(seq) FROM audit_records WHERE chain_id = ",
            )
            .push_bind(chain_id.to_owned())
            .build_query_as()
            .fetch_one(&self.pool)
            .await
            .map_err(error)?;
            let (Some(first), Some(last)) = bounds else { return Ok(None) };
            let young: Option<i64> = QueryBuilder::<$db>::new("SELECT MIN(seq) FROM audit_records WHERE chain_id = ")
                .push_bind(chain_id.to_owned())
                .push(" AND ts_ms >= ")
                .push_bind(before.0)
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(error)?;
            let through = young.map_or(last, |seq| seq - 1).min(first + i64::from(max_records.max(1)) - 1);
            if through < first {
                return Ok(None);
            }
            let hash: Option<Vec<u8>> = QueryBuilder::<$db>::new("SELECT hash FROM audit_records WHERE chain_id = ")
                .push_bind(chain_id.to_owned())
                .push(" AND seq = ")
                .push_bind(through)
                .build_query_scalar()
                .fetch_optional(&self.pool)
                .await
                .map_err(error)?;
            // A gap in the chain (a deleted record) stops retention here; `verify` reports it.
            Ok(hash.map(|hash| ChainHead { seq: through, hash }))
        }

        async fn prune_audit(&self, horizon: &HorizonRow) -> Result<u64, StoreError> {
            let error = |e| from_sqlx("cannot apply audit retention", e);
            let mut tx = self.pool.begin().await.map_err(error)?;
            let deleted = QueryBuilder::<$db>::new("DELETE FROM audit_records WHERE chain_id = ")
                .push_bind(horizon.chain_id.clone())
                .push(" AND seq <= ")
                .push_bind(horizon.through_seq)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(error)?
                .rows_affected();
            QueryBuilder::<$db>::new("DELETE FROM audit_checkpoints WHERE chain_id = ")
                .push_bind(horizon.chain_id.clone())
                .push(" AND seq <= ")
                .push_bind(horizon.through_seq)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            QueryBuilder::<$db>::new("DELETE FROM audit_horizons WHERE chain_id = ")
                .push_bind(horizon.chain_id.clone())
                .build()
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            let mut insert = QueryBuilder::<$db>::new(
                "INSERT INTO audit_horizons (chain_id, through_seq, through_hash, ts_ms, public_key, signature) \
                 VALUES (",
            );
            let mut values = insert.separated(", ");
            values.push_bind(horizon.chain_id.clone());
            values.push_bind(horizon.through_seq);
            values.push_bind(horizon.through_hash.clone());
            values.push_bind(horizon.ts.0);
            values.push_bind(horizon.public_key.clone());
            values.push_bind(horizon.signature.clone());
            insert.push(")");
            insert.build().execute(&mut *tx).await.map_err(error)?;
            tx.commit().await.map_err(error)?;
            Ok(deleted)
        }
    }

    fn push_filters(sql: &mut QueryBuilder<$db>, query: &AuditQuery) {
        if let Some(tenant) = &query.tenant_id {
            sql.push(" AND tenant_id = ").push_bind(tenant.clone());
        }
        if let Some(id) = &query.id {
            sql.push(" AND id = ").push_bind(id.clone());
        }
        if let Some(actor) = &query.actor {
            sql.push(" AND actor = ").push_bind(actor.clone());
        }
        if let Some(kind) = &query.kind {
            sql.push(" AND kind = ").push_bind(kind.clone());
        }
        if let Some(verdict) = &query.verdict {
            sql.push(" AND verdict = ").push_bind(verdict.clone());
        }
        if let Some(since) = query.since {
            sql.push(" AND ts_ms >= ").push_bind(since.0);
        }
        if let Some(until) = query.until {
            sql.push(" AND ts_ms < ").push_bind(until.0);
        }
        if let Some(text) = &query.contains {
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            sql.push(" AND body LIKE ").push_bind(format!("%{escaped}%")).push(" ESCAPE '\\'");
        }
    }

    fn audit_row(row: &$row) -> Result<AuditRow, StoreError> {
        let get = |e| from_sqlx("corrupt audit row", e);
        Ok(AuditRow {
            id: row.try_get("id").map_err(get)?,
            chain_id: row.try_get("chain_id").map_err(get)?,
            seq: row.try_get("seq").map_err(get)?,
            ts: UnixMillis(row.try_get("ts_ms").map_err(get)?),
            tenant_id: row.try_get("tenant_id").map_err(get)?,
            actor: row.try_get("actor").map_err(get)?,
            kind: row.try_get("kind").map_err(get)?,
            verdict: row.try_get("verdict").map_err(get)?,
            body: row.try_get("body").map_err(get)?,
            prev_hash: row.try_get("prev_hash").map_err(get)?,
            hash: row.try_get("hash").map_err(get)?,
        })
    }

        #[async_trait]
        impl CredentialStore for $store {
            async fn insert_credential(&self, row: &CredentialRow) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO credentials (key_id, fingerprint, tenant_id, kind, service_name, service_type, \
                     tier, environment, permissions, issued_at_ms, expires_at_ms, revoked_at_ms, \
                     revocation_reason, replaced_by, created_at_ms) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(row.key_id.clone());
                values.push_bind(row.fingerprint.clone());
                values.push_bind(row.tenant_id.clone());
                values.push_bind(row.kind.clone());
                values.push_bind(row.service_name.clone());
                values.push_bind(row.service_type.clone());
                values.push_bind(row.tier.clone());
                values.push_bind(row.environment.clone());
                values.push_bind(row.permissions.clone());
                values.push_bind(row.issued_at.0);
                values.push_bind(row.expires_at.0);
                values.push_bind(row.revoked_at.map(|t| t.0));
                values.push_bind(row.revocation_reason.clone());
                values.push_bind(row.replaced_by.clone());
                values.push_bind(row.created_at.0);
                insert.push(")");
                insert
                    .build()
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sqlx("cannot register the credential", e))
            }

            async fn credential_by_fingerprint(
                &self,
                fingerprint: &str,
            ) -> Result<Option<CredentialRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(CREDENTIAL_COLUMNS);
                sql.push(" WHERE fingerprint = ").push_bind(fingerprint.to_owned());
                let row = sql
                    .build()
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot look up the credential", e))?;
                row.as_ref().map(credential_row).transpose()
            }

            async fn credential_by_key_id(&self, key_id: &str) -> Result<Option<CredentialRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(CREDENTIAL_COLUMNS);
                sql.push(" WHERE key_id = ").push_bind(key_id.to_owned());
                let row = sql
                    .build()
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot look up the credential", e))?;
                row.as_ref().map(credential_row).transpose()
            }

            async fn list_credentials(&self, tenant_id: Option<&str>) -> Result<Vec<CredentialRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(CREDENTIAL_COLUMNS);
                if let Some(tenant) = tenant_id {
                    sql.push(" WHERE tenant_id = ").push_bind(tenant.to_owned());
                }
                sql.push(" ORDER BY created_at_ms, key_id");
                let rows = sql
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot list credentials", e))?;
                rows.iter().map(credential_row).collect()
            }

            async fn revoke_credential(
                &self,
                key_id: &str,
                at: UnixMillis,
                reason: &str,
                replaced_by: Option<&str>,
            ) -> Result<bool, StoreError> {
                let mut sql = QueryBuilder::<$db>::new("UPDATE credentials SET revoked_at_ms = ");
                sql.push_bind(at.0)
                    .push(", revocation_reason = ")
                    .push_bind(reason.to_owned())
                    .push(", replaced_by = COALESCE(")
                    .push_bind(replaced_by.map(str::to_owned))
                    .push(", replaced_by) WHERE key_id = ")
                    .push_bind(key_id.to_owned())
                    .push(" AND (revoked_at_ms IS NULL OR revoked_at_ms > ")
                    .push_bind(at.0)
                    .push(")");
                sql.build().execute(&self.pool).await.map_err(|e| from_sqlx("cannot revoke the credential", e))?;
                Ok(self.credential_by_key_id(key_id).await?.is_some())
            }
        }

        const CREDENTIAL_COLUMNS: &str = "SELECT key_id, fingerprint, tenant_id, kind, service_name, service_type, \
             tier, environment, permissions, issued_at_ms, expires_at_ms, revoked_at_ms, revocation_reason, \
             replaced_by, created_at_ms FROM credentials";

        fn credential_row(row: &$row) -> Result<CredentialRow, StoreError> {
            let get = |e| from_sqlx("corrupt credential row", e);
            Ok(CredentialRow {
                key_id: row.try_get("key_id").map_err(get)?,
                fingerprint: row.try_get("fingerprint").map_err(get)?,
                tenant_id: row.try_get("tenant_id").map_err(get)?,
                kind: row.try_get("kind").map_err(get)?,
                service_name: row.try_get("service_name").map_err(get)?,
                service_type: row.try_get("service_type").map_err(get)?,
                tier: row.try_get("tier").map_err(get)?,
                environment: row.try_get("environment").map_err(get)?,
                permissions: row.try_get("permissions").map_err(get)?,
                issued_at: UnixMillis(row.try_get("issued_at_ms").map_err(get)?),
                expires_at: UnixMillis(row.try_get("expires_at_ms").map_err(get)?),
                revoked_at: row.try_get::<Option<i64>, _>("revoked_at_ms").map_err(get)?.map(UnixMillis),
                revocation_reason: row.try_get("revocation_reason").map_err(get)?,
                replaced_by: row.try_get("replaced_by").map_err(get)?,
                created_at: UnixMillis(row.try_get("created_at_ms").map_err(get)?),
            })
        }

        #[async_trait]
        impl PolicyStore for $store {
            async fn insert_policy_version(&self, row: &PolicyVersionRow) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO policy_versions (id, tenant_id, author, created_at_ms, content_hash, files, summary, \
                     active) VALUES (",
                );
                let mut values = insert.separated(", ");
                values.push_bind(row.id.clone());
                values.push_bind(row.tenant_id.clone());
                values.push_bind(row.author.clone());
                values.push_bind(row.created_at.0);
                values.push_bind(row.content_hash.clone());
                values.push_bind(row.files.clone());
                values.push_bind(row.summary.clone());
                values.push_bind(i64::from(row.active));
                insert.push(")");
                insert
                    .build()
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sqlx("cannot store the policy version", e))
            }

            async fn list_policy_versions(&self, tenant_id: &str) -> Result<Vec<PolicyVersionRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(POLICY_COLUMNS);
                sql.push(" WHERE tenant_id = ").push_bind(tenant_id.to_owned()).push(" ORDER BY created_at_ms DESC, id DESC");
                let rows = sql
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot list policy versions", e))?;
                rows.iter().map(policy_row).collect()
            }

            async fn policy_version(&self, id: &str) -> Result<Option<PolicyVersionRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(POLICY_COLUMNS);
                sql.push(" WHERE id = ").push_bind(id.to_owned());
                let row = sql
                    .build()
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot read the policy version", e))?;
                row.as_ref().map(policy_row).transpose()
            }

            async fn activate_policy_version(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
                let mut tx = self
                    .pool
                    .begin_with(BEGIN_READ_WRITE)
                    .await
                    .map_err(|e| from_sqlx("cannot begin a policy change", e))?;
                let mut exists = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM policy_versions WHERE tenant_id = ");
                exists.push_bind(tenant_id.to_owned()).push(" AND id = ").push_bind(id.to_owned());
                let count: i64 = exists
                    .build_query_scalar()
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| from_sqlx("cannot read the policy version", e))?;
                if count == 0 {
                    return Ok(false);
                }
                let mut clear = QueryBuilder::<$db>::new("UPDATE policy_versions SET active = 0 WHERE tenant_id = ");
                clear.push_bind(tenant_id.to_owned());
                clear.build().execute(&mut *tx).await.map_err(|e| from_sqlx("cannot change the policy version", e))?;
                let mut set = QueryBuilder::<$db>::new("UPDATE policy_versions SET active = 1 WHERE id = ");
                set.push_bind(id.to_owned());
                set.build().execute(&mut *tx).await.map_err(|e| from_sqlx("cannot change the policy version", e))?;
                tx.commit().await.map_err(|e| from_sqlx("cannot commit the policy change", e))?;
                Ok(true)
            }

            async fn active_policy_versions(&self) -> Result<Vec<PolicyVersionRow>, StoreError> {
                let mut sql = QueryBuilder::<$db>::new(POLICY_COLUMNS);
                sql.push(" WHERE active = 1 ORDER BY tenant_id");
                let rows = sql
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| from_sqlx("cannot list active policy versions", e))?;
                rows.iter().map(policy_row).collect()
            }
        }

        /// How a transaction that reads before it writes begins. SQLite's default (deferred) BEGIN takes the
        /// write lock only at the first write, and fails there at once (`SQLITE_BUSY`, no busy timeout) when
        /// another connection, such as the audit indexer's, committed after the read; `BEGIN IMMEDIATE` takes
        /// the lock first, waiting for it with the busy timeout.
        const BEGIN_READ_WRITE: &str = match $backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };

        const POLICY_COLUMNS: &str = "SELECT id, tenant_id, author, created_at_ms, content_hash, files, summary, active \
             FROM policy_versions";

        fn policy_row(row: &$row) -> Result<PolicyVersionRow, StoreError> {
            let get = |e| from_sqlx("corrupt policy version row", e);
            Ok(PolicyVersionRow {
                id: row.try_get("id").map_err(get)?,
                tenant_id: row.try_get("tenant_id").map_err(get)?,
                author: row.try_get("author").map_err(get)?,
                created_at: UnixMillis(row.try_get("created_at_ms").map_err(get)?),
                content_hash: row.try_get("content_hash").map_err(get)?,
                files: row.try_get("files").map_err(get)?,
                summary: row.try_get("summary").map_err(get)?,
                active: row.try_get::<i64, _>("active").map_err(get)? != 0,
            })
        }
    };
}

pub(crate) use impl_sql_store;
