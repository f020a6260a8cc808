//! A fixed, mergeable latency histogram: four buckets per power of two of microseconds
//! (each bucket at most 19% wide), 128 buckets up to ~2^32 µs. Histograms merge by adding
//! counts, so stored per-minute rows combine into quantiles over any range.

/// Number of buckets.
pub const BUCKETS: usize = 128;

/// The bucket of a latency in microseconds.
pub fn bucket(micros: u64) -> usize {
    if micros < 4 {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros() as usize;
    let sub = ((micros >> (msb - 2)) & 3) as usize;
    (4 + (msb - 2) * 4 + sub).min(BUCKETS - 1)
}

/// The upper edge of bucket `i`, in microseconds.
pub fn upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64 + 1;
    }
    let msb = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    (4 + sub + 1) << (msb - 2)
}

/// The `q` quantile (0..=1) in microseconds (a bucket's upper edge), `None` when empty.
pub fn quantile(hist: &[i64], q: f64) -> Option<u64> {
    let total: i64 = hist.iter().fold(0i64, |a, b| a.saturating_add(*b));
    if total <= 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as i64;
    let mut seen: i64 = 0;
    hist.iter()
        .position(|c| {
            seen = seen.saturating_add(*c);
            seen >= rank
        })
        .map(upper)
}

/// Adds `other` into `into` (both [`BUCKETS`] long; shorter ones are padded).
pub fn merge(into: &mut Vec<i64>, other: &[i64]) {
    if into.len() < BUCKETS {
        into.resize(BUCKETS, 0);
    }
    for (a, b) in into.iter_mut().zip(other) {
        *a = a.saturating_add(*b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_and_order() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            100,
            1000,
            65_000,
            1_000_000,
            u64::from(u32::MAX),
        ] {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            assert!(
                upper(b) > us || b == BUCKETS - 1,
                "{us} -> {b} ({})",
                upper(b)
            );
            last = b;
        }
    }

    #[test]
    fn quantiles_of_merged_histograms() {
        let mut a = vec![0i64; BUCKETS];
        let mut b = vec![0i64; BUCKETS];
        a[bucket(1_000)] += 90;
        b[bucket(300_000)] += 10;
        merge(&mut a, &b);
        let p50 = quantile(&a, 0.5).expect("p50");
        let p99 = quantile(&a, 0.99).expect("p99");
        assert!((1_000..1_300).contains(&p50), "{p50}");
        assert!((300_000..360_000).contains(&p99), "{p99}");
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }
}
