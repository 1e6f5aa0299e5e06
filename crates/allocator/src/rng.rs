//! A tiny deterministic PRNG (SplitMix64, Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014) for the agent shuffle.
//!
//! Why not a crate: the allocator must be a pure function of its inputs, so its only randomness is a
//! seed passed in by the master, and the whole generator is a dozen lines. The same seed always gives
//! the same sequence on every platform, so an allocation round can be replayed from its seed.

/// SplitMix64: one 64-bit word of state, full period 2^64, passes BigCrush; good enough for shuffling.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`), by the multiply-high reduction (Lemire). Its bias is at most
    /// n / 2^64, far below anything a shuffle of agents could notice.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0) has no values");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fisher-Yates shuffle in place.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_seeds_differ() {
        let a: Vec<u64> = {
            let mut r = SplitMix64::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SplitMix64::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SplitMix64::new(8);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn known_first_output_for_seed_zero() {
        // Reference value of splitmix64 seeded with 0 (as in Vigna's splitmix64.c).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn shuffle_is_a_permutation_and_every_position_is_reached() {
        let mut first_seen = [false; 5];
        for seed in 0..200 {
            let mut items = [0, 1, 2, 3, 4];
            SplitMix64::new(seed).shuffle(&mut items);
            let mut sorted = items;
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4], "seed {seed}");
            first_seen[items[0]] = true;
        }
        assert!(first_seen.iter().all(|s| *s), "{first_seen:?}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(42);
        for n in 1..50 {
            for _ in 0..20 {
                assert!(r.below(n) < n);
            }
        }
    }
}
