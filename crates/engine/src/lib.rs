//! The AxonFlow pipeline, free of HTTP: authenticate → authorize → detect → evaluate → act → audit.
//!
//! Every request path of the server goes through the services here, built once by the binary and injected.

pub mod audit;
pub mod auth;
pub mod builtins;
mod contexts;
pub mod control;
pub mod journal;
pub mod json;
pub mod keys;
pub mod limits;
pub mod policies;
pub mod retention;
pub mod secrets;
pub mod sessions;
pub mod shared;
pub mod spool;
pub mod static_policies;
pub mod subjects;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod user_tokens;
pub mod vault;

pub use audit::{
    AuditEntry, AuditError, AuditLog, AuditOptions, AuditReceipt, AuditStartError, AuditWriter, Details,
};
pub use auth::{AuthFailure, Authenticator, AuthenticatorConfig, PresentedCredential, Principal};
pub use contexts::{ApprovalStats, DEFAULT_MAX_APPROVALS};
pub use control::{
    ApprovedContext, Check, Checked, ControlOptions, ControlPlane, EngineError, LlmCall, LlmUsage, McpOutput,
    ProxyResponse, StageTimings, ToolCall,
};
pub use keys::{KeyError, KeyService, NewKey};
pub use limits::{FailureLimiter, LimitError, RateLimitStatus, RequestLimiter};
pub use policies::{LifecycleError, PolicyLifecycle};
pub use retention::{Retention, RetentionError, RetentionPolicy, RetentionProfile, RetentionReport};
pub use secrets::{ConnectorSecrets, SecretError, SecretInfo};
pub use sessions::{NewSession, SessionError, Sessions};
pub use shared::{InvalidRedisUrl, RedisOptions, RedisState, SharedStateUnavailable, StateBackend};
pub use subjects::{DELETED_USER, Erasure, SubjectError, SubjectExport, SubjectOptions, Subjects};
pub use user_tokens::{EndUser, UserTokenError, UserTokens};
pub use vault::{Rotation, Vault, VaultError};
