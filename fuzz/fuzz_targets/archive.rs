//! Fuzzes archive recognition and expansion (zip, tar, gzip, nested) under small limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_scan::archive::{ArchiveLimits, archive_kind, expand};

fuzz_target!(|data: &[u8]| {
    if let Some(kind) = archive_kind(data) {
        let limits = ArchiveLimits { max_depth: 3, max_total_bytes: 1 << 22, max_entries: 10_000 };
        let _ = expand(kind, "fuzz", data, limits, &mut |_, _| {});
    }
});
