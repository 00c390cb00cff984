//! Drivers and ORMs on a [`Database`](crate::Database)'s working copy, one
//! Cargo feature each. Every one of them links the same SQLite library as
//! this crate (`libsqlite3-sys`, through rusqlite 0.34 to 0.37), so an
//! application adds this crate beside its driver and nothing clashes.
//!
//! | feature | module | gives |
//! |---|---|---|
//! | `sqlx` | [`sqlx`](self) | an `sqlx::SqlitePool` |
//! | `sea-orm` | `sea_orm` | a `sea_orm::DatabaseConnection` over that pool |
//! | `diesel` | `diesel` | a `diesel::SqliteConnection` |
//!
//! rusqlite needs no adapter: [`Session`](crate::Session) hands out a
//! `rusqlite::Connection`, and `Connection::open(db.path())` works on a
//! [`Database`](crate::Database).

#[cfg(feature = "diesel")]
pub mod diesel;
#[cfg(feature = "sea-orm")]
pub mod sea_orm;
#[cfg(feature = "sqlx")]
pub mod sqlx;
