//! Hostile input never panics the archive and export parsers: random bytes, and valid
//! archives and exports with random corruption (truncation and flipped bytes). The
//! `fuzz/` directory has cargo-fuzz targets for the same entry points, for longer runs.

use proptest::prelude::*;
use std::io::Write;
use steward_scan::archive::{ArchiveLimits, archive_kind, expand};
use steward_scan::exports::split_export;

fn small_limits() -> ArchiveLimits {
    ArchiveLimits {
        max_depth: 3,
        max_total_bytes: 1 << 20,
        max_entry_bytes: 1 << 20,
        max_entries: 1000,
    }
}

fn expand_all(bytes: &[u8]) {
    if let Some(kind) = archive_kind(bytes) {
        let mut seen = 0usize;
        let _ = expand(kind, "fuzz", bytes, small_limits(), &mut |_, entry| seen += entry.len());
        assert!(seen <= 1 << 20);
    }
}

fn sample_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("a/b.txt", options).unwrap();
    writer.write_all(b"hello secret world").unwrap();
    writer.start_file("c.json", options).unwrap();
    writer.write_all(br#"[{"ts": "1.2", "text": "x"}]"#).unwrap();
    writer.finish().unwrap().into_inner()
}

fn sample_tar_gz() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "x/y.txt", &b"hello"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap()
}

fn corrupt(mut bytes: Vec<u8>, flips: &[(usize, u8)], keep: usize) -> Vec<u8> {
    for (position, value) in flips {
        if !bytes.is_empty() {
            let index = position % bytes.len();
            bytes[index] ^= value;
        }
    }
    bytes.truncate(keep.min(bytes.len()));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), prefix in 0usize..4) {
        let mut input = match prefix {
            0 => b"PK\x03\x04".to_vec(),
            1 => vec![0x1f, 0x8b],
            2 => b"[{\"ts\":".to_vec(),
            _ => Vec::new(),
        };
        input.extend_from_slice(&bytes);
        expand_all(&input);
        let _ = split_export("export/general/2024-01-01.json", &input);
        let _ = split_export("jira.json", &input);
    }

    #[test]
    fn corrupted_archives_never_panic(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..8), keep in 0usize..4096, which in 0usize..2) {
        let sample = if which == 0 { sample_zip() } else { sample_tar_gz() };
        expand_all(&corrupt(sample, &flips, keep));
    }

    #[test]
    fn corrupted_exports_never_panic(flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..8), keep in 0usize..512) {
        let slack = br#"[{"ts": "1.2", "text": "a", "edited": {"text": "b"}, "files": [{"preview": "c"}]}]"#.to_vec();
        let jira = br#"{"issues": [{"key": "A-1", "fields": {"summary": "s", "description": {"type": "doc", "content": [{"text": "t"}]}, "comment": {"comments": [{"id": "1", "body": "b"}]}}}]}"#.to_vec();
        let _ = split_export("x/general/2024-01-01.json", &corrupt(slack, &flips, keep));
        let _ = split_export("jira.json", &corrupt(jira, &flips, keep));
    }
}
