//! Property tests: arbitrary input to the parsing and restoring entry points
//! gives a value or a typed error, never a panic; valid input round-trips.

use std::time::Duration;

use proptest::prelude::*;
use verrou_core::store::validate_key;
use verrou_core::{IntoTtl, LockError, LockFactory, Ttl, parse_duration};
use verrou_memory::MemoryStore;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A held lock's serialized form, as `Lock::serialize` writes it.
fn serialized_lock(key: &str, ttl_ms: u64) -> (LockFactory, String) {
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks.create_lock(key, ttl_ms).unwrap();
    runtime().block_on(lock.acquire()).unwrap();
    let text = lock.serialize();
    (locks, text)
}

/// Uses a restored lock the way a caller would; none of it may panic.
fn exercise(locks: &LockFactory, text: &str) {
    match locks.restore_lock(text) {
        Ok(lock) => {
            assert!(!lock.key().is_empty());
            let _ = (lock.is_held(), lock.is_expired(), lock.remaining_time());
            let _ = format!("{lock:?}");
            let _ = lock.serialize();
            let rt = runtime();
            let _ = rt.block_on(lock.extend());
            let _ = rt.block_on(lock.release());
        }
        Err(LockError::InvalidSerializedLock { reason }) => assert!(!reason.is_empty()),
        Err(other) => panic!("restore_lock({text:?}) gave a wrong error type: {other:?}"),
    }
}

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("", 1),
    (" milliseconds", 1),
    ("s", 1_000),
    (" sec", 1_000),
    ("m", 60_000),
    (" minutes", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_text_parses_to_a_duration_or_a_typed_error(text in any::<String>()) {
        match parse_duration(&text) {
            Ok(d) => prop_assert!(d >= Duration::from_millis(1)),
            Err(LockError::InvalidDuration { input, reason }) => {
                prop_assert_eq!(input, text);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "wrong error type {other:?}"),
        }
    }

    #[test]
    fn duration_shaped_text_never_panics(
        number in "[0-9.]{0,25}",
        space in " {0,2}",
        unit in "(ms|s|m|h|d|w|y|sec|mins|hours|days|weeks|years|[a-zA-Z]{0,3})",
        sign in "[-+]?",
    ) {
        let text = format!("{sign}{number}{space}{unit}");
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d >= Duration::from_millis(1));
        }
    }

    #[test]
    fn whole_durations_round_trip(value in 1u64..1_000_000_000, unit in 0..UNITS.len()) {
        let (suffix, ms) = UNITS[unit];
        let text = format!("{value}{suffix}");
        // Up to 2^53 ms (~285,000 years) is representable; beyond, a typed error.
        if value * ms <= 1 << 53 {
            prop_assert_eq!(parse_duration(&text).unwrap(), Duration::from_millis(value * ms));
            prop_assert_eq!(text.as_str().into_ttl().unwrap(), Ttl::After(Duration::from_millis(value * ms)));
        } else {
            let too_large = matches!(parse_duration(&text), Err(LockError::InvalidDuration { .. }));
            prop_assert!(too_large);
        }
    }

    #[test]
    fn fractional_seconds_round_trip_to_the_millisecond(ms in 1u64..100_000_000) {
        let text = format!("{}.{:03}s", ms / 1000, ms % 1000);
        let parsed = parse_duration(&text).unwrap();
        // f64 arithmetic may land a hair off the exact millisecond, never a whole one.
        let diff = parsed.abs_diff(Duration::from_millis(ms));
        prop_assert!(diff < Duration::from_micros(1), "{text} gave {parsed:?}");
    }

    #[test]
    fn numbers_and_durations_convert_or_fail_typed(ms in any::<u64>(), secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        match ms.into_ttl() {
            Ok(ttl) => prop_assert_eq!(ttl, Ttl::After(Duration::from_millis(ms))),
            Err(e) => {
                let typed = matches!(e, LockError::InvalidDuration { .. });
                prop_assert!(ms == 0 && typed, "{e:?}");
            }
        }
        let d = Duration::new(secs, nanos);
        match d.into_ttl() {
            Ok(ttl) => prop_assert_eq!(ttl, Ttl::After(d)),
            Err(e) => {
                let typed = matches!(e, LockError::InvalidDuration { .. });
                prop_assert!(d < Duration::from_millis(1) && typed, "{e:?}");
            }
        }
        prop_assert!(verrou_core::Expiry::After(d).into_ttl().is_ok() == d.into_ttl().is_ok());
    }

    #[test]
    fn keys_are_valid_exactly_when_the_rules_say(key in any::<String>(), max in 0usize..64) {
        let expected = !key.is_empty() && key.len() <= max && !key.contains('\0');
        match validate_key(&key, max) {
            Ok(()) => prop_assert!(expected),
            Err(LockError::InvalidKey { reason }) => prop_assert!(!expected && !reason.is_empty()),
            Err(other) => prop_assert!(false, "wrong error type {other:?}"),
        }
    }

    #[test]
    fn any_text_restores_to_a_lock_or_a_typed_error(text in any::<String>()) {
        exercise(&LockFactory::new(MemoryStore::new()), &text);
    }

    #[test]
    fn json_shaped_text_restores_or_fails_typed(
        v in prop_oneof![Just("1".to_owned()), "-?[0-9]{1,25}", Just("null".to_owned()), Just("1.5".to_owned())],
        key in prop_oneof![Just("null".to_owned()), "\"[^\"\\\\]{0,8}\"", Just("\"\\u0000\"".to_owned())],
        owner in prop_oneof![Just("null".to_owned()), "\"[a-f0-9]{0,300}\"", Just("\"\"".to_owned())],
        ttl in prop_oneof![Just("null".to_owned()), "-?[0-9]{1,25}", Just("1e400".to_owned())],
        exp in prop_oneof![Just("null".to_owned()), "-?[0-9]{1,25}", Just("18446744073709551615".to_owned())],
        tok in prop_oneof![Just("null".to_owned()), "-?[0-9]{1,25}", Just("\"7\"".to_owned())],
        extra in prop_oneof![Just(String::new()), Just(",\"x\":1".to_owned())],
    ) {
        let text = format!(
            "{{\"v\":{v},\"key\":{key},\"owner\":{owner},\"ttl_ms\":{ttl},\"expires_at_ms\":{exp},\"fencing_token\":{tok}{extra}}}"
        );
        exercise(&LockFactory::new(MemoryStore::new()), &text);
    }

    #[test]
    fn mutated_serialized_locks_restore_or_fail_typed(
        key in "[a-z:0-9]{1,12}",
        ttl in 1u64..100_000,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
    ) {
        let (locks, text) = serialized_lock(&key, ttl);
        let mut chars: Vec<char> = text.chars().collect();
        for (at, c, kind) in edits {
            if chars.is_empty() {
                break;
            }
            let i = at.index(chars.len());
            match kind {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                _ => {
                    chars.remove(i);
                }
            }
        }
        let mutated: String = chars.into_iter().collect();
        exercise(&locks, &mutated);
    }

    #[test]
    fn serialized_locks_round_trip(key in "\\PC{1,40}", ttl in 1u64..10_000_000) {
        let (locks, text) = serialized_lock(&key, ttl);
        let original = locks.restore_lock(&text).unwrap();
        prop_assert_eq!(original.key(), key.as_str());
        prop_assert_eq!(original.ttl(), verrou_core::Expiry::After(Duration::from_millis(ttl)));
        prop_assert!(original.fencing_token().is_some());
        prop_assert_eq!(original.serialize(), text);
        // The restored handle is the holder: it can release.
        runtime().block_on(original.release()).unwrap();
    }
}
