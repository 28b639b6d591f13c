//! Percentiles of one round and medians across rounds.

use std::time::Duration;

/// The `q`-quantile (0..=1) of sorted values: the smallest value with at
/// least `q` of the sample at or below it. `bench/node/peer.mjs` uses the
/// same rule, so the two sides' percentiles are comparable.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // `q * len` is small and non-negative: the cast cannot truncate a real value.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    Some(sorted[index])
}

/// The median of the values (mean of the two middle ones for an even count);
/// `None` for no values.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Smallest and largest value, to show the spread across rounds.
pub fn range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_sample_values() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(Duration::from_micros(51)));
        assert_eq!(percentile(&sorted, 0.99), Some(Duration::from_micros(100)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
        assert_eq!(range([2.0, 5.0, 1.0]), Some((1.0, 5.0)));
    }
}
