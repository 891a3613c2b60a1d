//! Scanning files and directories.

use std::path::PathBuf;
use steward_core::FingerprintKey;
use steward_scan::checks::base62_checksum;
use steward_scan::{Matcher, RuleSet, ScanOptions, scan_paths};

fn github_token() -> String {
    let body = "k8Jd02LmQpZx7Vb3NcR5tYw1Ha9Ue4";
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

#[test]
fn a_directory_scan_groups_copies_and_reports_positions() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token();
    std::fs::create_dir_all(dir.path().join("src/nested")).unwrap();
    std::fs::write(
        dir.path().join("src/config.py"),
        format!("import os\n\nTOKEN = \"{token}\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("src/nested/.env"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    std::fs::write(
        dir.path().join("allowed.txt"),
        format!("test fixture {token} # steward:allow\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("binary.bin"), [b'g', b'h', b'p', 0, 1, 2]).unwrap();
    // git's storage is not read as files (a repository's `config` is: see the history
    // tests); a plain-text file there stands for its objects.
    std::fs::create_dir_all(dir.path().join(".git/objects/4b")).unwrap();
    std::fs::write(dir.path().join(".git/objects/4b/825dc642cb"), format!("{token}\n")).unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(finding.rule_id, "github-classic-pat");
    assert_eq!(finding.preview, "ghp_…(40 chars)");
    assert!(finding.secret.is_none());
    let places: Vec<(String, usize, usize)> = finding
        .locations
        .iter()
        .map(|location| {
            let relative = PathBuf::from(&location.path)
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string();
            (relative, location.line, location.column)
        })
        .collect();
    assert_eq!(
        places,
        vec![
            ("src/config.py".to_string(), 3, 10),
            ("src/nested/.env".to_string(), 1, 14)
        ]
    );
    assert_eq!(report.stats.skipped_binary, 1);
    assert_eq!(report.stats.files, 3);
}

#[test]
fn missing_and_oversized_inputs_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), vec![b'a'; 2048]).unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let options = ScanOptions {
        max_file_size: 1024,
        ..Default::default()
    };
    let report = scan_paths(
        &matcher,
        &key,
        &[dir.path().to_path_buf(), dir.path().join("nope")],
        &options,
    );
    assert_eq!(report.stats.skipped_large, 1);
    assert!(
        report.stats.warnings.iter().any(|warning| warning.contains("nope")),
        "{:?}",
        report.stats.warnings
    );
}

#[test]
fn large_blobs_split_across_threads_lose_and_duplicate_nothing() {
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let chunk = 1 << 20;
    let mut blob = Vec::new();
    let mut planted = Vec::new();
    // Secrets straddling, just before and just after each chunk boundary, and context
    // rules whose keyword sits in the previous chunk.
    let bodies = [
        "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1",
        "fG4hJ6kL8mN0pQ2rS4tU6vW8xY0zA2",
        "qW2eR4tY6uI8oP0aS2dF4gH6jK8lZ0",
        "zX1cV3bN5mA7sD9fG1hJ3kL5qW7eR9",
    ];
    for boundary in [chunk, 2 * chunk, 3 * chunk] {
        // Before, straddling and after the boundary (each token is 42 bytes with its spaces).
        for (shift, body) in [-300i64, -20, 40, 100].into_iter().zip(bodies) {
            let offset = (boundary as i64 + shift) as usize;
            while blob.len() < offset {
                blob.extend_from_slice(b"lorem ipsum dolor sit amet\n");
            }
            blob.truncate(offset);
            blob.push(b' ');
            let token = format!("ghp_{body}{}", base62_checksum(body.as_bytes()));
            planted.push((blob.len(), token.clone()));
            blob.extend_from_slice(token.as_bytes());
            blob.push(b'\n');
        }
    }
    while blob.len() < 4 * chunk {
        blob.extend_from_slice(b"lorem ipsum dolor sit amet\n");
    }
    let found = matcher.find(&blob);
    let offsets: Vec<usize> = found.iter().map(|found| found.start).collect();
    let expected: Vec<usize> = planted.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, expected);
    for (found, (_, token)) in found.iter().zip(&planted) {
        assert_eq!(&blob[found.start..found.end], token.as_bytes());
    }
}

#[test]
fn utf16_text_with_a_byte_order_mark_is_scanned_and_a_utf8_mark_is_no_column() {
    // UTF-16 with a byte order mark (Windows PowerShell's `Out-File`, `.reg` exports) is
    // text: its secrets are found at the line and column of the text. A UTF-8 byte order
    // mark does not shift the columns of the first line.
    let dir = tempfile::tempdir().unwrap();
    let token = github_token();
    let text = format!("Windows Registry Editor Version 5.00\r\n\"Token\"=\"{token}\"\r\n");
    let little: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let big: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    std::fs::write(dir.path().join("little.reg"), little).unwrap();
    std::fs::write(dir.path().join("big.txt"), big).unwrap();
    std::fs::write(dir.path().join("bom.env"), format!("\u{feff}{token}\n")).unwrap();
    // A rule anchored at a line's start sees line 1 after a UTF-8 byte order mark.
    std::fs::write(
        dir.path().join("anchored.env"),
        "\u{feff}DB_PASSWORD=Zq8rT2vLmN4pXw7K\n",
    )
    .unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let report = scan_paths(
        &matcher,
        &FingerprintKey::from_bytes([1; 32]),
        &[dir.path().to_path_buf()],
        &ScanOptions::default(),
    );
    assert_eq!(report.stats.skipped_binary, 0);
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    let anchored = report
        .findings
        .iter()
        .find(|finding| finding.rule_id != "github-classic-pat")
        .unwrap();
    assert_eq!((anchored.locations[0].line, anchored.locations[0].column), (1, 13));
    let token_finding = report
        .findings
        .iter()
        .find(|finding| finding.rule_id == "github-classic-pat")
        .unwrap();
    let mut places: Vec<(String, usize, usize)> = token_finding
        .locations
        .iter()
        .map(|location| {
            let name = PathBuf::from(&location.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, location.line, location.column)
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        vec![
            ("big.txt".to_string(), 2, 10),
            ("bom.env".to_string(), 1, 1),
            ("little.reg".to_string(), 2, 10),
        ]
    );
}

/// Makes a FIFO (named pipe) at `path` with `mkfifo`.
fn make_fifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A FIFO given as a path is read as a stream to its end (up to the file size limit; past
/// it, skipped as a large file is), so `producer | steward scan /dev/stdin` scans what the
/// producer writes. One met below a directory is not opened (with no writer it would block
/// the scan forever): a warning names it.
#[test]
fn a_pipe_given_is_read_as_a_stream_and_one_below_a_directory_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token();
    let fifo = dir.path().join("stream");
    make_fifo(&fifo);
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let write_then_scan = |content: Vec<u8>, options: &ScanOptions| {
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                // The scan may stop reading at its limit: a broken pipe is no failure here.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&fifo)
                    .and_then(|mut pipe| pipe.write_all(&content));
            })
        };
        let report = scan_paths(&matcher, &key, std::slice::from_ref(&fifo), options);
        writer.join().unwrap();
        report
    };
    let text = format!("first line\nexport GH_TOKEN={token}\n").into_bytes();
    let report = write_then_scan(text.clone(), &ScanOptions::default());
    assert!(report.stats.warnings.is_empty(), "{:?}", report.stats.warnings);
    assert_eq!(report.stats.files, 1);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let location = &report.findings[0].locations[0];
    assert_eq!(
        (location.path.as_str(), location.line, location.column),
        (fifo.to_str().unwrap(), 2, 17)
    );

    let small = ScanOptions {
        max_file_size: 16,
        ..Default::default()
    };
    let report = write_then_scan(text, &small);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.stats.skipped_large, 1);
    assert_eq!(
        report.stats.warnings,
        [format!(
            "warning: {}: skipped, the stream is over the 16 byte limit",
            fifo.display()
        )]
    );

    // Below a directory: not opened, so the scan returns with no writer.
    std::fs::write(dir.path().join("plain.env"), format!("T={token}\n")).unwrap();
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.stats.warnings,
        [format!("warning: {}: a FIFO (named pipe), not read", fifo.display())]
    );
}

/// Symbolic links below a path given are not followed, whatever they point to (a file, a
/// directory, a loop, nothing), and each is counted, not warned about; a path given that is
/// a link is followed, and one that leads nowhere is a warning and is not scanned.
#[test]
fn links_below_a_path_are_counted_not_followed_and_a_link_given_is_followed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let token = github_token();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("secret.env"), format!("T={token}\n")).unwrap();
    symlink(tree.join("secret.env"), tree.join("to-file.env")).unwrap();
    symlink(&tree, tree.join("to-parent")).unwrap();
    symlink(tree.join("loop-b"), tree.join("loop-a")).unwrap();
    symlink(tree.join("loop-a"), tree.join("loop-b")).unwrap();
    symlink("/nonexistent/steward-target", tree.join("dangling")).unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, std::slice::from_ref(&tree), &ScanOptions::default());
    assert_eq!(report.stats.skipped_symlinks, 5, "{:?}", report.stats);
    assert!(report.stats.warnings.is_empty(), "{:?}", report.stats.warnings);
    assert_eq!(report.stats.files, 1);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].locations.len(), 1, "{:#?}", report.findings);

    // Given as paths: the link to a file is read through, the one to nothing and the loop
    // are warnings, and the scan goes on with the others.
    let given = [tree.join("to-file.env"), tree.join("dangling"), tree.join("loop-a")];
    let report = scan_paths(&matcher, &key, &given, &ScanOptions::default());
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].locations[0].path, given[0].display().to_string());
    assert_eq!(report.stats.warnings.len(), 2, "{:?}", report.stats.warnings);
    assert_eq!(
        report.stats.warnings[0],
        format!(
            "warning: {}: symbolic link to /nonexistent/steward-target, which does not exist",
            given[1].display()
        )
    );
    assert!(
        report.stats.warnings[1].starts_with(&format!("warning: {}: ", given[2].display())),
        "{:?}",
        report.stats.warnings
    );
}

/// A distinct GitHub token (valid checksum) per seed.
fn numbered_github_token(seed: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed as u64 * 2_654_435_761 + 12_345;
    let body: String = (0..30)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(ALPHABET[(state >> 33) as usize % ALPHABET.len()])
        })
        .collect();
    format!("ghp_{body}{}", base62_checksum(body.as_bytes()))
}

/// One minified line holding a thousand secrets costs about what the same bytes cost
/// spread over a thousand lines: lines, columns and `steward:allow` are counted on from
/// one match to the next, not from the line's start for each (that took 3-4 s here, 150
/// times the spread-out file, and grew with the square of the secrets).
#[test]
fn one_long_line_of_many_secrets_takes_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let padding = "x".repeat(10_000);
    let tokens: Vec<String> = (0..1000).map(numbered_github_token).collect();
    let one_line: String = tokens.iter().map(|token| format!("{padding};t=\"{token}\";")).collect();
    let many_lines: String = tokens
        .iter()
        .map(|token| format!("{padding};t=\"{token}\";\n"))
        .collect();
    std::fs::write(dir.path().join("one-line.js"), &one_line).unwrap();
    std::fs::write(dir.path().join("many-lines.js"), &many_lines).unwrap();
    // A marker at the end of the line allows them all; one line further on, none.
    std::fs::write(
        dir.path().join("allowed-line.js"),
        format!("{one_line} // steward:allow\n// steward:allow\n"),
    )
    .unwrap();
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let timed = |name: &str| {
        let started = std::time::Instant::now();
        let report = scan_paths(&matcher, &key, &[dir.path().join(name)], &ScanOptions::default());
        (started.elapsed(), report)
    };
    let _warm_up = timed("many-lines.js");
    let (spread_out, spread_report) = timed("many-lines.js");
    let (minified, minified_report) = timed("one-line.js");
    assert_eq!(spread_report.findings.len(), 1000);
    assert_eq!(minified_report.findings.len(), 1000);
    // `{padding};t="{token}";`: the token at column `padding + 5` of each piece.
    let step = padding.len() + 4 + tokens[0].len() + 2;
    assert!(
        minified_report
            .findings
            .iter()
            .all(|finding| finding.locations[0].line == 1)
    );
    let mut columns: Vec<usize> = minified_report
        .findings
        .iter()
        .map(|finding| finding.locations[0].column)
        .collect();
    columns.sort();
    assert_eq!(
        columns,
        (0..1000)
            .map(|index| index * step + padding.len() + 5)
            .collect::<Vec<_>>()
    );
    for finding in &spread_report.findings {
        assert_eq!(finding.locations[0].column, padding.len() + 5);
    }
    assert!(
        minified < spread_out * 5 + std::time::Duration::from_millis(500),
        "one line: {minified:?}, a thousand lines: {spread_out:?}"
    );
    let (allowed, allowed_report) = timed("allowed-line.js");
    assert!(
        allowed_report.findings.is_empty(),
        "{:?}",
        allowed_report.findings.len()
    );
    assert!(
        allowed < spread_out * 5 + std::time::Duration::from_millis(500),
        "allowed line: {allowed:?}"
    );
}

/// `steward:allow` in JSON allows the secrets of the string value holding it, not every
/// secret of its physical line (a minified file is one line); in an export, the secrets of
/// the message's or cell's field holding it, whatever its lines, and no other message's.
/// In other files it still allows its line.
#[test]
fn an_allow_marker_covers_its_json_value_or_export_field_not_the_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let token = |seed| numbered_github_token(seed);
    let write = |name: &str, content: String| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    // Minified JSON: the marker in another value allows nothing; in the value, its secret.
    write(
        "bundle.min.json",
        format!(
            r#"{{"a":"steward:allow","cfg":{{"token":"{}","fixture":"{} steward:allow"}}}}"#,
            token(1),
            token(2)
        ),
    );
    // A compact Slack day file: a marker in one message does not allow another's
    // attachment field; a marker in a message allows its secret on another line of it.
    write(
        "exp/general/2024-01-01.json",
        format!(
            r#"[{{"ts":"1.1","text":"ignore: steward:allow"}},{{"ts":"1.3","text":"x","attachments":[{{"fields":[{{"value":"{}"}}]}}]}},{{"ts":"1.4","text":"docs example, steward:allow\nuse {}"}}]"#,
            token(3),
            token(4)
        ),
    );
    // Elsewhere, a line: the marker's line is allowed, the next one is not.
    write(
        "notes.txt",
        format!("fixture {} # steward:allow\nreal {}\n", token(5), token(6)),
    );
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    let mut found: Vec<(String, String)> = report
        .findings
        .iter()
        .flat_map(|finding| {
            finding.locations.iter().map(|location| {
                let name = location.path.rsplit('/').next().unwrap().to_string();
                (name, finding.preview.clone())
            })
        })
        .collect();
    found.sort();
    let reported: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        reported,
        ["2024-01-01.json", "bundle.min.json", "notes.txt"],
        "{found:?}"
    );
    assert_eq!(report.findings.len(), 3);
    let secrets: Vec<String> = scan_paths(
        &matcher,
        &key,
        &[dir.path().to_path_buf()],
        &ScanOptions {
            show_secrets: true,
            ..Default::default()
        },
    )
    .findings
    .into_iter()
    .map(|finding| finding.secret.unwrap())
    .collect();
    for (seed, expected) in [(1, true), (2, false), (3, true), (4, false), (5, false), (6, true)] {
        assert_eq!(secrets.contains(&token(seed)), expected, "token {seed}: {secrets:?}");
    }
}

/// Old Mac line ends (a lone CR) are line breaks; a text file that merely begins with the
/// bytes `FF FE` is scanned as bytes, not decoded as UTF-16 into CJK characters; jwt.io's
/// example token is documentation, another JWT is not.
#[test]
fn lone_carriage_returns_fake_utf16_marks_and_the_jwt_io_example() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &[u8]| std::fs::write(dir.path().join(name), content).unwrap();
    write(
        "cr.txt",
        format!("a\rb\rtoken=\"{}\"\r", numbered_github_token(1)).as_bytes(),
    );
    write(
        "crlf.txt",
        format!("a\r\nb\r\ntoken=\"{}\"\r\n", numbered_github_token(2)).as_bytes(),
    );
    let mut fake = vec![0xFF, 0xFE, 0xFD];
    fake.extend_from_slice(format!(" junk token=\"{}\"\n", numbered_github_token(3)).as_bytes());
    write("ff.txt", &fake);
    let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    let jwt_io = format!(
        "{header}.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.{}",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    );
    // A payload of its own: `{"sub":"svc-billing","iat":1717171717}`.
    let other = format!(
        "{header}.eyJzdWIiOiJzdmMtYmlsbGluZyIsImlhdCI6MTcxNzE3MTcxN30.q8Zr2Lw9Vt4Xk1Np7Hs3Bd6Fj0Gm5Yc2Re8Ua4Ti"
    );
    write("jwt.txt", format!("example = {jwt_io}\nreal = {other}\n").as_bytes());
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    let mut places: Vec<(String, usize, usize, String)> = report
        .findings
        .iter()
        .flat_map(|finding| {
            finding.locations.iter().map(|location| {
                (
                    location.path.rsplit('/').next().unwrap().to_string(),
                    location.line,
                    location.column,
                    finding.rule_id.clone(),
                )
            })
        })
        .collect();
    places.sort();
    assert_eq!(
        places,
        [
            ("cr.txt".to_string(), 3, 8, "github-classic-pat".to_string()),
            ("crlf.txt".to_string(), 3, 8, "github-classic-pat".to_string()),
            ("ff.txt".to_string(), 1, 17, "github-classic-pat".to_string()),
            ("jwt.txt".to_string(), 2, 8, "jwt".to_string()),
        ]
    );
}

/// A PEM RSA key with a body drawn from `seed`, lines ending in `newline`.
fn rsa_key(seed: u64, newline: &str) -> String {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed.wrapping_add(1);
    let body: Vec<String> = (0..8)
        .map(|_| {
            (0..64)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    BASE64[(state >> 58) as usize] as char
                })
                .collect()
        })
        .collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----{newline}{}{newline}-----END RSA PRIVATE KEY-----",
        body.join(newline)
    )
}

/// `steward:allow` allows a key over several lines when it is on its `BEGIN` line, its
/// `END` line, or a line of its own just above it (LF or CRLF); not two lines above, not
/// on a line above that holds a secret of its own (that marker is the secret's), and a
/// one-line secret still only on its own line.
#[test]
fn an_allow_marker_covers_a_multi_line_key_from_its_first_or_last_line_or_just_above() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: String| std::fs::write(dir.path().join(name), content).unwrap();
    let token = numbered_github_token;
    write(
        "begin.pem",
        rsa_key(1, "\n").replacen("-----\n", "----- # steward:allow\n", 1),
    );
    write("end.pem", format!("{} # steward:allow\n", rsa_key(2, "\n")));
    write(
        "above.pem",
        format!("# steward:allow test fixture\n{}\n", rsa_key(3, "\n")),
    );
    write(
        "above-crlf.pem",
        format!("# steward:allow\r\n{}\r\n", rsa_key(4, "\r\n")),
    );
    write("two-above.pem", format!("# steward:allow\n\n{}\n", rsa_key(5, "\n")));
    write(
        "above-a-secret.txt",
        format!("fixture {} # steward:allow\n{}\n", token(7), rsa_key(6, "\n")),
    );
    write("one-line.txt", format!("# steward:allow\ntoken {}\n", token(8)));
    let matcher = Matcher::new(RuleSet::builtin().unwrap()).unwrap();
    let key = FingerprintKey::from_bytes([1; 32]);
    let report = scan_paths(&matcher, &key, &[dir.path().to_path_buf()], &ScanOptions::default());
    let mut found: Vec<(String, usize, String)> = report
        .findings
        .iter()
        .flat_map(|finding| {
            finding.locations.iter().map(|location| {
                let name = location.path.rsplit('/').next().unwrap().to_string();
                (name, location.line, finding.rule_id.clone())
            })
        })
        .collect();
    found.sort();
    let expected = [
        ("above-a-secret.txt", 2, "private-key-rsa"),
        ("one-line.txt", 2, "github-classic-pat"),
        ("two-above.pem", 3, "private-key-rsa"),
    ];
    assert_eq!(
        found,
        expected.map(|(name, line, rule)| (name.to_string(), line, rule.to_string())),
        "{found:?}"
    );
}
