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
    // A standing backlog: published first, kept in the queue while the
    // run's own messages go through, consumed at the end, never counted
    // as the run's (neither unexpected nor received).
    let report = bench(
        &servers,
        &[
            "--scenario",
            "end-to-end",
            "--messages",
            "300",
            "--inflight",
            "8",
            "--standing",
            "500",
            "--receive-batch",
            "10",
        ],
    )
    .await;
    assert_eq!((report["confirmed"].as_u64(), report["received"].as_u64()), (Some(300), Some(300)), "{report}");
    assert_eq!((report["lost"].as_u64(), report["unexpected"].as_u64()), (Some(0), Some(0)), "{report}");
    assert_eq!((report["standing"].as_u64(), report["standing_received"].as_u64()), (Some(500), Some(500)), "{report}");
    let report =
        bench(&servers, &["--scenario", "topic", "--fanout", "3", "--messages", "300", "--inflight", "8"]).await;
    assert_eq!((report["confirmed"].as_u64(), report["fanout"].as_u64()), (Some(300), Some(3)), "{report}");
    assert_eq!(report["queues_wrong"], serde_json::json!([]), "{report}");
    assert!(report["copies_per_sec"].as_f64().is_some_and(|v| v > 0.0), "{report}");
}

/// `--sweep`: open-loop steps at the given rates, a saturated step ends the
/// sweep and is followed by one at half the rate achieved; the CSV and the
/// SVG are written and every step is checked. The first rate needs a round
/// trip under 40 ms with 4 requests in flight; the second cannot be kept up
/// with by construction (it would need one under 200 µs, below a majority's
/// fsync plus two network hops), so the test asserts no speed, only that
/// saturation is seen.
#[tokio::test(flavor = "multi_thread")]
async fn bench_sweep_writes_the_curve_and_stops_at_saturation() {
    let cluster = Cluster::start("bench-sweep", 3, Options::default()).await;
    let servers = cluster.running_ids().iter().map(|id| cluster.addr(*id)).collect::<Vec<_>>().join(",");
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().to_str().expect("utf-8 path");
    let args = [
        "--scenario",
        "end-to-end",
        "--sweep",
        "--rates",
        "100,20000,40000",
        "--step-duration",
        "300ms",
        "--inflight",
        "4",
        "--queue",
        "sweep",
        "--out",
        out_dir,
    ];
    let report = bench(&servers, &args).await;
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "two rates (the third not reached after saturation) and the half step: {report}");
    assert_eq!(steps[0]["saturated"], false, "{report}");
    assert_eq!(steps[1]["saturated"], true, "{report}");
    assert_eq!(steps[2]["half_saturation"], true, "{report}");
    let saturation = report["saturation_msgs_per_sec"].as_f64().expect("saturation found");
    let half = steps[2]["offered_msgs_per_sec"].as_f64().expect("half rate");
    assert!((half - saturation / 2.0).abs() <= 1.0, "half of the highest rate achieved: {report}");
    for step in steps {
        assert_eq!((step["lost"].as_u64(), step["duplicated"].as_u64()), (Some(0), Some(0)), "{report}");
        assert!(step["confirm_latency"]["p99_ms"].as_f64().is_some_and(|v| v > 0.0), "{report}");
        assert!(step["end_to_end_latency"]["count"].as_u64().is_some_and(|n| n > 0), "{report}");
    }
    let csv = std::fs::read_to_string(out.path().join("sweep.csv")).expect("sweep.csv");
    assert_eq!(csv.lines().count(), 4, "header and one row per step:\n{csv}");
    assert!(csv.starts_with("offered_msgs_per_sec,achieved_msgs_per_sec,"), "{csv}");
    let svg = std::fs::read_to_string(out.path().join("sweep.svg")).expect("sweep.svg");
    assert!(svg.starts_with("<svg") && svg.contains("confirm p99") && svg.contains("end-to-end p99"));
}
