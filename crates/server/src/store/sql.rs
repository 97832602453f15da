//! The little SQL interface the store's queries are written against, so one statement text serves
//! every backend: `$N` placeholders, parameters as [`Param`], rows read by column position.

use super::StoreError;

/// A bound parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// A column value as read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Real(v) => write!(f, "{v}"),
            Self::Text(v) => f.write_str(v),
            Self::Blob(v) => f.write_str(&hex::encode(v)),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, StoreError> {
        self.0.get(i).ok_or(StoreError::Decode { column: i, expected: "a column" })
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            _ => Err(StoreError::Decode { column: i, expected: "an integer" }),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            Value::Text(v) => Ok(v.clone()),
            _ => Err(StoreError::Decode { column: i, expected: "text" }),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// What a read may do: run queries. A read's work gets only this, so it cannot write: this does
/// not compile.
///
/// ```compile_fail
/// use provisio_server::store::{Conn, Store, StoreError};
/// async fn erase(store: Store) -> Result<u64, StoreError> {
///     store.read(|conn| conn.execute("DELETE FROM users", &[])).await
/// }
/// ```
///
/// (`Store::write` gives a [`Conn`], which queries and changes.)
pub trait Query {
    /// Runs one statement and collects its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError>;

    fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or(StoreError::NoRow)
    }
}

/// A connection inside a write transaction: queries and changes.
pub trait Conn: Query {
    /// Runs one statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;
    /// Runs several parameterless statements (migrations, test fixtures).
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Runs one statement whose answer the work does not need. A backend may send it together
    /// with the next statement (PostgreSQL, inside a transaction), so its error can surface
    /// there or at commit: only for statements whose failure fails the whole transaction.
    fn defer(&mut self, sql: &str, params: &[Param<'_>]) -> Result<(), StoreError> {
        self.execute(sql, params).map(drop)
    }

    /// The error for a compare-and-set that found the row changed by a concurrent transaction:
    /// the backend attempts the whole transaction again (SQLite's single writer never sees one).
    fn conflict(&mut self, what: &str) -> StoreError {
        StoreError::Conflict(what.to_string())
    }
}
