//! `LOCK_STORE_URL` and `default_from_env` choose the store.
//!
//! The environment is one per process, so this binary holds a single test
//! that sets the variables one step after another: nothing else runs
//! beside it to read them.

use verrou::{Config, LockError, STORE_URL_VAR, StoreConfig};

fn set(var: &str, value: Option<&str>) {
    // SAFETY: the only test of this binary sets the variables from its own
    // thread, before anything that could read them concurrently starts
    // (the current-thread runtime runs every future on this thread).
    unsafe {
        match value {
            Some(value) => std::env::set_var(var, value),
            None => std::env::remove_var(var),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_environment_chooses_the_store() {
    // Unset or empty: nothing configured, and the caller says what then.
    set(STORE_URL_VAR, None);
    assert_eq!(Config::from_env().unwrap(), None);
    set(STORE_URL_VAR, Some("  "));
    assert_eq!(Config::from_env().unwrap(), None);

    // Set: one store named "default".
    set(STORE_URL_VAR, Some("memory:"));
    let config = Config::from_env().unwrap().expect("LOCK_STORE_URL is set");
    assert_eq!(config.stores["default"], StoreConfig::memory());
    let verrou = config.build().await.unwrap();
    assert_eq!(verrou.default_store_name(), "default");
    assert_eq!(verrou.default_factory().store().name(), "memory");

    // Combined with a file: the URL becomes the default, the file's stores stay.
    set(
        STORE_URL_VAR,
        Some(if cfg!(feature = "sqlite") {
            "sqlite::memory:"
        } else {
            "memory://"
        }),
    );
    let mut file = Config::new()
        .store("audit", StoreConfig::memory())
        .store("main", StoreConfig::memory());
    file.default = Some("main".to_owned());
    let config = file.with_env().unwrap();
    assert_eq!(config.default.as_deref(), Some("default"));
    assert_eq!(config.stores.len(), 3);
    if cfg!(feature = "sqlite") {
        let verrou = config.build().await.unwrap();
        assert_eq!(verrou.default_factory().store().name(), "sqlite");
        assert_eq!(verrou.use_store("audit").unwrap().store().name(), "memory");
    }

    // A bad URL is an error naming the variable, not a fallback.
    set(STORE_URL_VAR, Some("redis:/hunter2@nowhere"));
    match Config::from_env() {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(reason.starts_with("LOCK_STORE_URL: "), "{reason}");
            assert!(!reason.contains("hunter2"), "{reason}");
        }
        other => panic!("a bad LOCK_STORE_URL gave {other:?}"),
    }
    set(STORE_URL_VAR, None);

    // `default_from_env` picks among the named stores, and wins over `default`.
    let var = "VERROU_TEST_LOCK_STORE";
    let mut config = Config::new()
        .store("main", StoreConfig::memory())
        .store("other", StoreConfig::memory());
    config.default = Some("main".to_owned());
    config.default_from_env = Some(var.to_owned());
    set(var, None);
    assert_eq!(config.build().await.unwrap().default_store_name(), "main");
    set(var, Some("other"));
    assert_eq!(config.build().await.unwrap().default_store_name(), "other");
    set(var, Some("nope"));
    match config.build().await {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(reason.contains(&format!("`nope` (from {var})")), "{reason}");
        }
        other => panic!("an unknown store from the environment gave {other:?}"),
    }
    set(var, None);
}
