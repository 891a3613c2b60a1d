//! Fuzzes the Slack and Jira export parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_scan::exports::split_export;

fuzz_target!(|data: &[u8]| {
    let _ = split_export("export/general/2024-01-01.json", data);
    let _ = split_export("jira-issues.json", data);
});
