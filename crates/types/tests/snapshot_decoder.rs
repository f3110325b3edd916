//! Arbitrary and damaged snapshot streams given to the decoder: it hands
//! out pairs or refuses, never panics, and never reports complete a stream
//! whose pairs differ from what was sent. A peer (or anyone who reaches its
//! port) chooses these bytes.

use proptest::prelude::*;
use raftq_types::snapshot_stream::{Decoder, Encoder};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn encode(pairs: &Pairs) -> Vec<Vec<u8>> {
    let mut chunks = vec![Encoder::header()];
    let mut encoder = Encoder::new();
    for (key, value) in pairs {
        chunks.extend(encoder.push(key, value));
    }
    chunks.extend(encoder.finish());
    chunks
}

/// Feeds chunks until one is refused; the pairs, and whether it completed.
fn decode(chunks: &[Vec<u8>]) -> (Pairs, bool) {
    let mut decoder = Decoder::new();
    let mut pairs = Vec::new();
    for chunk in chunks {
        match decoder.chunk(chunk) {
            Ok(more) => pairs.extend(more),
            Err(_) => return (pairs, false),
        }
    }
    (pairs, decoder.is_complete())
}

fn pairs() -> impl Strategy<Value = Pairs> {
    proptest::collection::vec(
        (proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..32)),
        0..20,
    )
}

proptest! {
    // PROPTEST_CASES raises the count (ProptestConfig::default reads it).
    #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases.max(2_000)))]

    #[test]
    fn arbitrary_chunks_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..6)) {
        let _ = decode(&chunks);
    }

    #[test]
    fn a_stream_round_trips(pairs in pairs()) {
        prop_assert_eq!(decode(&encode(&pairs)), (pairs, true));
    }

    #[test]
    fn a_damaged_stream_is_never_complete_with_other_pairs(
        pairs in pairs(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1u8..), 1..4),
    ) {
        let mut chunks = encode(&pairs);
        for (chunk, at, byte) in flips {
            let n = chunks.len();
            let chunk = &mut chunks[chunk.index(n)];
            if !chunk.is_empty() {
                let i = at.index(chunk.len());
                chunk[i] ^= byte;
            }
        }
        let (decoded, complete) = decode(&chunks);
        if complete {
            prop_assert_eq!(decoded, pairs, "a damaged stream completed with other pairs");
        }
    }
}
