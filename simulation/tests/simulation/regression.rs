//! Every seed in `simulation/regression-seeds.txt`, on every CI run.

use std::path::Path;

use raftq_simulation::{REGRESSION_FILE, read_regression_seeds};

#[test]
fn regression_seeds_pass() {
    let listed = read_regression_seeds(Path::new(REGRESSION_FILE)).expect("regression file parses");
    let mut failed = Vec::new();
    for entry in &listed {
        let summary = super::run(&[entry.seed], &entry.options);
        if !summary.failed.is_empty() {
            failed.push(format!("{} ({})", entry.seed, entry.comment));
        }
    }
    assert!(failed.is_empty(), "regression seeds fail again: {failed:#?}");
}
