//! Archives: nested expansion, locations inside archives, limits against bombs, damage.

use std::io::Write;
use steward_core::FingerprintKey;
use steward_scan::archive::ArchiveLimits;
use steward_scan::checks::base62_checksum;
use steward_scan::{Matcher, RuleSet, ScanOptions, ScanReport, scan_paths};

fn token() -> String {
    let body = "R7kQ2mX9pL4vN8bT1cY6wZ3hJ5dF0s";
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn tar_gz_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        // Names are written raw, so hostile ones (`../..`) can be built too.
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap()
}

fn scan(dir: &std::path::Path, options: ScanOptions) -> ScanReport {
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    scan_paths(
        &matcher,
        &FingerprintKey::from_bytes([5; 32]),
        &[dir.to_path_buf()],
        &options,
    )
}

#[test]
fn secrets_in_nested_archives_are_found_with_their_inner_paths() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("GH_TOKEN={}\n", token());
    let inner_zip = zip_of(&[("config/.env", secret.as_bytes()), ("README", b"hello")]);
    let outer = tar_gz_of(&[("backup/app.zip", &inner_zip), ("backup/notes.txt", secret.as_bytes())]);
    std::fs::write(dir.path().join("dump.tar.gz"), outer).unwrap();
    let report = scan(dir.path(), ScanOptions::default());
    assert_eq!(report.findings.len(), 1, "{:?}", report.stats);
    let paths: Vec<String> = report.findings[0]
        .locations
        .iter()
        .map(|location| {
            location
                .path
                .strip_prefix(&format!("{}/", dir.path().display()))
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            "dump.tar.gz!dump.tar!backup/app.zip!config/.env",
            "dump.tar.gz!dump.tar!backup/notes.txt"
        ]
    );
    assert_eq!(report.stats.files, 3);
    // Without archive expansion the compressed bytes hold nothing readable.
    let flat = scan(
        dir.path(),
        ScanOptions {
            archives: None,
            ..Default::default()
        },
    );
    assert!(flat.findings.is_empty());
    // A .tar.gz is one level: at depth 2 the zip inside it is opened, at depth 1 only the
    // .tar.gz itself.
    for (depth, found) in [(1, 1), (2, 2)] {
        let report = scan(
            dir.path(),
            ScanOptions {
                archives: Some(ArchiveLimits {
                    max_depth: depth,
                    ..ArchiveLimits::default()
                }),
                ..Default::default()
            },
        );
        assert_eq!(
            report.findings[0].locations.len(),
            found,
            "depth {depth}: {:?}",
            report.stats
        );
    }
}

#[test]
fn a_zip_bomb_is_stopped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![b'a'; 4 * 1024 * 1024];
    let bomb = zip_of(&[("a.txt", &zeros), ("b.txt", &zeros), ("c.txt", &zeros)]);
    assert!(bomb.len() < 100_000);
    std::fs::write(dir.path().join("bomb.zip"), bomb).unwrap();
    let limits = ArchiveLimits {
        max_total_bytes: 6 * 1024 * 1024,
        ..Default::default()
    };
    let report = scan(
        dir.path(),
        ScanOptions {
            archives: Some(limits),
            ..Default::default()
        },
    );
    assert!(
        report
            .stats
            .warnings
            .iter()
            .any(|warning| warning.contains("bomb.zip") && warning.contains("byte limit")),
        "{:?}",
        report.stats.warnings
    );
    assert_eq!(report.stats.files, 1);
}

/// An entry over the file size limit is read through and skipped (never held whole), in
/// a zip, a tar.gz read as it is inflated, and a plain gzip; the entries around it are scanned.
#[test]
fn entries_over_the_file_size_limit_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("token {}\n", token());
    let mut large = vec![b'a'; 3 * 1024 * 1024];
    large.extend_from_slice(secret.as_bytes());
    let entries: [(&str, &[u8]); 3] = [
        ("small-1.txt", secret.as_bytes()),
        ("large.txt", &large),
        ("small-2.txt", secret.as_bytes()),
    ];
    std::fs::write(dir.path().join("entries.zip"), zip_of(&entries)).unwrap();
    std::fs::write(dir.path().join("entries.tar.gz"), tar_gz_of(&entries)).unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &large).unwrap();
    std::fs::write(dir.path().join("large.txt.gz"), gzip.finish().unwrap()).unwrap();
    let report = scan(
        dir.path(),
        ScanOptions {
            max_file_size: 1024 * 1024,
            ..Default::default()
        },
    );
    let mut places: Vec<String> = report.findings[0]
        .locations
        .iter()
        .map(|location| location.path.clone())
        .collect();
    places.sort();
    let expected: Vec<String> = [
        "entries.tar.gz!entries.tar!small-1.txt",
        "entries.tar.gz!entries.tar!small-2.txt",
        "entries.zip!small-1.txt",
        "entries.zip!small-2.txt",
    ]
    .iter()
    .map(|place| dir.path().join(place).display().to_string())
    .collect();
    assert_eq!(places, expected);
    let skipped: Vec<&String> = report
        .stats
        .warnings
        .iter()
        .filter(|warning| {
            warning.contains(&format!(
                "large.txt: skipped archive entry of {} bytes, over the 1048576 byte file size limit",
                large.len()
            ))
        })
        .collect();
    assert_eq!(skipped.len(), 3, "{:?}", report.stats.warnings);
}

#[test]
fn damaged_archives_and_traversal_names_are_warnings_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("token {}\n", token());
    let archive = tar_gz_of(&[("../../etc/cron.d/evil", secret.as_bytes())]);
    std::fs::write(dir.path().join("traversal.tgz"), &archive).unwrap();
    std::fs::write(dir.path().join("truncated.tar.gz"), &archive[..archive.len() / 2]).unwrap();
    std::fs::write(dir.path().join("broken.zip"), b"PK\x03\x04 this is not really a zip").unwrap();
    let report = scan(dir.path(), ScanOptions::default());
    assert_eq!(report.findings.len(), 1);
    assert!(
        report.findings[0].locations[0]
            .path
            .ends_with("traversal.tgz!traversal.tar!../../etc/cron.d/evil")
    );
    assert!(!dir.path().join("../../etc/cron.d/evil").exists());
    let warnings = report.stats.warnings.join("\n");
    assert!(warnings.contains("broken.zip"), "{warnings}");
    assert!(warnings.contains("truncated.tar.gz"), "{warnings}");
}

/// Bytes that only look like an archive (a zip's signature over text, a zip whose
/// central directory is gone), at the top or inside an archive, are scanned as a file:
/// the warning stays, binary sniffing still applies, and they are not counted as
/// expanded.
#[test]
fn an_archive_that_cannot_be_opened_is_scanned_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = token();
    std::fs::write(
        dir.path().join("notazip.zip"),
        format!("PK\x03\x04 not really a zip {secret}\n"),
    )
    .unwrap();
    let fake_inner = format!("PK\x03\x04 inner, not a zip either {secret}\n");
    std::fs::write(
        dir.path().join("outer.zip"),
        zip_of(&[("inner.zip", fake_inner.as_bytes())]),
    )
    .unwrap();
    // Binary after the signature: still skipped as binary.
    std::fs::write(dir.path().join("binary.zip"), b"PK\x03\x04\x00\x01\x02 binary").unwrap();
    let report = scan(dir.path(), ScanOptions::default());
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let mut places: Vec<&str> = report.findings[0]
        .locations
        .iter()
        .map(|location| location.path.rsplit('/').next().unwrap())
        .collect();
    places.sort();
    assert_eq!(places, ["notazip.zip", "outer.zip!inner.zip"]);
    assert_eq!(report.stats.archives, 1, "only outer.zip was expanded");
    assert_eq!(report.stats.skipped_binary, 1);
    let warnings = report.stats.warnings.join("\n");
    for name in ["notazip.zip", "outer.zip!inner.zip", "binary.zip"] {
        assert!(
            warnings.contains(&format!("{name}: damaged zip archive")) && warnings.contains("scanned as a plain file"),
            "{warnings}"
        );
    }
    // The same with archives off: the file as bytes, no warning.
    let plain = scan(
        dir.path(),
        ScanOptions {
            archives: None,
            ..Default::default()
        },
    );
    assert_eq!(plain.stats.archives, 0);
    assert!(plain.stats.warnings.is_empty(), "{:?}", plain.stats.warnings);
}
