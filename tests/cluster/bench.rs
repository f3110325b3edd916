//! `raftq bench` smoke test: a tiny run of each scenario against a real
//! cluster checks that the bench's JSON report is complete and its own
//! correctness check (consumed = confirmed) holds. Never a speed threshold:
//! performance is measured with the bench itself, not in tests.

use tokio::process::Command;

use crate::harness::{Cluster, Options};

async fn bench(servers: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_raftq"))
        .args(["--servers", servers, "--json", "bench"])
        .args(args)
        .output()
        .await
        .expect("run raftq bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench {args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bench output is not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_reports_and_checks_every_scenario() {
    let cluster = Cluster::start("bench", 3, Options::default()).await;
    let servers = cluster.running_ids().iter().map(|id| cluster.addr(*id)).collect::<Vec<_>>().join(",");
    for (scenario, extra) in [("publish", "1"), ("end-to-end", "1"), ("drain", "1"), ("publish", "10")] {
        let report =
            bench(&servers, &["--scenario", scenario, "--messages", "300", "--inflight", "8", "--batch", extra]).await;
        assert_eq!(report["confirmed"], 300, "{scenario}: {report}");
        assert_eq!(report["lost"], 0, "{scenario}: {report}");
        assert_eq!(report["unexpected"], 0, "{scenario}: {report}");
        for key in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(report["confirm_latency"][key].as_f64().is_some_and(|v| v > 0.0), "{scenario}: {key} in {report}");
        }
        assert!(report["publish_msgs_per_sec"].as_f64().is_some_and(|v| v > 0.0), "{report}");
        if scenario != "publish" {
            assert_eq!(report["received"], 300, "{scenario}: every confirmed message consumed: {report}");
            assert!(report["end_to_end_latency"]["count"].as_u64() == Some(300), "{report}");
        }
    }
    let report =
        bench(&servers, &["--scenario", "topic", "--fanout", "3", "--messages", "300", "--inflight", "8"]).await;
    assert_eq!((report["confirmed"].as_u64(), report["fanout"].as_u64()), (Some(300), Some(3)), "{report}");
    assert_eq!(report["queues_wrong"], serde_json::json!([]), "{report}");
    assert!(report["copies_per_sec"].as_f64().is_some_and(|v| v > 0.0), "{report}");
}
