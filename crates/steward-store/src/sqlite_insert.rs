//! Bulk inserts into SQLite with values bound in place: text is handed to SQLite as
//! `SQLITE_STATIC`, a pointer into the caller's rows, instead of being copied.
//!
//! rusqlite binds every text as `SQLITE_TRANSIENT`, so SQLite allocates (with the C
//! allocator), copies and later frees each value: in a 100k-identity import that was 24%
//! of the importing thread's instructions (callgrind), about as much as SQLite's own work
//! of inserting the rows. Binding in place needs the statement's raw handle, which
//! rusqlite keeps private, so [`StaticInsert`] prepares and owns its statement through
//! `rusqlite::ffi`. Its one way to run is [`StaticInsert::execute`], which binds every
//! parameter from a slice borrowed for the call, steps, resets and clears the bindings
//! before it returns: no pointer into the caller's values outlives the call.

use crate::error::StoreError;
use rusqlite::ffi;
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

/// Rows per `INSERT` statement when many are inserted: one execution of a statement with
/// this many rows saves SQLite's per-statement work (reset, bind checks, transaction and
/// cursor set-up) on all but one of them. Measured with callgrind on the importing thread
/// of a 100k-identity import (values still copied): 5.89 G instructions at 8 rows, 5.86 G
/// at 32 and 5.98 G at 128, against 7.56 G one row per statement.
pub const ROWS_PER_INSERT: usize = 32;

/// A parameter value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// An INTEGER.
    Integer(i64),
    /// TEXT, bound without a copy.
    Text(&'a str),
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Integer(value)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Param::Null, Param::Integer)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Param::Null, Param::Text)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(value: &'a Option<String>) -> Self {
        value.as_deref().into()
    }
}

/// The same values through rusqlite (copied), for single-row statements.
impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Integer(value) => ValueRef::Integer(value),
            Param::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

/// A prepared statement run with values bound in place (see the module documentation).
pub struct StaticInsert<'c> {
    statement: NonNull<ffi::sqlite3_stmt>,
    /// The connection, borrowed for as long as the statement lives.
    connection: &'c rusqlite::Connection,
    parameters: usize,
}

impl<'c> StaticInsert<'c> {
    /// Prepares `sql` on `connection`.
    pub fn prepare(connection: &'c rusqlite::Connection, sql: &str) -> rusqlite::Result<StaticInsert<'c>> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None))?;
        let mut statement = std::ptr::null_mut();
        // SAFETY: the connection handle is valid while `connection` is borrowed; the SQL
        // pointer and length describe `sql`, alive for the call; `statement` receives the
        // new statement (or null).
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                connection.handle(),
                sql.as_ptr().cast(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut statement,
                std::ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(last_error(connection, code));
        }
        let statement = NonNull::new(statement).ok_or_else(|| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), Some("empty statement".into()))
        })?;
        // SAFETY: `statement` is a valid prepared statement.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(statement.as_ptr()) } as usize;
        Ok(StaticInsert {
            statement,
            connection,
            parameters,
        })
    }

    /// Runs the statement once with `values`, one per parameter in order. Values are bound
    /// without copying; the bindings are cleared before this returns.
    pub fn execute(&mut self, values: &[Param<'_>]) -> rusqlite::Result<()> {
        assert_eq!(
            values.len(),
            self.parameters,
            "a statement of {} parameters run with {} values",
            self.parameters,
            values.len()
        );
        let statement = self.statement.as_ptr();
        let bound = values.iter().enumerate().try_for_each(|(index, value)| {
            let position = index as c_int + 1;
            // SAFETY: `statement` is valid and `position` is within its parameters. Text is
            // bound SQLITE_STATIC: SQLite keeps the pointer until the binding is replaced or
            // cleared, which happens below before `values` can be released.
            let code = unsafe {
                match *value {
                    Param::Null => ffi::sqlite3_bind_null(statement, position),
                    Param::Integer(integer) => ffi::sqlite3_bind_int64(statement, position, integer),
                    Param::Text(text) => match c_int::try_from(text.len()) {
                        Ok(length) => ffi::sqlite3_bind_text(
                            statement,
                            position,
                            text.as_ptr().cast(),
                            length,
                            ffi::SQLITE_STATIC(),
                        ),
                        Err(_) => ffi::SQLITE_TOOBIG,
                    },
                }
            };
            if code == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(last_error(self.connection, code))
            }
        });
        let outcome = bound.and_then(|()| {
            // SAFETY: `statement` is valid and every parameter is bound.
            match unsafe { ffi::sqlite3_step(statement) } {
                ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
                code => Err(last_error(self.connection, code)),
            }
        });
        // SAFETY: `statement` is valid. Reset ends the execution (its result was taken
        // above); clearing the bindings drops every pointer into `values`.
        unsafe {
            ffi::sqlite3_reset(statement);
            ffi::sqlite3_clear_bindings(statement);
        }
        outcome
    }
}

impl Drop for StaticInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is valid and finalized once, here.
        unsafe {
            ffi::sqlite3_finalize(self.statement.as_ptr());
        }
    }
}

/// The connection's error for the failed call that returned `code`, as rusqlite reports
/// errors (extended code and message). The connection's message is used only when its
/// last error is `code` (as rusqlite does): a code made here (TOOBIG for a text over
/// `i32::MAX` bytes) gets SQLite's text for the code, not whatever failed before.
fn last_error(connection: &rusqlite::Connection, code: c_int) -> rusqlite::Error {
    // SAFETY: the handle is valid; the messages are NUL-terminated strings owned by
    // SQLite, copied before any other call on the connection.
    let (extended, message) = unsafe {
        let handle = connection.handle();
        let extended = ffi::sqlite3_extended_errcode(handle);
        let text = if extended & 0xff == code & 0xff {
            ffi::sqlite3_errmsg(handle)
        } else {
            ffi::sqlite3_errstr(code)
        };
        (extended, CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    let extended = if extended & 0xff == code & 0xff { extended } else { code };
    rusqlite::Error::SqliteFailure(ffi::Error::new(extended), Some(message))
}

/// Inserts `rows` into `target` (`t (c1, …)`, `columns` columns) in groups of
/// [`ROWS_PER_INSERT`]; `row_params` appends one row's `columns` values (it gets the row's
/// index in `rows`).
///
/// A group is one `INSERT OR FAIL`: a broken constraint stops it at the failing row and
/// keeps the rows before it, so that, when foreign keys are not enforced (as in imports,
/// which are the groups' callers that matter), SQLite needs no statement journal to undo a
/// group. With `INSERT`'s default (`ABORT`) a multi-row statement inside a transaction
/// copies each page it is first to change into that journal (a temporary file during
/// imports), and a bulk load of 200,000 identities made 146,540 `pwrite` calls instead of
/// 51,648. An enforced foreign key keeps the journal, and a violation of one still undoes
/// the whole statement.
///
/// After a failed group, `changes()` rows of it are in the table, and the rest of the
/// group is inserted row by row, so that the failing row fails again alone and `error`
/// names it (after a foreign-key violation `changes()` is 0: the whole group goes again).
/// Should the rest go in without an error (an `AFTER INSERT` trigger that failed after its
/// row was counted, which no table of ours has), the group's error is returned for the last
/// row counted, never success. Callers roll back the transaction on any error. Other
/// errors may have ended the transaction, and are returned at once.
pub fn insert_grouped<'r, R>(
    connection: &rusqlite::Connection,
    target: &str,
    columns: usize,
    rows: &'r [R],
    mut row_params: impl FnMut(usize, &'r R, &mut Vec<Param<'r>>),
    error: impl Fn(&R, rusqlite::Error) -> StoreError,
) -> Result<(), StoreError> {
    let values = |conflict: &str, count: usize| {
        let row = format!("({})", vec!["?"; columns].join(","));
        format!("INSERT {conflict}INTO {target} VALUES {}", vec![row; count].join(","))
    };
    let mut params = Vec::with_capacity(columns * ROWS_PER_INSERT);
    let mut fill = |params: &mut Vec<Param<'r>>, first: usize, group: &'r [R]| {
        params.clear();
        for (offset, row) in group.iter().enumerate() {
            row_params(first + offset, row, params);
            debug_assert_eq!(params.len(), (offset + 1) * columns, "a row of another width");
        }
    };
    let (mut grouped, mut single) = (None, None);
    for (index, group) in rows.chunks(ROWS_PER_INSERT).enumerate() {
        let first = index * ROWS_PER_INSERT;
        // Rows of this group already inserted, and the group's failure.
        let (mut kept, mut failed) = (0, None);
        if group.len() == ROWS_PER_INSERT {
            if grouped.is_none() {
                grouped = Some(StaticInsert::prepare(connection, &values("OR FAIL ", ROWS_PER_INSERT))?);
            }
            fill(&mut params, first, group);
            match grouped.as_mut().expect("prepared above").execute(&params) {
                Ok(()) => continue,
                // Stopped at the failing row: find it, one by one below.
                Err(failure) if is_constraint_violation(&failure) => {
                    kept = usize::try_from(connection.changes()).map_or(0, |changes| changes.min(group.len()));
                    failed = Some(failure);
                }
                Err(failure) => return Err(error(&group[0], failure)),
            }
        }
        if single.is_none() {
            single = Some(StaticInsert::prepare(connection, &values("", 1))?);
        }
        let statement = single.as_mut().expect("prepared above");
        for (offset, row) in group.iter().enumerate().skip(kept) {
            fill(&mut params, first + offset, std::slice::from_ref(row));
            statement.execute(&params).map_err(|failure| error(row, failure))?;
        }
        if let Some(failure) = failed {
            return Err(error(&group[kept.saturating_sub(1)], failure));
        }
    }
    Ok(())
}

/// Whether `error` is a constraint violation (of any kind).
pub fn is_constraint_violation(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> rusqlite::Connection {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, note TEXT)")
            .unwrap();
        connection
    }

    #[test]
    fn values_bound_in_place_are_stored_and_released() {
        let connection = table();
        let rows: Vec<(i64, String, Option<String>)> = (0..100)
            .map(|id| (id, format!("name-{id}"), (id % 3 == 0).then(|| format!("note {id}"))))
            .collect();
        insert_grouped(
            &connection,
            "t (id, name, note)",
            3,
            &rows,
            |_, (id, name, note), params| params.extend([Param::from(*id), name.into(), note.into()]),
            |_, failure| failure.into(),
        )
        .unwrap();
        drop(rows);
        let stored: Vec<(i64, String, Option<String>)> = connection
            .prepare("SELECT id, name, note FROM t ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored.len(), 100);
        assert_eq!(stored[3], (3, "name-3".to_string(), Some("note 3".to_string())));
        assert_eq!(stored[4], (4, "name-4".to_string(), None));
        assert_eq!(stored[99].1, "name-99");
    }

    /// The statement's SQL with its current bindings expanded.
    fn expanded(insert: &StaticInsert<'_>) -> String {
        // SAFETY: the statement is valid; the returned string is ours to free.
        unsafe {
            let text = ffi::sqlite3_expanded_sql(insert.statement.as_ptr());
            let copy = CStr::from_ptr(text).to_string_lossy().into_owned();
            ffi::sqlite3_free(text.cast());
            copy
        }
    }

    #[test]
    fn bindings_are_cleared_after_success_and_failure_and_errors_keep_their_codes() {
        let connection = table();
        let mut insert =
            StaticInsert::prepare(&connection, "INSERT INTO t (id, name, note) VALUES (?1, ?2, ?3)").unwrap();
        let cleared = "INSERT INTO t (id, name, note) VALUES (NULL, NULL, NULL)";
        let name = String::from("first");
        insert
            .execute(&[Param::Integer(1), Param::Text(&name), Param::Text("a note")])
            .unwrap();
        assert_eq!(expanded(&insert), cleared);
        // A repeated name: the step fails with UNIQUE's extended code and message, and the
        // bindings are cleared all the same.
        let error = insert
            .execute(&[Param::Integer(2), Param::Text(&name), Param::Null])
            .unwrap_err();
        assert_eq!(expanded(&insert), cleared);
        assert!(is_constraint_violation(&error));
        let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(failure.extended_code, ffi::SQLITE_CONSTRAINT_UNIQUE);
        assert_eq!(message, "UNIQUE constraint failed: t.name");
        let error = insert
            .execute(&[Param::Integer(1), Param::Text("other"), Param::Null])
            .unwrap_err();
        let rusqlite::Error::SqliteFailure(failure, _) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(failure.extended_code, ffi::SQLITE_CONSTRAINT_PRIMARYKEY);
        // A code made here (TOOBIG, for a text over i32::MAX bytes) gets SQLite's text for
        // it, not the message the failure before left on the connection.
        let made = last_error(&connection, ffi::SQLITE_TOOBIG);
        let rusqlite::Error::SqliteFailure(failure, Some(message)) = &made else {
            panic!("{made:?}");
        };
        assert_eq!(failure.extended_code, ffi::SQLITE_TOOBIG);
        assert_eq!(message, "string or blob too big");
        drop(insert);
        assert_eq!(
            connection
                .query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0))
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_broken_constraint_names_its_row_in_a_group_or_in_the_rest() {
        for repeated_at in [5, 40, 97] {
            let connection = table();
            let rows: Vec<(i64, String)> = (0..100)
                .map(|id| {
                    (
                        id,
                        if id == repeated_at {
                            "name-1".into()
                        } else {
                            format!("name-{id}")
                        },
                    )
                })
                .collect();
            let outcome = insert_grouped(
                &connection,
                "t (id, name, note)",
                3,
                &rows,
                |_, (id, name), params| params.extend([Param::from(*id), name.into(), Param::Null]),
                |row, failure| StoreError::Corrupt {
                    table: "t",
                    detail: format!("row {}: {failure}", row.0),
                },
            );
            let error = outcome.expect_err("a repeated name fails").to_string();
            assert!(
                error.contains(&format!("row {repeated_at}: UNIQUE constraint failed: t.name")),
                "{error}"
            );
        }
    }

    /// A group stops at its failing row and keeps the rows before it (`OR FAIL`); a
    /// foreign-key violation undoes its whole group instead. Either way the error names the
    /// failing row (the 46th: the second group's 14th), and each row before it is in the
    /// table once.
    #[test]
    fn a_group_keeps_the_rows_before_its_failing_row() {
        let connection = table();
        connection
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER NOT NULL REFERENCES t (id));
                 INSERT INTO t (id, name) VALUES (1, 'parent');
                 BEGIN;",
            )
            .unwrap();
        let ids: Vec<i64> = (100..200).collect();
        let bad = 145;
        let named = |id: &i64, error: rusqlite::Error| StoreError::Corrupt {
            table: "t",
            detail: format!("row {id}: {error}"),
        };
        let count = |table: &str| -> i64 {
            connection
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0))
                .unwrap()
        };

        let repeated_name = |_, id: &i64, params: &mut Vec<Param<'_>>| {
            let name = if *id == bad { Param::Text("parent") } else { Param::Null };
            params.extend([Param::from(*id), name, Param::Null]);
        };
        let error = insert_grouped(&connection, "t (id, name, note)", 3, &ids, repeated_name, named).unwrap_err();
        assert!(
            error.to_string().contains("row 145: UNIQUE constraint failed: t.name"),
            "{error}"
        );
        assert_eq!(count("t"), 1 + 45);

        let missing_parent = |_, id: &i64, params: &mut Vec<Param<'_>>| {
            params.extend([Param::from(*id), Param::from(if *id == bad { 999 } else { 1 })]);
        };
        let error = insert_grouped(&connection, "u (id, t_id)", 2, &ids, missing_parent, named).unwrap_err();
        assert!(
            error.to_string().contains("row 145: FOREIGN KEY constraint failed"),
            "{error}"
        );
        assert_eq!(count("u"), 45);

        // A trigger failing after its row was inserted and counted: the rest of the group
        // goes in, but the group's error is returned, for that row.
        connection
            .execute_batch(
                "CREATE TABLE v (id INTEGER PRIMARY KEY);
                 CREATE TRIGGER v_refuses AFTER INSERT ON v WHEN NEW.id = 145
                     BEGIN SELECT RAISE(FAIL, 'refused by trigger'); END;",
            )
            .unwrap();
        let id_only = |_, id: &i64, params: &mut Vec<Param<'_>>| params.push(Param::from(*id));
        let error = insert_grouped(&connection, "v (id)", 1, &ids, id_only, named).unwrap_err();
        assert!(error.to_string().contains("row 145: refused by trigger"), "{error}");
    }

    #[test]
    fn params_go_through_rusqlite_too() {
        let connection = table();
        let params = [Param::Integer(7), Param::Text("seven"), Param::Null];
        connection
            .execute(
                "INSERT INTO t (id, name, note) VALUES (?1, ?2, ?3)",
                rusqlite::params_from_iter(params),
            )
            .unwrap();
        let note: Option<String> = connection
            .query_row("SELECT note FROM t WHERE name = 'seven'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(note, None);
    }
}
