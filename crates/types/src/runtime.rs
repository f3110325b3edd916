//! The async runtime raftq runs openraft on: tokio, with one difference.
//!
//! openraft draws its randomness (election timeouts, tick jitter) from
//! [`AsyncRuntime::thread_rng`]. On tokio that is the OS-seeded thread rng,
//! which makes a simulated run impossible to replay. [`RaftqRuntime`] draws
//! from a task-local seed when one is in scope ([`with_seed`], used by the
//! simulation around each node) and from the OS otherwise (production).
//! Each spawned task inherits a seed derived from its parent's, and each
//! draw advances the seed, so a seeded node's sequence of draws depends only
//! on the seed and the order of events — which the simulation controls.
//!
//! openraft's own `openraft::rt::deterministic_rng::DeterministicRng` wraps
//! a runtime the same way, but it panics when a task spawns or draws with
//! no seed in scope. Production has no seed, and the request tasks tonic
//! and hyper spawn call into openraft outside any scope; a panic there must
//! not be possible, so this runtime falls back to the OS instead.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::Duration;

use openraft::OptionalSend;
use openraft::async_runtime::{AsyncRuntime, Select2, Select3, Select4};
use openraft_rt_tokio::TokioRuntime;
use rand::SeedableRng;
use rand::rngs::SmallRng;

tokio::task_local! {
    static SEED: Cell<u64>;
}

/// Runs `future` with openraft's randomness derived from `seed`: every
/// openraft task spawned inside it, and every draw, is reproducible.
pub fn with_seed<F: Future>(seed: u64, future: F) -> impl Future<Output = F::Output> {
    SEED.scope(Cell::new(seed), future)
}

/// SplitMix64's finaliser over a Weyl step of `gamma`: a bijection on u64
/// with good avalanche, so nearby seeds give unrelated streams.
fn mix(seed: u64, gamma: u64) -> u64 {
    let mut z = seed.wrapping_add(gamma);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The current task's seed, advanced; `None` outside [`with_seed`].
fn next_seed() -> Option<u64> {
    SEED.try_with(|cell| {
        let seed = cell.get();
        cell.set(mix(seed, 0x6a09_e667_f3bc_c908));
        seed
    })
    .ok()
}

/// tokio, with [`with_seed`]-controlled randomness (module docs).
#[derive(Debug)]
pub struct RaftqRuntime {
    inner: TokioRuntime,
}

impl AsyncRuntime for RaftqRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;
    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = <TokioRuntime as AsyncRuntime>::Watch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        match next_seed() {
            Some(seed) => TokioRuntime::spawn(SEED.scope(Cell::new(mix(seed, 0x9e37_79b9_7f4a_7c15)), future)),
            None => TokioRuntime::spawn(future),
        }
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn select2<A, B>(a: A, b: B) -> impl Future<Output = Select2<A::Output, B::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
    {
        TokioRuntime::select2(a, b)
    }

    fn select3<A, B, C>(
        a: A,
        b: B,
        c: C,
    ) -> impl Future<Output = Select3<A::Output, B::Output, C::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
        C: Future + OptionalSend,
    {
        TokioRuntime::select3(a, b, c)
    }

    fn select4<A, B, C, D>(
        a: A,
        b: B,
        c: C,
        d: D,
    ) -> impl Future<Output = Select4<A::Output, B::Output, C::Output, D::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
        C: Future + OptionalSend,
        D: Future + OptionalSend,
    {
        TokioRuntime::select4(a, b, c, d)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        match next_seed() {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => rand::make_rng(),
        }
    }

    fn new(threads: usize) -> Self {
        RaftqRuntime { inner: TokioRuntime::new(threads) }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        TokioRuntime::spawn_blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn draws() -> Vec<u64> {
        (0..4).map(|_| RaftqRuntime::thread_rng().random_range(0..1_000_000)).collect()
    }

    #[tokio::test]
    async fn a_seed_gives_the_same_draws_and_spawned_tasks_inherit_it() {
        let run = |seed| {
            with_seed(seed, async {
                let mut own = draws();
                let child = RaftqRuntime::spawn(async { draws() }).await.expect("task");
                own.extend(child);
                own
            })
        };
        let a = run(7).await;
        assert_eq!(a, run(7).await);
        assert_ne!(a, run(8).await);
        assert_ne!(a[..4], a[4..], "a child's stream differs from its parent's");
    }

    #[tokio::test]
    async fn outside_a_seed_scope_it_draws_from_the_os_and_does_not_panic() {
        let a = draws();
        let b = RaftqRuntime::spawn(async { draws() }).await.expect("task");
        assert_ne!(a, b);
    }
}
