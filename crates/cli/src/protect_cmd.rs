//! `axonflow keys | retention | subject …`: encryption keys at rest, retention, and data subjects' rights, on
//! the deployment's own store and key files.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use crypto::KeyRing;
use engine::Principal;
use serde_json::json;

use crate::cli::{KeysCommand, RetentionCommand, StoreArgs, SubjectCommand};
use crate::config::{Config, MasterKeys};
use crate::license_cmd::{block_on, finish, note, operator, out};
use crate::serve::{Services, Writer};
use crate::{load_for_store, report_problems};

/// Loads the configuration, opens the services as a tool and runs `f` on them.
fn with_services<F>(store: &StoreArgs, f: F) -> ExitCode
where
    F: AsyncFnOnce(&Services, &Config, bool) -> Result<bool>,
{
    let config = match load_for_store(store) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    crate::logging::init(config.log_format, "warn");
    let json = store.json;
    finish(block_on(async move {
        let services = Services::open(&config, Writer::Tool).await?;
        let result = f(&services, &config, json).await;
        services.close().await;
        result
    }))
}

pub fn keys(command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Status { store } => with_services(&store, async |services, config, json| {
            let ring = crate::serve::master_key_provider(&config.protection.master_keys)?;
            let current = ring.current_key_id()?;
            let data_keys = services.store.data_keys().await.context("cannot read the data keys")?;
            let current_data = services.vault.current_key_id();
            if json {
                let keys: Vec<_> = data_keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "master_key_id": k.master_key_id,
                            "created_at": k.created_at.to_rfc3339(),
                            "retired_at": k.retired_at.map(|t| t.to_rfc3339()),
                            "current": k.id == current_data,
                        })
                    })
                    .collect();
                out(&json!({ "master_key_id": current, "data_keys": keys }).to_string());
            } else {
                out(&format!("master key (current): {current}"));
                for key in &data_keys {
                    let state = if key.id == current_data {
                        "current".to_owned()
                    } else {
                        key.retired_at.map_or("active".to_owned(), |t| format!("retired {}", t.to_rfc3339()))
                    };
                    out(&format!("data key {}  wrapped by {}  {}", key.id, key.master_key_id, state));
                }
            }
            Ok(true)
        }),
        KeysCommand::Rotate { store, keep_master } => {
            with_services(&store, async |services, config, json| {
                let added = match (&config.protection.master_keys, keep_master) {
                    (MasterKeys::File(path), false) => Some(KeyRing::add_key_to_file(path)?),
                    (MasterKeys::Text(_), false) => {
                        note("the key ring comes from AXONFLOW_MASTER_KEYS: re-wrapping under its last key");
                        None
                    }
                    (MasterKeys::Command(_), false) => {
                        note("master keys live in the KMS: re-wrapping under the key it names as current");
                        None
                    }
                    (_, true) => None,
                };
                let rotation = services.vault.rotate().await.context("cannot rotate the keys")?;
                if json {
                    out(&json!({ "added_master_key": added, "rotation": rotation }).to_string());
                } else {
                    out(&format!(
                        "master key {}; {} data key(s) re-wrapped; new data key {}; {} retired (still open old data)",
                        rotation.master_key_id, rotation.rewrapped, rotation.data_key_id, rotation.retired
                    ));
                }
                Ok(true)
            })
        }
        KeysCommand::RetireMaster { store, id } => with_services(&store, async |services, config, json| {
            let MasterKeys::File(path) = &config.protection.master_keys else {
                bail!(
                    "the master keys are not in a key ring file: retire them where they are (variable or KMS)"
                );
            };
            let data_keys = services.store.data_keys().await.context("cannot read the data keys")?;
            if let Some(key) = data_keys.iter().find(|k| k.master_key_id == id) {
                bail!("data key {} is still wrapped by {id}: run `axonflow keys rotate` first", key.id);
            }
            let removed = KeyRing::remove_key_from_file(path, &id)?;
            if json {
                out(&json!({ "master_key_id": id, "removed": removed }).to_string());
            } else if removed {
                out(&format!("removed master key {id} from {}", path.display()));
            } else {
                out(&format!("no master key {id} in {}", path.display()));
            }
            Ok(removed)
        }),
    }
}

pub fn retention(command: RetentionCommand) -> ExitCode {
    let RetentionCommand::Run { store } = command;
    with_services(&store, async |services, _config, json| {
        let report = services.retention.run().await.context("retention failed")?;
        if json {
            out(&serde_json::to_string(&report)?);
        } else {
            out(&format!(
                "deleted {} audit record(s) older than {} in {} batch(es); purged {} erased user(s)",
                report.audit_records_deleted,
                report.audit_cutoff,
                report.batches,
                report.erased_subjects_purged
            ));
        }
        Ok(true)
    })
}

pub fn subject(command: SubjectCommand) -> ExitCode {
    let args = match &command {
        SubjectCommand::Export(args) | SubjectCommand::Erase(args) => args,
        SubjectCommand::Rectify { subject, .. } | SubjectCommand::Restrict { subject, .. } => subject,
    };
    let store = &args.store;
    with_services(store, async |services, _config, json| {
        let tenant = license::TenantId::new(&args.tenant).map_err(|_| anyhow::anyhow!("invalid --tenant"))?;
        let user = read_user(&args.user)?;
        let actor = Principal {
            key_id: operator(),
            tenant: tenant.clone(),
            kind: license::KeyKind::Admin,
            tier: license::Tier::Plus,
            service: None,
            permissions: license::PermissionSet::new(),
            grace_remaining: None,
        };
        let subjects = &services.subjects;
        let tenant = tenant.as_str();
        match &command {
            SubjectCommand::Export(_) => {
                let export = subjects.export(&actor, tenant, &user).await?;
                out(&serde_json::to_string_pretty(&export)?);
            }
            SubjectCommand::Erase(_) => {
                let erasure = subjects.erase(&actor, tenant, &user).await?;
                if json {
                    out(&serde_json::to_string(&erasure)?);
                } else {
                    out(&format!(
                        "erased {}: its key is destroyed and its records read DELETED_USER; the tombstone goes \
                         after {}",
                        erasure.subject_id, erasure.purge_after
                    ));
                }
            }
            SubjectCommand::Rectify { set, .. } => {
                let mut changes = serde_json::Map::new();
                for assignment in set {
                    let Some((field, value)) = assignment.split_once('=') else {
                        bail!("--set takes FIELD=VALUE (or FIELD= to remove the field)");
                    };
                    let value = if value.is_empty() { serde_json::Value::Null } else { value.into() };
                    changes.insert(field.to_owned(), value);
                }
                let profile = subjects.rectify(&actor, tenant, &user, &changes).await?;
                let fields: Vec<&String> = profile.keys().collect();
                out(&if json {
                    json!({ "fields": fields }).to_string()
                } else {
                    format!("profile fields: {fields:?}")
                });
            }
            SubjectCommand::Restrict { lift, .. } => {
                let subject_id = subjects.restrict(&actor, tenant, &user, !lift).await?;
                let state = if *lift { "lifted" } else { "restricted" };
                out(&if json {
                    json!({ "subject_id": subject_id, "restricted": !lift }).to_string()
                } else {
                    format!("{subject_id}: processing {state}")
                });
            }
        }
        Ok(true)
    })
}

/// The user id, from the argument or, for `-`, standard input (so it stays out of shell history).
fn read_user(arg: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read the user id from standard input")?;
    let user = text.trim().to_owned();
    if user.is_empty() {
        bail!("no user id on standard input");
    }
    Ok(user)
}
