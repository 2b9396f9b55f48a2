//! Store integration tests: every test runs against SQLite and PostgreSQL, each in a fresh database.

mod audit;
mod credentials;
mod lifecycle;
mod policies;
mod protection;
