//! `axonflow serve | agent | orchestrator`: wires the store, TLS and routers from the configuration, binds the
//! listeners, announces them, and runs until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use server::tls::{LocalPki, ServerIdentity, create_private_dir, server_config};
use std::sync::Arc;

use crypto::{KeyRing, MasterKeyProvider};
use detect::{DetectorConfig, DetectorSet};
use engine::journal::JournalOptions;
use engine::{
    AuditLog, AuditOptions, AuditWriter, Authenticator, AuthenticatorConfig, FailureLimiter, KeyService,
    RedisOptions, RedisState, RequestLimiter, StateBackend,
};
use engine::{ConnectorSecrets, ControlOptions, ControlPlane, Retention, SubjectOptions, Subjects, Vault};
use license::Verifier;
use server::{
    AppParts, AppState, HttpLimits, Listener, Metrics, RedirectListener, RemoteOrchestrator, Security,
    Service,
};
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use types::{Clock, SystemClock};

use crate::config::{Config, MasterKeys};
use crate::identity;

/// Which services this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Both,
    AgentOnly,
    OrchestratorOnly,
}

impl Mode {
    fn runs(self, service: Service) -> bool {
        matches!(
            (self, service),
            (Mode::Both, _)
                | (Mode::AgentOnly, Service::Agent)
                | (Mode::OrchestratorOnly, Service::Orchestrator)
        )
    }
}

pub async fn run(config: Config, mode: Mode) -> Result<()> {
    create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let tls_identity = tls_identity(&config)?;
    let tls = server_config(tls_identity, config.min_tls_version).context("cannot configure TLS")?;

    let services = Services::open(&config, Writer::Server).await?;
    if let Some(path) = identity::bootstrap_admin(
        &services.keys,
        &services.store,
        services.clock.as_ref(),
        &config.license,
        &config.data_dir,
    )
    .await?
    {
        announce_stderr(&format!("bootstrap admin credential written to {} (mode 0600)", path.display()));
    }

    let metrics = Metrics::new();
    let limits =
        HttpLimits { max_body_bytes: config.max_body_bytes, request_timeout: config.request_timeout };
    let remote_orchestrator = match mode {
        Mode::AgentOnly => {
            let url = config.orchestrator_url.as_deref().context(
                "`axonflow agent` needs orchestrator.url (AXONFLOW_ORCHESTRATOR_URL or --orchestrator-url)",
            )?;
            let remote = RemoteOrchestrator::new(url, &config.ca_file, config.min_tls_version)
                .context("cannot set up the channel to the orchestrator")?;
            Some(remote)
        }
        _ => None,
    };
    let (control, policies) = governance(&config, &services).await?;
    let llm = match (&config.llm.url, mode) {
        (Some(url), Mode::Both | Mode::OrchestratorOnly) => Some(
            server::LlmProvider::new(
                &config.llm.provider,
                url,
                &config.llm.model,
                config.llm.api_key.as_ref().map(|k| types::Secret::new(k.expose().clone())),
                config.llm.timeout,
            )
            .context("invalid llm.url")?,
        ),
        _ => None,
    };
    let shared_state = shared_state(config.redis.as_ref())?;
    let store = services.store.clone();
    let audit_writer = services.audit_writer;
    let maintenance_parts =
        MaintenanceParts { vault: services.vault, retention: services.retention, policies: policies.clone() };
    let state = AppState::new(AppParts {
        policies,
        llm,
        control,
        operator_tenant: config.license.bootstrap_tenant.clone(),
        subjects: services.subjects,
        secrets: services.secrets,
        audit: services.audit,
        store: services.store,
        metrics: metrics.clone(),
        limits,
        security: Security {
            sessions: engine::Sessions::new(
                config.license.session_idle,
                std::time::Duration::from_secs(12 * 3600),
                services.clock.clone(),
                &shared_state,
            ),
            user_tokens: user_tokens(&config.license)?,
            authenticator: services.authenticator,
            keys: services.keys,
            requests: RequestLimiter::new(&config.license.rate_limits, &shared_state),
            failures: FailureLimiter::new(config.license.max_failures_per_minute, &shared_state),
            shared_state,
        },
        clock: services.clock,
        remote_orchestrator,
    });

    let mut listeners = Vec::new();
    let mut announced = Vec::new();
    for (service, addr, name) in [
        (Service::Agent, config.agent_listen, "agent"),
        (Service::Orchestrator, config.orchestrator_listen, "orchestrator"),
    ] {
        if !mode.runs(service) {
            continue;
        }
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {name}"))?;
        let bound = tcp.local_addr()?;
        announced.push(format!("{name}=https://{}", display_addr(bound)));
        let router = match service {
            Service::Agent => server::agent_router(state.clone()),
            Service::Orchestrator => server::orchestrator_router(state.clone()),
        };
        listeners.push(Listener { service, tcp, tls: tls.clone(), router });
    }
    let redirect = match config.redirect_listen {
        Some(addr) => {
            let tcp = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for redirects"))?;
            let https_port =
                listeners.first().map_or(8443, |l| l.tcp.local_addr().map_or(8443, |a| a.port()));
            announced.push(format!("redirect=http://{}", display_addr(tcp.local_addr()?)));
            Some(RedirectListener { tcp, https_port })
        }
        None => None,
    };

    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    let maintenance_task =
        tokio::spawn(maintenance(maintenance_parts, config.protection.retention_interval, shutdown.clone()));
    announce(&format!("listening {} ca={}", announced.join(" "), config.ca_file.display()))?;

    server::serve(listeners, redirect, metrics, shutdown, config.drain_timeout).await?;
    let _ = maintenance_task.await;
    audit_writer.finish().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The store and identity services shared by `serve` and the key-management commands.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub authenticator: Arc<Authenticator>,
    pub keys: Arc<KeyService>,
    pub audit: AuditLog,
    pub audit_writer: AuditWriter,
    pub vault: Arc<Vault>,
    pub subjects: Arc<Subjects>,
    pub secrets: Arc<ConnectorSecrets>,
    pub retention: Arc<Retention>,
}

/// Which audit chain a process writes: the server its node's, command-line tools a chain of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    Server,
    Tool,
}

impl Services {
    pub async fn open(config: &Config, writer: Writer) -> Result<Services> {
        create_private_dir(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
        let store_options = store::OpenOptions {
            max_connections: config.max_connections,
            durability: config.durability,
            ..store::OpenOptions::default()
        };
        let store = store::open(config.database_url.expose(), &store_options)
            .await
            .context("cannot open the database")?;
        tracing::info!(backend = store.backend().as_str(), "store ready");
        let node_keys = identity::load_or_create(&config.license, &config.data_dir)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let authenticator = Arc::new(Authenticator::new(
            AuthenticatorConfig {
                verifier: Verifier::new(node_keys.public),
                fingerprint_key: node_keys.fingerprint.clone(),
                environment: config.license.environment,
                grace: config.license.grace,
                cache_ttl: config.license.cache_ttl,
            },
            store.clone(),
            clock.clone(),
        ));
        let node = identity::node_id(&config.data_dir)?;
        let chain = match writer {
            Writer::Server => node,
            Writer::Tool => format!("{node}-cli"),
        };
        let audit_key = identity::load_or_create_audit_key(&config.data_dir)?;
        let (audit, audit_writer) = AuditLog::start(
            store.clone(),
            chain,
            audit_key,
            clock.clone(),
            audit_options(config, writer, &store),
        )
        .await
        .context("cannot start the audit writer")?;
        let keys = Arc::new(
            KeyService::new(node_keys.issuer, node_keys.fingerprint, store.clone(), clock.clone())
                .with_authenticator(authenticator.clone())
                .with_audit(audit.clone()),
        );
        if let MasterKeys::File(path) = &config.protection.master_keys
            && !path.exists()
            && let Some(key) = store.data_keys().await.context("cannot read the data keys")?.first()
        {
            // A new key ring would open nothing already sealed: say so instead of creating one.
            anyhow::bail!(
                "the master key ring {} is missing, but the database holds data keys wrapped by master key {}: \
                 restore the key ring from its backup (or set encryption.kms_command / AXONFLOW_MASTER_KEYS as \
                 this deployment does)",
                path.display(),
                key.master_key_id
            );
        }
        let provider = master_key_provider(&config.protection.master_keys)?;
        let vault = Arc::new(
            Vault::load(store.clone(), provider, clock.clone()).await.context("cannot load the data keys")?,
        );
        let subject_options = SubjectOptions {
            erasure_grace: config.protection.erasure_grace,
            cache_ttl: config.protection.subject_cache,
        };
        let subjects = Arc::new(Subjects::new(
            store.clone(),
            vault.clone(),
            audit.clone(),
            clock.clone(),
            subject_options,
        ));
        let secrets =
            Arc::new(ConnectorSecrets::new(store.clone(), vault.clone(), audit.clone(), clock.clone()));
        let retention = Arc::new(Retention::new(
            store.clone(),
            audit.clone(),
            identity::load_or_create_audit_key(&config.data_dir)?,
            subjects.clone(),
            clock.clone(),
            config.protection.retention,
        ));
        Ok(Services {
            store,
            clock,
            authenticator,
            keys,
            audit,
            audit_writer,
            vault,
            subjects,
            secrets,
            retention,
        })
    }

    /// Flushes the audit trail and closes the store.
    pub async fn close(self) {
        drop(self.audit);
        self.audit_writer.finish().await;
        self.store.close().await;
    }
}

/// The audit journal's directory under the data directory.
pub const AUDIT_JOURNAL_DIR: &str = "audit-journal";

/// On the embedded database the server journals audit records (`DATA_DIR/audit-journal`), so that no request
/// waits on SQLite; on PostgreSQL it spools them when configured to. Command-line tools do neither: they
/// store each record before going on, or fail.
fn audit_options(config: &Config, writer: Writer, store: &Arc<dyn store::Store>) -> AuditOptions {
    match (writer, store.backend()) {
        (Writer::Tool, _) => AuditOptions::default(),
        (Writer::Server, store::Backend::Sqlite) => {
            let sync = config.durability == store::Durability::PowerLoss;
            let journal = JournalOptions::new(config.data_dir.join(AUDIT_JOURNAL_DIR), sync);
            // A spool left by an earlier version is still replayed at start; nothing new goes to it.
            let spool_dir = config.protection.audit_spool.clone();
            AuditOptions { journal: Some(journal), spool_dir, ..AuditOptions::default() }
        }
        (Writer::Server, store::Backend::Postgres) => {
            AuditOptions { spool_dir: config.protection.audit_spool.clone(), ..AuditOptions::default() }
        }
    }
}

/// The master keys of envelope encryption: the key ring in the environment, or the key ring file (created with
/// one key on first use).
pub fn master_key_provider(keys: &MasterKeys) -> Result<Arc<dyn MasterKeyProvider>> {
    let ring = match keys {
        MasterKeys::Command(program) => {
            let timeout = std::time::Duration::from_secs(30);
            return Ok(Arc::new(crypto::CommandProvider::new(program.clone(), timeout)));
        }
        MasterKeys::Text(text) => KeyRing::from_text(text, "AXONFLOW_MASTER_KEYS")?,
        MasterKeys::File(path) => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir).context("cannot create the keys directory")?;
            }
            KeyRing::open_or_create(path)?
        }
    };
    Ok(Arc::new(ring))
}

/// How often a node looks for policy versions promoted on another node.
const POLICY_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies retention every `interval`, re-reads the data keys every minute (a rotation made by another process
/// reaches this one) and the active policy versions every few seconds (a promotion on another node), until
/// `shutdown`.
async fn maintenance(
    services: MaintenanceParts,
    interval: Option<std::time::Duration>,
    shutdown: CancellationToken,
) {
    let refresh_every = std::time::Duration::from_secs(60);
    let mut next_retention =
        interval.map(|i| tokio::time::Instant::now() + i.min(std::time::Duration::from_secs(60)));
    let mut refresh = tokio::time::interval(refresh_every);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut policy_sync = tokio::time::interval(POLICY_SYNC_EVERY);
    policy_sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let retention_due = async {
            match next_retention {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = policy_sync.tick() => {
                match services.policies.sync().await {
                    Ok(changed) if !changed.is_empty() => {
                        tracing::info!(scopes = ?changed, "policy versions promoted elsewhere are now live here");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(error = %error, "cannot read the active policy versions"),
                }
            }
            _ = refresh.tick() => {
                if let Err(error) = services.vault.refresh().await {
                    tracing::error!(error = %error, "cannot re-read the data keys");
                }
            }
            () = retention_due => {
                match services.retention.run().await {
                    Ok(report) => tracing::info!(
                        audit_records_deleted = report.audit_records_deleted,
                        erased_subjects_purged = report.erased_subjects_purged,
                        cutoff = %report.audit_cutoff,
                        "retention applied"
                    ),
                    Err(error) => tracing::error!(error = %error, "retention failed; it runs again at the next interval"),
                }
                next_retention = interval.map(|i| tokio::time::Instant::now() + i);
            }
        }
    }
}

struct MaintenanceParts {
    vault: Arc<Vault>,
    retention: Arc<Retention>,
    policies: Arc<engine::PolicyLifecycle>,
}

/// Where rate limits, lockouts and admin sessions live: Redis when configured (shared by every node), else this
/// process's memory. A Redis that is down at start is not an error: the node starts, answers 503 to requests
/// that need it and reports not ready until it is back.
fn shared_state(redis: Option<&crate::config::RedisConfig>) -> Result<StateBackend> {
    let Some(redis) = redis else { return Ok(StateBackend::Memory) };
    let options = RedisOptions { key_prefix: redis.key_prefix.clone(), timeout: redis.timeout };
    let state = RedisState::connect(&redis.url, options)?;
    tracing::info!(key_prefix = %redis.key_prefix, "rate limits, lockouts and sessions are shared through redis");
    Ok(StateBackend::Redis(state))
}

/// How end-user tokens are checked: against the configured issuer's keys, or as opaque ids.
fn user_tokens(config: &crate::config::LicenseConfig) -> Result<engine::UserTokens> {
    let Some((issuer, keys)) = &config.user_tokens else { return Ok(engine::UserTokens::Opaque) };
    let audience = config.user_token_audience.as_deref();
    match keys {
        crate::config::UserTokenKeys::Jwks(path) => {
            let jwks =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            engine::UserTokens::from_jwks(&jwks, issuer, audience)
                .with_context(|| format!("{} is not a usable JWKS document", path.display()))
        }
        crate::config::UserTokenKeys::Secret(path) => {
            let secret = types::Secret::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .trim()
                    .as_bytes()
                    .to_vec(),
            );
            engine::UserTokens::from_secret(&secret, issuer, audience).context("invalid user-token secret")
        }
    }
}

/// The detectors, the validated policy bundle and the engine that joins them. A bundle that does not parse,
/// compile, fit the limits or pass its own tests stops the start: never deploy untested policies.
/// The live policy comes from `policy.bundle_dir` when set, else from the active stored version (the built-in
/// bundle is stored as the first version on a new deployment).
async fn governance(
    config: &Config,
    services: &Services,
) -> Result<(Arc<ControlPlane>, Arc<engine::PolicyLifecycle>)> {
    let detectors =
        Arc::new(DetectorSet::new(DetectorConfig::default()).context("cannot build the detectors")?);
    let bundle = match &config.policy.bundle_dir {
        Some(dir) => crate::bundle::load_paths(std::slice::from_ref(dir), config.policy.stage)?,
        None => {
            let sources = engine::PolicyLifecycle::startup_sources(
                &services.store,
                crate::bundle::default_sources(),
                services.clock.now(),
            )
            .await
            .context("cannot read the active policy version")?;
            policy::Bundle::from_layout(sources, config.policy.stage)
        }
    };
    let options = crate::bundle::compile_options(&detectors);
    let limits =
        policy::Limits { max_compile_time: config.policy.max_compile_time, ..policy::Limits::default() };
    let problems = policy::validate(&bundle, &options, &limits);
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path.as_deref().unwrap_or("bundle"), p.message))
            .collect();
        anyhow::bail!("the policy bundle was refused:\n  {}", list.join("\n  "));
    }
    let compiled = policy::CompiledPolicy::compile(&bundle, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(
        files = compiled.stats().files,
        bytes = compiled.stats().bytes,
        compile_us = compiled.stats().duration.as_micros() as u64,
        "policy bundle loaded"
    );
    let control = Arc::new(ControlPlane::new(
        detectors,
        Arc::new(compiled),
        services.audit.clone(),
        services.subjects.clone(),
        services.clock.clone(),
        ControlOptions {
            policy_budget: config.policy.budget,
            mcp_max_rows: config.policy.mcp_max_rows,
            mcp_max_bytes: config.policy.mcp_max_bytes,
            pricing: std::collections::HashMap::new(),
            max_approvals: config.policy.max_approvals,
        },
    ));
    let mut lifecycle = engine::PolicyLifecycle::new(
        services.store.clone(),
        control.clone(),
        options,
        services.audit.clone(),
        services.clock.clone(),
    )
    .with_limits(limits);
    if config.policy.bundle_dir.is_some() {
        lifecycle = lifecycle.with_system_bundle_from_files();
    }
    let lifecycle = Arc::new(lifecycle);
    // Tenants' own bundles (and the system version's id) come from the store.
    lifecycle.sync().await.context("cannot load the stored policy versions")?;
    Ok((control, lifecycle))
}

/// The operator's certificate, or the local CA's (created on first start).
fn tls_identity(config: &Config) -> Result<ServerIdentity> {
    if let Some((cert, key)) = &config.own_certificate {
        return ServerIdentity::load(cert, key).context("cannot load the configured TLS certificate");
    }
    let pki = LocalPki::in_dir(&config.data_dir.join("tls"));
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    for addr in [config.agent_listen, config.orchestrator_listen] {
        if !addr.ip().is_unspecified() && !names.contains(&addr.ip().to_string()) {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(config.tls_hostnames.iter().cloned());
    if pki.ensure(&names).context("cannot create the local certificates")? {
        tracing::info!(ca = %pki.ca_cert.display(), "created local TLS certificates; clients trust them through the CA file");
    }
    pki.server_identity().context("cannot load the local certificate")
}

/// Listeners on an unspecified address are announced as `localhost`, which the certificate covers.
fn display_addr(addr: SocketAddr) -> String {
    match addr {
        addr if addr.ip().is_unspecified() => format!("localhost:{}", addr.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

/// A line for the person at the terminal (never a secret).
#[allow(clippy::print_stderr)]
fn announce_stderr(line: &str) {
    eprintln!("{line}");
}

#[allow(clippy::print_stdout)] // the announcement line is the command's output
fn announce(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_addresses() {
        let check =
            |addr: &str, expected: &str| assert_eq!(display_addr(addr.parse().expect("addr")), expected);
        check("127.0.0.1:8443", "127.0.0.1:8443");
        check("0.0.0.0:8443", "localhost:8443");
        check("[::]:9443", "localhost:9443");
        check("[::1]:9443", "[::1]:9443");
    }
}
