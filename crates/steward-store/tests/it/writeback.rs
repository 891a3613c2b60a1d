//! The writeback thread of SQLite bulk writes must leave SQLite's file locks alone:
//! closing any descriptor of the database file drops every POSIX lock the process holds on
//! it, and another process could then take the database for unused, checkpoint and
//! delete the WAL under our open connection.

use crate::harness::{TestDb, actor, new_identity};
use std::os::fd::AsRawFd;
use steward_store::{ImportAudit, ImportIdentity};

/// Start of the byte range that SQLite's SHARED lock covers (PENDING_BYTE + 2), and its
/// length (`os_unix.c`).
const SHARED_FIRST: i64 = 0x4000_0002;
const SHARED_SIZE: i64 = 510;

/// Whether some POSIX lock of this process (SQLite's) covers the SHARED range of `path`:
/// an open-file-description lock conflicts with those even in the same process, so
/// F_OFD_GETLK for a write lock reports them. The probe descriptor is never closed, so
/// that it cannot drop those locks itself.
fn shared_lock_held(path: &std::path::Path) -> bool {
    let probe = Box::leak(Box::new(std::fs::File::open(path).unwrap()));
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as i16;
    lock.l_whence = libc::SEEK_SET as i16;
    lock.l_start = SHARED_FIRST;
    lock.l_len = SHARED_SIZE;
    // SAFETY: a valid descriptor and a valid, initialised flock for F_OFD_GETLK to fill.
    let result = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    assert_eq!(result, 0, "F_OFD_GETLK: {}", std::io::Error::last_os_error());
    lock.l_type != libc::F_UNLCK as i16
}

#[test]
fn a_bulk_import_keeps_the_connections_file_locks() {
    let db = TestDb::sqlite();
    let TestDb::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let mut store = db.open();
    // An open WAL-mode connection holds a SHARED lock on the database file.
    store
        .add_identity(&actor(), new_identity("first", "aws", None))
        .unwrap();
    assert!(shared_lock_held(path), "the store's connection holds its lock");
    // A bulk load long enough for the writeback thread to open the files (it starts after
    // 100 ms): tens of thousands of rows, and a pause of the source half-way, so that the
    // import outlasts several rounds however fast the machine writes.
    let mut records = (0..40_000).map(|index| {
        if index == 20_000 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        ImportIdentity {
            identity: new_identity(&format!("svc-{index:05}"), "gcp", None),
            credentials: Vec::new(),
        }
    });
    store
        .import(&actor(), "bulk", ImportAudit::Summary, &[], &mut (&mut records).map(Ok))
        .unwrap();
    assert!(shared_lock_held(path), "the import left the connection's lock in place");
    assert_eq!(db.count("identities"), 40_001);
}
