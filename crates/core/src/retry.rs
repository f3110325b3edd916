//! The retry policy: exponential backoff with deterministic jitter.
//!
//! delay = min(backoff_max, backoff_base · 2^(delivery_count − 1)), minus up
//! to a quarter of it as jitter. The jitter is a hash of the message id and
//! the delivery count — never a random number — so every replica computes
//! the same delay, and retries of different messages still spread out.

/// The delay before a failed message becomes visible again.
pub fn retry_delay_ms(backoff_base_ms: u64, backoff_max_ms: u64, message_id: u64, delivery_count: u32) -> u64 {
    if backoff_base_ms == 0 {
        return 0;
    }
    let exponent = delivery_count.saturating_sub(1).min(63);
    let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
    let delay = backoff_base_ms.saturating_mul(factor).min(backoff_max_ms);
    let jitter_span = delay / 4;
    if jitter_span == 0 {
        return delay;
    }
    let jitter = mix64(message_id ^ (u64::from(delivery_count) << 48)) % (jitter_span + 1);
    delay - jitter
}

/// SplitMix64's finalizer: a fixed bijective hash with good bit mixing.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_base_means_immediate() {
        assert_eq!(retry_delay_ms(0, 60_000, 7, 5), 0);
    }

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        for id in 1..200u64 {
            for count in 1..=40u32 {
                let full = 1_000u64.saturating_mul(1u64 << (count - 1).min(63)).min(60_000);
                let got = retry_delay_ms(1_000, 60_000, id, count);
                assert!(got <= full && got >= full - full / 4, "id {id} count {count}: {got} vs {full}");
            }
        }
    }

    #[test]
    fn is_deterministic_and_varies_by_message() {
        assert_eq!(retry_delay_ms(1_000, 60_000, 42, 3), retry_delay_ms(1_000, 60_000, 42, 3));
        let distinct: std::collections::BTreeSet<u64> =
            (1..50).map(|id| retry_delay_ms(1_000, 60_000, id, 3)).collect();
        assert!(distinct.len() > 10, "jitter does not spread retries: {distinct:?}");
    }
}
