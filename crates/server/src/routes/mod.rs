//! Route handlers, one module per area. Handlers translate HTTP to domain calls and back; nothing else.

pub(crate) mod audit;
pub(crate) mod gateway;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod mcp;
pub(crate) mod policies;
pub(crate) mod protection;
pub(crate) mod proxy;
pub(crate) mod static_policies;
