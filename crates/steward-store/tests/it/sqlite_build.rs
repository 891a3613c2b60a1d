//! How the bundled SQLite is built.

/// The bundled SQLite is built with the flags of `.cargo/config.toml`: without them every
/// page fetch and allocation takes a global mutex, and imports are a quarter slower.
#[test]
fn the_bundled_sqlite_has_no_global_page_cache_or_memory_statistics() {
    let connection = rusqlite::Connection::open_in_memory().unwrap();
    let mut statement = connection.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|option| option == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}
