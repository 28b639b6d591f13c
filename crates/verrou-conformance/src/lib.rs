#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod basics;
pub mod builders;
mod cancel;
mod concurrency;
mod expiry;
mod fencing;
mod harness;
mod keys;
mod model;
mod renewal;
mod restore;
mod run;
mod sharing;
mod waiting;
mod wrappers;

pub use basics::*;
pub use cancel::*;
pub use concurrency::*;
pub use expiry::*;
pub use fencing::*;
pub use harness::{
    Capabilities, churn_distinct_keys, granted_token, require_service, services_required,
    soak_distinct_keys,
};
pub use keys::*;
pub use model::*;
pub use renewal::*;
pub use restore::*;
pub use run::*;
pub use sharing::*;
pub use waiting::*;

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}

/// Emits one `#[tokio::test]` per behaviour of the suite.
///
/// `$make` is an expression evaluated once per test that yields a future of
/// `Option<S>` where `S: LockStore`; `None` skips that test (see
/// [`require_service`]). An optional second argument gives the store's
/// [`Capabilities`] (default: all).
///
/// ```rust,no_run
/// verrou_conformance::conformance_tests!(async { Some(verrou_memory::MemoryStore::new()) });
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!($make, $crate::Capabilities::default());
    };
    ($make:expr, $caps:expr) => {
        $crate::__conformance_cases!(($make, $caps);
            new_key_is_unlocked,
            acquire_locks_the_key,
            exclusivity,
            locks_are_not_reentrant,
            release_by_non_owner_is_not_owned_and_keeps_the_lock,
            release_of_a_free_key_is_not_owned,
            store_contract_on_the_raw_trait,
            acquire_times_out_within_bounds,
            acquire_gives_up_after_max_attempts,
            acquire_and_try_run_do_not_wait,
            force_release_frees_anyone_s_lock,
            guard_releases_when_dropped,
            release_wakes_a_waiter,
            run_returns_the_value_and_releases,
            run_passes_an_error_value_through_and_releases,
            run_releases_on_panic,
            run_releases_when_its_future_is_dropped,
            run_reports_a_lock_that_expired_during_the_work,
            dropped_acquire_leaves_no_lock,
            acquire_dropped_after_the_store_granted_leaves_no_lock,
            run_is_exclusive_across_two_factories,
            concurrent_read_yield_write_loses_no_update,
            restored_lock_extends_and_releases_from_another_factory,
            expiry_lets_another_owner_in,
            expired_holder_cannot_release_or_extend_the_new_holder,
            extend_of_an_expired_lock_nobody_took_is_not_owned,
            extend_keeps_the_lock_alive,
            custom_and_default_ttl,
            never_expiring_lock_stays,
            fencing_tokens_strictly_increase,
            fencing_tokens_keep_rising_across_prunes,
            awkward_keys_are_distinct_or_invalid,
            empty_key_is_invalid,
            model_based_random_operations,
            release_is_not_blocked_by_a_waiting_acquire_on_the_same_handle,
            a_dropped_guard_never_frees_the_next_grant_of_its_handle,
            tasks_sharing_a_handle_take_turns,
            n_attempts_are_n_store_calls,
            extreme_retry_settings_are_handled,
            a_ttl_shorter_than_the_round_trip_fails_with_a_typed_error,
            a_restored_lock_that_was_released_is_not_held,
            calls_cancelled_mid_flight_leave_a_consistent_state,
            renewal_keeps_a_lease_alive_past_its_ttl,
            renewal_stops_and_signals_on_not_owned,
            lost_signal_fires_before_the_store_ttl,
            renewing_run_returns_lease_lost_and_drops_the_work,
            renewing_run_outlives_its_ttl,
            failing_renewals_signal_unreachable_in_time,
            renewal_never_outlives_a_release,
            extend_and_extend_by_say_what_they_mean,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (($make:expr, $caps:expr); $($name:ident),* $(,)?) => {
        $(
            #[$crate::__private::tokio::test(
                flavor = "multi_thread",
                worker_threads = 4,
                crate = "verrou_conformance::__private::tokio"
            )]
            async fn $name() {
                let Some(store) = $make.await else { return };
                $crate::$name(::std::sync::Arc::new(store), $caps).await;
            }
        )*
    };
}

#[cfg(test)]
mod registration {
    /// Every `pub async fn` case in the crate is in `conformance_tests!`: a
    /// case that is written but not registered would silently never run.
    #[test]
    fn every_case_is_registered() {
        let sources = [
            include_str!("basics.rs"),
            include_str!("cancel.rs"),
            include_str!("concurrency.rs"),
            include_str!("expiry.rs"),
            include_str!("fencing.rs"),
            include_str!("keys.rs"),
            include_str!("model.rs"),
            include_str!("renewal.rs"),
            include_str!("restore.rs"),
            include_str!("run.rs"),
            include_str!("sharing.rs"),
            include_str!("waiting.rs"),
        ];
        let lib = include_str!("lib.rs");
        let macro_body = &lib[lib.find("macro_rules! conformance_tests").unwrap()..];
        let macro_body =
            &macro_body[..macro_body.find("macro_rules! __conformance_cases").unwrap()];
        let mut cases = 0;
        for source in sources {
            for line in source.lines() {
                let Some(rest) = line.strip_prefix("pub async fn ") else {
                    continue;
                };
                let name = &rest[..rest.find('(').unwrap()];
                cases += 1;
                assert!(
                    macro_body.contains(&format!("{name},")),
                    "conformance case `{name}` is not registered in `conformance_tests!`"
                );
            }
        }
        assert!(cases >= 50, "only {cases} cases found");
        // And the list of source files is complete.
        let modules = lib
            .lines()
            .filter(|l| l.starts_with("mod ") && l.ends_with(';'))
            .count();
        assert_eq!(
            modules,
            sources.len() + 2,
            "a module is missing from `sources` (harness and wrappers hold no cases)"
        );
    }
}
