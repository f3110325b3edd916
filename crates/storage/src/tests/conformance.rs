//! openraft's storage conformance suite, against both stores.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use crate::mem::{MemDisk, MemLogStore, MemStateMachine, MemStore};
use crate::rocks::{RocksLogStore, RocksStateMachine, RocksStore};
use crate::types::TypeConfig;

fn open_failed(err: impl std::error::Error + 'static) -> StorageError<TypeConfig> {
    StorageError::read(TypeConfig::err_from_error(&err))
}

struct RocksBuilder;

impl StoreBuilder<TypeConfig, RocksLogStore, RocksStateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, RocksLogStore, RocksStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(open_failed)?;
        let (log_store, machine) = RocksStore::open(dir.path()).await.map_err(open_failed)?;
        Ok((dir, log_store, machine))
    }
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, MemLogStore, MemStateMachine> for MemBuilder {
    async fn build(&self) -> Result<((), MemLogStore, MemStateMachine), StorageError<TypeConfig>> {
        let (log_store, machine) = MemStore::open(MemDisk::new()).await.map_err(open_failed)?;
        Ok(((), log_store, machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocks_store_passes_openraft_suite() {
    Suite::test_all(RocksBuilder).await.expect("conformance suite");
}

#[tokio::test]
async fn mem_store_passes_openraft_suite() {
    Suite::test_all(MemBuilder).await.expect("conformance suite");
}
