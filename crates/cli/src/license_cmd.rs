//! `axonflow license …` and `axonflow emergency-access …`: key management for operators, on the deployment's
//! own store and key files.

use std::io::Read;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use engine::{NewKey, PresentedCredential};
use license::{
    Claims, Environment, KeyKind, Permission, PermissionSet, ServiceIdentity, ServiceName, ServiceType,
    TenantId, Tier, inspect_unverified,
};
use serde_json::json;
use store::CredentialRow;
use types::{Secret, UnixMillis};

use crate::cli::{EmergencyCommand, IssueArgs, LicenseCommand};
use crate::serve::{Services, Writer};
use crate::{load_for_store, report_problems};

pub fn run(command: LicenseCommand) -> ExitCode {
    let store_args = match &command {
        LicenseCommand::Issue(args) => &args.store,
        LicenseCommand::Inspect { store, .. }
        | LicenseCommand::Verify { store, .. }
        | LicenseCommand::Rotate { store, .. }
        | LicenseCommand::Revoke { store, .. }
        | LicenseCommand::List { store, .. } => store,
    };
    let json = store_args.json;
    if let LicenseCommand::Inspect { key, .. } = &command {
        return finish(inspect(key.as_deref(), json));
    }
    let config = match load_for_store(store_args) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    crate::logging::init(config.log_format, "warn");
    finish(block_on(async move {
        let services = Services::open(&config, Writer::Tool).await?;
        let result = run_on(&services, &config, command, json).await;
        services.close().await;
        result
    }))
}

async fn run_on(
    services: &Services,
    config: &crate::config::Config,
    command: LicenseCommand,
    json: bool,
) -> Result<bool> {
    {
        match command {
            LicenseCommand::Issue(args) => issue(services, config, args).await,
            LicenseCommand::Verify { key, .. } => verify(services, key.as_deref(), json).await,
            LicenseCommand::Rotate { key_id, overlap_hours, .. } => {
                let overlap = Duration::from_secs(u64::from(overlap_hours) * 3600);
                let (key, row) = services
                    .keys
                    .rotate(&key_id, overlap, &operator())
                    .await
                    .context("cannot rotate the key")?;
                print_key(&key, &row, json);
                note(&format!(
                    "{key_id} stops working in {overlap_hours} h; update the secret store and restart clients"
                ));
                Ok(true)
            }
            LicenseCommand::Revoke { key_id, reason, .. } => {
                let row = services
                    .keys
                    .revoke(&key_id, &reason, &operator())
                    .await
                    .context("cannot revoke the key")?;
                if json {
                    out(&credential_json(&row).to_string());
                } else {
                    out(&format!("revoked {}", row.key_id));
                }
                Ok(true)
            }
            LicenseCommand::List { tenant, .. } => {
                let tenant =
                    tenant.map(|t| TenantId::new(&t)).transpose().map_err(|_| anyhow!("invalid --tenant"))?;
                let rows = services.keys.list(tenant.as_ref()).await.context("cannot list keys")?;
                list(&rows, json);
                Ok(true)
            }
            LicenseCommand::Inspect { .. } => Ok(true),
        }
    }
}

pub fn run_emergency(command: EmergencyCommand) -> ExitCode {
    let EmergencyCommand::Grant { store, reason, tenant, ttl_minutes } = command;
    let config = match load_for_store(&store) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    crate::logging::init(config.log_format, "warn");
    finish(block_on(async move {
        if reason.trim().is_empty() {
            bail!("--reason is required");
        }
        if !(1..=1440).contains(&ttl_minutes) {
            bail!("--ttl-minutes must be between 1 and 1440");
        }
        let services = Services::open(&config, Writer::Tool).await?;
        let now = services.clock.now();
        let new = NewKey {
            kind: KeyKind::Emergency,
            tier: Tier::Plus,
            tenant: TenantId::new(&tenant).map_err(|_| anyhow!("invalid --tenant"))?,
            service: None,
            environment: config.license.environment,
            permissions: KeyKind::Emergency.default_permissions(),
            expires_at: now.plus_millis(i64::from(ttl_minutes) * 60_000),
        };
        let granted = services.keys.grant_emergency(new, &operator(), reason.trim()).await;
        services.close().await;
        let (key, row) = granted.context("cannot grant emergency access")?;
        tracing::warn!(key_id = %row.key_id, tenant = %tenant, reason = %reason.trim(), ttl_minutes, "emergency access granted");
        print_key(&key, &row, store.json);
        note(&format!(
            "emergency credential {} expires in {ttl_minutes} min; every use is flagged",
            row.key_id
        ));
        Ok(true)
    }))
}

async fn issue(services: &Services, config: &crate::config::Config, args: IssueArgs) -> Result<bool> {
    let kind = KeyKind::from_str(&args.kind).map_err(|_| anyhow!("--kind must be service, user or admin"))?;
    if kind == KeyKind::Emergency {
        bail!("emergency credentials are granted with `axonflow emergency-access grant`");
    }
    let service = match (args.service, args.service_type) {
        (Some(name), service_type) => Some(ServiceIdentity {
            name: ServiceName::new(&name).map_err(|_| anyhow!("invalid --service"))?,
            service_type: ServiceType::new(service_type.as_deref().unwrap_or("backend-service"))
                .map_err(|_| anyhow!("invalid --type"))?,
        }),
        (None, Some(_)) => bail!("--type needs --service"),
        (None, None) => None,
    };
    let permissions = if args.permissions.is_empty() {
        kind.default_permissions()
    } else {
        let mut set = PermissionSet::new();
        for text in &args.permissions {
            let permission =
                Permission::from_str(text).map_err(|error| anyhow!("--permission {text:?}: {error}"))?;
            set.insert(permission);
        }
        set
    };
    let new = NewKey {
        kind,
        tier: Tier::from_str(&args.tier).map_err(|_| anyhow!("--tier must be PRO, ENT or PLUS"))?,
        tenant: TenantId::new(&args.tenant).map_err(|_| anyhow!("invalid --tenant"))?,
        service,
        environment: match args.env {
            Some(env) => {
                Environment::from_str(&env).map_err(|_| anyhow!("--env must be dev, staging or prod"))?
            }
            None => config.license.environment,
        },
        permissions,
        expires_at: UnixMillis::parse_date_or_rfc3339(&args.expires)
            .ok_or_else(|| anyhow!("--expires must be a date (2027-12-31) or an RFC 3339 timestamp"))?,
    };
    let (key, row) = services.keys.issue(new, &operator()).await.context("cannot issue the key")?;
    print_key(&key, &row, args.store.json);
    Ok(true)
}

async fn verify(services: &Services, key: Option<&str>, json: bool) -> Result<bool> {
    let key = read_key(key)?;
    match services.authenticator.authenticate(PresentedCredential::LicenseKey(key.expose())).await {
        Ok(principal) => {
            let grace = principal.grace_remaining.map(|d| d.as_secs());
            if json {
                out(&json!({"valid": true, "key_id": principal.key_id, "tenant_id": principal.tenant.as_str(),
                    "kind": principal.kind.as_str(), "grace_seconds_remaining": grace})
                .to_string());
            } else {
                let grace = grace.map(|s| format!(" (expired: in grace, {s} s left)")).unwrap_or_default();
                out(&format!(
                    "valid: key {} of tenant {} ({}){grace}",
                    principal.key_id,
                    principal.tenant,
                    principal.kind.as_str()
                ));
            }
            Ok(true)
        }
        Err(failure) => {
            if json {
                out(&json!({"valid": false, "reason": failure.code(), "message": failure.to_string()})
                    .to_string());
            } else {
                out(&format!("invalid: {failure}"));
            }
            Ok(false)
        }
    }
}

fn inspect(key: Option<&str>, json: bool) -> Result<bool> {
    let key = read_key(key)?;
    let claims = inspect_unverified(key.expose()).map_err(|error| anyhow!("{error}"))?;
    if json {
        out(&claims_json(&claims).to_string());
    } else {
        out("claims (NOT verified: use `axonflow license verify` to check a key)");
        for (name, value) in claims_json(&claims).as_object().into_iter().flatten() {
            out(&format!("  {name}: {}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)));
        }
    }
    Ok(true)
}

fn read_key(key: Option<&str>) -> Result<Secret<String>> {
    match key {
        Some(key) if key != "-" => Ok(Secret::new(key.trim().to_owned())),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(16 * 1024)
                .read_to_string(&mut text)
                .context("cannot read the key from stdin")?;
            Ok(Secret::new(text.trim().to_owned()))
        }
    }
}

fn claims_json(claims: &Claims) -> serde_json::Value {
    json!({
        "key_id": claims.key_id.as_str(),
        "kind": claims.kind.as_str(),
        "tier": claims.tier.as_str(),
        "tenant_id": claims.tenant.as_str(),
        "service": claims.service.as_ref().map(|s| json!({"name": s.name.as_str(), "type": s.service_type.as_str()})),
        "environment": claims.environment.as_str(),
        "permissions": claims.permissions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "issued_at": claims.issued_at.to_rfc3339(),
        "expires_at": claims.expires_at.to_rfc3339(),
    })
}

fn credential_json(row: &CredentialRow) -> serde_json::Value {
    json!({
        "key_id": row.key_id,
        "tenant_id": row.tenant_id,
        "kind": row.kind,
        "tier": row.tier,
        "service": row.service_name.as_ref().map(|name| json!({"name": name, "type": row.service_type})),
        "environment": row.environment,
        "permissions": row.permissions.split(' ').filter(|p| !p.is_empty()).collect::<Vec<_>>(),
        "issued_at": row.issued_at.to_rfc3339(),
        "expires_at": row.expires_at.to_rfc3339(),
        "revoked_at": row.revoked_at.map(UnixMillis::to_rfc3339),
        "revocation_reason": row.revocation_reason,
        "replaced_by": row.replaced_by,
    })
}

fn print_key(key: &Secret<String>, row: &CredentialRow, json: bool) {
    if json {
        out(&json!({"key": key.expose(), "credential": credential_json(row)}).to_string());
    } else {
        out(key.expose());
    }
}

fn list(rows: &[CredentialRow], json: bool) {
    if json {
        out(&serde_json::Value::Array(rows.iter().map(credential_json).collect()).to_string());
        return;
    }
    out(&format!(
        "{:<34} {:<16} {:<9} {:<5} {:<8} {:<24} {}",
        "KEY ID", "TENANT", "KIND", "TIER", "ENV", "EXPIRES", "REVOKED"
    ));
    for row in rows {
        out(&format!(
            "{:<34} {:<16} {:<9} {:<5} {:<8} {:<24} {}",
            row.key_id,
            row.tenant_id,
            row.kind,
            row.tier,
            row.environment,
            row.expires_at.to_rfc3339(),
            row.revoked_at.map_or_else(|| "-".to_owned(), UnixMillis::to_rfc3339)
        ));
    }
}

/// Who ran the command, for the audit trail: the operating-system user.
pub(crate) fn operator() -> String {
    let user =
        std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned());
    format!(
        "cli:{}",
        user.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).take(64).collect::<String>()
    )
}

pub(crate) fn block_on<F: std::future::Future<Output = Result<bool>>>(future: F) -> Result<bool> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(future)
}

#[allow(clippy::print_stderr)]
pub(crate) fn finish(result: Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
pub(crate) fn out(line: &str) {
    println!("{line}");
}

#[allow(clippy::print_stderr)]
pub(crate) fn note(line: &str) {
    eprintln!("{line}");
}
