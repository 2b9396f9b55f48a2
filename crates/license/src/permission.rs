//! What a key may do: a small closed set of permissions, parsed from strings, with no wildcards.
//!
//! | string | grants | may be held by |
//! |---|---|---|
//! | `query` | run a query (proxy mode, MCP resource queries) | every kind |
//! | `policy:evaluate` | ask for a policy decision (pre-check, decide) | every kind |
//! | `mcp:<connector>:<operation>` | call one named operation of one MCP connector | service, admin, emergency |
//! | `admin:keys` | issue, list and revoke license keys | admin, emergency |
//! | `admin:connectors` | configure MCP connectors | admin, emergency |
//! | `admin:audit` | read the audit log | admin, emergency |
//! | `admin:policies` | change policy bundles | admin, emergency |
//! | `metrics:read` | scrape Prometheus metrics | service, admin, emergency |
//!
//! **Invariant:** a wildcard is not representable. Any `*` in a permission string is refused with
//! [`ErrorKind::WildcardPermission`], so `mcp:*:*`, `mcp:amadeus:*` and `*` can never reach a key: least
//! privilege means every MCP operation is named. No permission implies another; [`PermissionSet::allows`] is
//! plain membership, so what a key may do is exactly what it lists.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorKind, LicenseError, err};

/// Longest connector or operation name.
pub const MAX_MCP_NAME_LEN: usize = 64;

/// One permission. Build it with [`str::parse`]; its `Display` is the canonical string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Permission {
    Query,
    PolicyEvaluate,
    Mcp(McpOperation),
    AdminKeys,
    AdminConnectors,
    AdminAudit,
    AdminPolicies,
    MetricsRead,
}

/// A named operation of a named MCP connector, e.g. `amadeus` / `search_flights`. Never a wildcard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct McpOperation {
    connector: String,
    operation: String,
}

impl McpOperation {
    pub fn new(connector: &str, operation: &str) -> Result<McpOperation, LicenseError> {
        if connector.contains('*') || operation.contains('*') {
            return err(ErrorKind::WildcardPermission);
        }
        if !is_identifier(connector, MAX_MCP_NAME_LEN) || !is_identifier(operation, MAX_MCP_NAME_LEN) {
            return err(ErrorKind::InvalidPermission);
        }
        Ok(McpOperation { connector: connector.to_owned(), operation: operation.to_owned() })
    }

    pub fn connector(&self) -> &str {
        &self.connector
    }

    pub fn operation(&self) -> &str {
        &self.operation
    }
}

impl Permission {
    /// `mcp:<connector>:<operation>`.
    pub fn mcp(connector: &str, operation: &str) -> Result<Permission, LicenseError> {
        McpOperation::new(connector, operation).map(Permission::Mcp)
    }

    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Permission::AdminKeys
                | Permission::AdminConnectors
                | Permission::AdminAudit
                | Permission::AdminPolicies
        )
    }
}

impl FromStr for Permission {
    type Err = LicenseError;

    fn from_str(s: &str) -> Result<Permission, LicenseError> {
        if s.contains('*') {
            return err(ErrorKind::WildcardPermission);
        }
        match s {
            "query" => Ok(Permission::Query),
            "policy:evaluate" => Ok(Permission::PolicyEvaluate),
            "admin:keys" => Ok(Permission::AdminKeys),
            "admin:connectors" => Ok(Permission::AdminConnectors),
            "admin:audit" => Ok(Permission::AdminAudit),
            "admin:policies" => Ok(Permission::AdminPolicies),
            "metrics:read" => Ok(Permission::MetricsRead),
            _ => match s.strip_prefix("mcp:").and_then(|rest| rest.split_once(':')) {
                Some((connector, operation)) => Permission::mcp(connector, operation),
                None => err(ErrorKind::InvalidPermission),
            },
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Query => f.write_str("query"),
            Permission::PolicyEvaluate => f.write_str("policy:evaluate"),
            Permission::Mcp(op) => write!(f, "mcp:{}:{}", op.connector, op.operation),
            Permission::AdminKeys => f.write_str("admin:keys"),
            Permission::AdminConnectors => f.write_str("admin:connectors"),
            Permission::AdminAudit => f.write_str("admin:audit"),
            Permission::AdminPolicies => f.write_str("admin:policies"),
            Permission::MetricsRead => f.write_str("metrics:read"),
        }
    }
}

/// The permissions a key grants, in canonical order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn new() -> PermissionSet {
        PermissionSet::default()
    }

    /// Parses every string; the first invalid or wildcard one is the error.
    pub fn parse<'a>(strings: impl IntoIterator<Item = &'a str>) -> Result<PermissionSet, LicenseError> {
        strings.into_iter().map(str::parse).collect()
    }

    /// Whether `permission` is granted. Exact membership: nothing implies anything else.
    pub fn allows(&self, permission: &Permission) -> bool {
        self.0.contains(permission)
    }

    pub fn insert(&mut self, permission: Permission) -> bool {
        self.0.insert(permission)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> PermissionSet {
        PermissionSet(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a PermissionSet {
    type Item = &'a Permission;
    type IntoIter = std::collections::btree_set::Iter<'a, Permission>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// 1 to `max` characters of `A-Z a-z 0-9 . _ -`: no separators, no wildcards, no whitespace or control characters.
pub(crate) fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and compares the canonical form (or the error kind) with `expected`.
    fn check(input: &str, expected: Result<&str, ErrorKind>) {
        let actual = input.parse::<Permission>().map(|p| p.to_string()).map_err(|e| e.kind().clone());
        assert_eq!(actual, expected.map(str::to_owned), "input: {input:?}");
    }

    #[test]
    fn parses_the_documented_set() {
        check("query", Ok("query"));
        check("policy:evaluate", Ok("policy:evaluate"));
        check("admin:keys", Ok("admin:keys"));
        check("admin:connectors", Ok("admin:connectors"));
        check("admin:audit", Ok("admin:audit"));
        check("admin:policies", Ok("admin:policies"));
        check("mcp:amadeus:search_flights", Ok("mcp:amadeus:search_flights"));
        check("mcp:snowflake:query", Ok("mcp:snowflake:query"));
        check("mcp:my-crm.v2:Lookup_Account", Ok("mcp:my-crm.v2:Lookup_Account"));
    }

    #[test]
    fn refuses_wildcards_anywhere() {
        for input in
            ["*", "mcp:*:*", "mcp:amadeus:*", "mcp:*:query", "mcp:ama*:search", "admin:*", "query*", "**"]
        {
            check(input, Err(ErrorKind::WildcardPermission));
        }
    }

    #[test]
    fn refuses_everything_else() {
        for input in [
            "",
            "Query",
            "query ",
            " query",
            "policy",
            "policy:evaluate:extra",
            "admin",
            "admin:",
            "admin:root",
            "mcp",
            "mcp:",
            "mcp:amadeus",
            "mcp:amadeus:",
            "mcp::search",
            "mcp:amadeus:search:extra",
            "mcp:ama deus:search",
            "mcp:amadeus:search\n",
            "mcp:amadeus:séarch",
            "MCP:amadeus:search",
        ] {
            check(input, Err(ErrorKind::InvalidPermission));
        }
        check(&format!("mcp:{}:op", "c".repeat(MAX_MCP_NAME_LEN)), Ok(&format!("mcp:{}:op", "c".repeat(64))));
        check(&format!("mcp:{}:op", "c".repeat(MAX_MCP_NAME_LEN + 1)), Err(ErrorKind::InvalidPermission));
    }

    #[test]
    fn allows_is_exact_membership() {
        let set = PermissionSet::parse(["query", "mcp:amadeus:search_flights", "admin:audit"]).unwrap();
        let allows = |s: &str| set.allows(&s.parse().unwrap());
        assert!(allows("query"));
        assert!(allows("mcp:amadeus:search_flights"));
        assert!(allows("admin:audit"));
        assert!(!allows("policy:evaluate"));
        assert!(!allows("mcp:amadeus:search_hotels"));
        assert!(!allows("mcp:Amadeus:search_flights"));
        assert!(!allows("admin:keys"));
    }

    #[test]
    fn set_parse_stops_at_the_first_bad_entry() {
        let error = PermissionSet::parse(["query", "mcp:*:*"]).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::WildcardPermission);
    }
}
