//! Route handlers, one module per area. Handlers translate HTTP to domain calls and back; nothing else.

pub(crate) mod health;
pub(crate) mod keys;
