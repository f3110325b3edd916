//! Group commit: one thread fsyncs RocksDB's write-ahead log for every
//! write that queued up while the previous fsync ran.
//!
//! Writers put their batch into RocksDB without sync (so it is readable at
//! once, as openraft requires of `append`) and then queue a completion here.
//! The thread takes the first queued completion, drains every other one
//! already queued, fsyncs the WAL once (`FlushWAL(sync = true)`), and only
//! then completes them all, in order. The WAL is one sequential file, so an
//! fsync makes every write issued before it durable: a completion never
//! fires before its own write is on disk, and N writes that arrive during
//! one fsync share the next one.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rocksdb::DB;
use tokio::sync::oneshot;

use crate::error::rocks_io;
use crate::types::IOFlushed;

/// Most completions one fsync answers: bounds the work between fsyncs.
const COMPLETIONS_PER_SYNC_MAX: usize = 4096;

/// What to do once the WAL holding a write is synced.
enum Completion {
    /// openraft's append callback.
    Flushed(IOFlushed),
    /// A caller awaiting its own synced write (vote, truncate, purge).
    Waiter(oneshot::Sender<io::Result<()>>),
}

impl Completion {
    fn complete(self, result: &Result<(), String>) {
        let result = result.clone().map_err(io::Error::other);
        match self {
            Completion::Flushed(callback) => callback.io_completed(result),
            // The waiter may have given up (its task was dropped): nothing to tell.
            Completion::Waiter(tx) => drop(tx.send(result)),
        }
    }
}

/// Handle to the group-commit thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Syncer {
    tx: Option<Sender<Completion>>,
    thread: Option<JoinHandle<()>>,
    /// WAL fsyncs done so far; fewer than completions under load.
    syncs: Arc<AtomicU64>,
    /// Held by the thread around each fsync; tests hold it to make writes
    /// queue up behind a "slow disk".
    #[cfg(test)]
    gate: Arc<Mutex<()>>,
}

impl Syncer {
    pub(crate) fn start(db: Arc<DB>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let syncs = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Mutex::new(()));
        let worker = Worker { db, rx, syncs: syncs.clone(), gate: gate.clone() };
        let thread = std::thread::Builder::new().name("raftq-wal-sync".into()).spawn(move || worker.run())?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            syncs,
            #[cfg(test)]
            gate,
        })
    }

    /// Calls `callback` once everything written so far is synced.
    pub(crate) fn flush_then(&self, callback: IOFlushed) {
        if let Err(mpsc::SendError(completion)) = self.sender().send(Completion::Flushed(callback)) {
            completion.complete(&Err("the WAL sync thread has stopped".into()));
        }
    }

    /// Returns once everything written so far is synced.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.sender().send(Completion::Waiter(tx)).map_err(|_| io::Error::other("the WAL sync thread has stopped"))?;
        rx.await.map_err(|_| io::Error::other("the WAL sync thread dropped a sync request"))?
    }

    pub(crate) fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn gate(&self) -> Arc<Mutex<()>> {
        self.gate.clone()
    }

    fn sender(&self) -> &Sender<Completion> {
        self.tx.as_ref().expect("sender lives until drop")
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after it answers what is queued.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the WAL sync thread panicked");
        }
    }
}

struct Worker {
    db: Arc<DB>,
    rx: Receiver<Completion>,
    syncs: Arc<AtomicU64>,
    gate: Arc<Mutex<()>>,
}

impl Worker {
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let _gate = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut batch = vec![first];
            while batch.len() < COMPLETIONS_PER_SYNC_MAX
                && let Ok(next) = self.rx.try_recv()
            {
                batch.push(next);
            }
            let result = self.db.flush_wal(true).map_err(|e| rocks_io(e).to_string());
            self.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(err) = &result {
                tracing::error!("WAL fsync failed, failing {} writes: {err}", batch.len());
            }
            for completion in batch {
                completion.complete(&result);
            }
        }
    }
}
