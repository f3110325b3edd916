//! `raftq bench --sweep`: the throughput–latency curve. Open-loop load at
//! rising offered rates: each rate has a fixed schedule (request k is due at
//! k × batch / rate), and every latency is measured from the request's *due*
//! time, not from when it was finally sent. A server that stalls therefore
//! cannot hide the queue that builds up behind it (the "coordinated
//! omission" a closed loop suffers, corrected as wrk2 and HdrHistogram do).
//! The bodies carry the due time too, so end-to-end latency is corrected the
//! same way. The sweep stops at the first rate the cluster cannot keep up
//! with (achieved below 90 % of offered), runs one more step at half the
//! highest rate achieved, and writes a CSV and an SVG plot.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use raftq_client::{Client, OutgoingMessage};

use super::{BenchArgs, Producer, Scenario, Totals, body, spawn_consumers};

/// A step is saturated when it achieved less than this share of its
/// offered rate.
const SATURATED_BELOW: f64 = 0.9;
/// Each automatic rate is this many times the last.
const RATE_FACTOR: f64 = 1.5;

/// One rate's outcome.
#[derive(Debug)]
pub(super) struct Step {
    pub offered: f64,
    pub achieved: f64,
    pub confirm: Histogram<u64>,
    pub e2e: Histogram<u64>,
    pub errors: u64,
    pub lost: usize,
    pub duplicated: usize,
    pub unexpected: usize,
    /// The extra step at half the saturation rate.
    pub half: bool,
}

impl Step {
    fn saturated(&self) -> bool {
        self.achieved < SATURATED_BELOW * self.offered
    }
}

/// The offered rates: `--rates` as given, or `--sweep-start` growing by
/// [`RATE_FACTOR`] for `--sweep-steps` steps.
pub(super) fn rates(args: &BenchArgs) -> Vec<f64> {
    if !args.rates.is_empty() {
        return args.rates.iter().map(|r| *r as f64).collect();
    }
    (0..args.sweep_steps).map(|i| (args.sweep_start as f64 * RATE_FACTOR.powi(i as i32)).round()).collect()
}

/// When request `k` of a step at `rate` msgs/s in batches of `batch` is due,
/// in µs from the step's start.
pub(super) fn due_us(k: u64, batch: u64, rate: f64) -> u64 {
    (k as f64 * batch as f64 * 1e6 / rate).round() as u64
}

pub(super) async fn run(client: &Client, producers: &[Client], args: &BenchArgs, json: bool) -> Result<()> {
    if !matches!(args.scenario, Scenario::Publish | Scenario::EndToEnd) {
        bail!("--sweep runs the publish or end-to-end scenario");
    }
    if args.rates.contains(&0) || args.sweep_start == 0 {
        bail!("--rates and --sweep-start must be positive msgs/s");
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut next_seq = 0;
    for rate in rates(args) {
        let step = run_step(client, producers, args, rate, &mut next_seq, false).await?;
        progress(&step);
        let saturated = step.saturated();
        steps.push(step);
        if saturated {
            break;
        }
    }
    let saturation = steps.iter().any(Step::saturated).then(|| steps.iter().map(|s| s.achieved).fold(0.0, f64::max));
    if let Some(saturation) = saturation {
        let step = run_step(client, producers, args, (saturation / 2.0).max(1.0), &mut next_seq, true).await?;
        progress(&step);
        steps.push(step);
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let (csv_path, svg_path) = (args.out.join("sweep.csv"), args.out.join("sweep.svg"));
    std::fs::write(&csv_path, csv(&steps)).with_context(|| format!("writing {}", csv_path.display()))?;
    plot(&steps, args, &svg_path)?;
    let half = steps.iter().find(|s| s.half);
    if json {
        let result = serde_json::json!({
            "scenario": format!("{:?}", args.scenario), "sweep": true,
            "producers": args.producers, "connections": args.connections, "inflight": args.inflight,
            "batch": args.batch, "size": args.size, "step_secs": args.step_duration.as_secs_f64(),
            "steps": steps.iter().map(step_json).collect::<Vec<_>>(),
            "saturation_msgs_per_sec": saturation.map(f64::round),
            "half_saturation": half.map(step_json),
            "csv": csv_path, "svg": svg_path,
        });
        println!("{result}");
    } else {
        print!("{}", table(&steps));
        match (saturation, half) {
            (Some(saturation), Some(half)) => println!(
                "  saturation: {saturation:.0} msgs/s; at half of it ({:.0} msgs/s) confirm p99 {:.2} ms",
                half.offered,
                ms(half.confirm.value_at_quantile(0.99))
            ),
            _ => println!("  saturation not reached: every rate was kept up with (raise --rates or --sweep-steps)"),
        }
        println!("  wrote {} and {}", csv_path.display(), svg_path.display());
    }
    let (lost, unexpected): (usize, usize) =
        steps.iter().map(|s| (s.lost, s.unexpected)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    if lost > 0 || unexpected > 0 {
        bail!("bench check failed: lost={lost} unexpected={unexpected}");
    }
    Ok(())
}

fn progress(step: &Step) {
    eprintln!(
        "  offered {:>8.0} msgs/s{}: achieved {:>8.0}, confirm p99 {:.2} ms",
        step.offered,
        if step.half { " (half of saturation)" } else { "" },
        step.achieved,
        ms(step.confirm.value_at_quantile(0.99))
    );
}

/// One open-loop step at `rate` msgs/s for `--step-duration`; sequence
/// numbers continue from `next_seq` so no two steps share one.
async fn run_step(
    client: &Client,
    clients: &[Client],
    args: &BenchArgs,
    rate: f64,
    next_seq: &mut u64,
    half: bool,
) -> Result<Step> {
    // Due times and the totals' clock count from the same instant.
    let start = Instant::now();
    let totals = Arc::new(Totals::new(start, *next_seq));
    let consumers = match args.scenario {
        Scenario::EndToEnd => spawn_consumers(client, args, &totals, args.consumers.unwrap_or(1)),
        _ => Vec::new(),
    };
    let producers = Producer::all(clients, args);
    let batch = u64::from(args.batch);
    let requests = ((args.step_duration.as_secs_f64() * rate / batch as f64).ceil() as u64).max(1);
    // The cap on requests in flight: when it is reached the schedule slips,
    // and the latencies (measured from the due times) show it.
    let in_flight = Arc::new(tokio::sync::Semaphore::new((args.producers * args.inflight) as usize));
    let started = tokio::time::Instant::from_std(start);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..requests {
        let due = due_us(k, batch, rate);
        tokio::time::sleep_until(started + Duration::from_micros(due)).await;
        let permit = in_flight.clone().acquire_owned().await.context("in-flight slots")?;
        // Finished tasks are reaped as the schedule runs: the set holds at
        // most the requests in flight, not the whole step.
        while let Some(done) = tasks.try_join_next() {
            done.context("publish task")?;
        }
        let first = *next_seq + k * batch;
        let (producer, totals, queue, size) =
            (producers[k as usize % producers.len()].clone(), totals.clone(), args.queue.clone(), args.size);
        tasks.spawn(async move {
            let messages = (first..first + batch).map(|seq| OutgoingMessage::new(body(seq, due, size))).collect();
            match producer.publish(&queue, messages).await {
                Ok(_) => {
                    let took = totals.elapsed_us().saturating_sub(due).max(1);
                    totals.confirm_us.lock().expect("lock").saturating_record(took);
                    totals.confirmed.lock().expect("lock").extend(first..first + batch);
                }
                Err(e) => {
                    totals.publish_errors.fetch_add(batch, Ordering::Relaxed);
                    totals.failed.lock().expect("lock").extend(first..first + batch);
                    tracing::warn!(error = %e, "publish failed");
                }
            }
            drop(permit);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("publish task")?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    *next_seq += requests * batch;
    totals.end_producing();
    for consumer in consumers {
        consumer.await.context("consumer task")??;
    }
    let confirmed = totals.confirmed.lock().expect("lock").clone();
    let received = totals.received.lock().expect("lock").clone();
    let failed = totals.failed.lock().expect("lock").clone();
    let mut seen = HashSet::new();
    let duplicated = received.iter().filter(|seq| !seen.insert(**seq)).count();
    let (lost, unexpected) = match args.scenario {
        Scenario::EndToEnd => (
            confirmed.difference(&seen).count(),
            seen.difference(&confirmed).filter(|seq| !failed.contains(seq)).count(),
        ),
        _ => (0, 0),
    };
    let confirm = totals.confirm_us.lock().expect("lock").clone();
    let e2e = totals.e2e_us.lock().expect("lock").clone();
    Ok(Step {
        offered: rate,
        achieved: confirmed.len() as f64 / publish_secs.max(f64::EPSILON),
        confirm,
        e2e,
        errors: totals.publish_errors.load(Ordering::Relaxed),
        lost,
        duplicated,
        unexpected,
        half,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// p50, p99, p999, max in ms; all `None` for an empty histogram.
fn quantiles(h: &Histogram<u64>) -> [Option<f64>; 4] {
    if h.is_empty() {
        return [None; 4];
    }
    [h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.value_at_quantile(0.999), h.max()].map(|v| Some(ms(v)))
}

fn step_json(step: &Step) -> serde_json::Value {
    let latency = |h: &Histogram<u64>| {
        let [p50, p99, p999, max] = quantiles(h);
        serde_json::json!({"count": h.len(), "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "max_ms": max})
    };
    serde_json::json!({
        "offered_msgs_per_sec": step.offered.round(), "achieved_msgs_per_sec": step.achieved.round(),
        "saturated": step.saturated(), "half_saturation": step.half,
        "confirm_latency": latency(&step.confirm), "end_to_end_latency": latency(&step.e2e),
        "publish_errors": step.errors, "lost": step.lost, "duplicated": step.duplicated, "unexpected": step.unexpected,
    })
}

pub(super) const CSV_HEADER: &str = "offered_msgs_per_sec,achieved_msgs_per_sec,\
confirm_p50_ms,confirm_p99_ms,confirm_p999_ms,confirm_max_ms,\
e2e_p50_ms,e2e_p99_ms,e2e_p999_ms,e2e_max_ms,\
saturated,half_saturation,publish_errors,lost,duplicated";

/// One line per step, in the order run; empty cells for latencies not
/// measured (end-to-end in a publish sweep).
pub(super) fn csv(steps: &[Step]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for step in steps {
        let cells = |h: &Histogram<u64>| quantiles(h).map(|v| v.map_or(String::new(), |v| format!("{v:.3}"))).join(",");
        writeln!(
            out,
            "{:.0},{:.0},{},{},{},{},{},{},{}",
            step.offered,
            step.achieved,
            cells(&step.confirm),
            cells(&step.e2e),
            u8::from(step.saturated()),
            u8::from(step.half),
            step.errors,
            step.lost,
            step.duplicated
        )
        .expect("writing to a String");
    }
    out
}

fn table(steps: &[Step]) -> String {
    let mut out = format!(
        "  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {}\n",
        "offered", "achieved", "p50 ms", "p99 ms", "p999 ms", "e2e p50", "e2e p99", "e2e p999", "lost/dup"
    );
    for step in steps {
        let [p50, p99, p999, _] = quantiles(&step.confirm);
        let [e50, e99, e999, _] = quantiles(&step.e2e);
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        writeln!(
            out,
            "  {:>9.0}  {:>9.0}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {}/{}{}",
            step.offered,
            step.achieved,
            cell(p50),
            cell(p99),
            cell(p999),
            cell(e50),
            cell(e99),
            cell(e999),
            step.lost,
            step.duplicated,
            if step.half {
                "  (half of saturation)"
            } else if step.saturated() {
                "  (saturated)"
            } else {
                ""
            }
        )
        .expect("writing to a String");
    }
    out
}

/// Latency percentiles (log scale) against achieved throughput: confirm
/// p50/p99/p999, and end-to-end p50/p99 when measured.
pub(super) fn plot(steps: &[Step], args: &BenchArgs, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let mut ordered: Vec<&Step> = steps.iter().collect();
    ordered.sort_by(|a, b| a.achieved.total_cmp(&b.achieved));
    // (legend, colour, (achieved msgs/s, latency ms) points)
    type Series = (String, RGBColor, Vec<(f64, f64)>);
    let mut series: Vec<Series> = Vec::new();
    let curve = |pick: &dyn Fn(&Step) -> Option<f64>| -> Vec<(f64, f64)> {
        ordered.iter().filter_map(|s| pick(s).map(|v| (s.achieved, v.max(0.001)))).collect()
    };
    for (name, index, color) in [("p50", 0, BLUE), ("p99", 1, RGBColor(230, 120, 0)), ("p999", 2, RED)] {
        series.push((format!("confirm {name}"), color, curve(&|s| quantiles(&s.confirm)[index])));
    }
    for (name, index, color) in [("p50", 0, RGBColor(0, 150, 150)), ("p99", 1, MAGENTA)] {
        let points = curve(&|s| quantiles(&s.e2e)[index]);
        if !points.is_empty() {
            series.push((format!("end-to-end {name}"), color, points));
        }
    }
    let x_max = ordered.iter().map(|s| s.achieved).fold(1.0, f64::max) * 1.1;
    let ys = series.iter().flat_map(|(_, _, points)| points.iter().map(|p| p.1));
    let (y_min, y_max) = ys.fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (y_min, y_max) = if y_max > 0.0 { (y_min / 2.0, y_max * 2.0) } else { (0.01, 10.0) };
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!("raftq {:?} sweep: {} B messages, batch {}, open loop", args.scenario, args.size, args.batch);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("achieved msgs/s").y_desc("latency ms (log scale)").draw().map_err(|e| err(&e))?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::histogram;
    use super::*;

    fn step(offered: f64, achieved: f64, confirm_us: &[u64], e2e_us: &[u64]) -> Step {
        let fill = |values: &[u64]| {
            let mut h = histogram();
            values.iter().for_each(|v| h.saturating_record(*v));
            h
        };
        Step {
            offered,
            achieved,
            confirm: fill(confirm_us),
            e2e: fill(e2e_us),
            errors: 0,
            lost: 0,
            duplicated: 0,
            unexpected: 0,
            half: false,
        }
    }

    #[test]
    fn requests_are_due_on_a_fixed_schedule() {
        // 1,000 msgs/s in batches of 10: one request every 10 ms.
        assert_eq!((0..4).map(|k| due_us(k, 10, 1_000.0)).collect::<Vec<_>>(), [0, 10_000, 20_000, 30_000]);
        assert_eq!(due_us(3, 1, 40_000.0), 75);
    }

    #[test]
    fn a_step_is_saturated_below_ninety_percent_of_its_offered_rate() {
        assert!(!step(1000.0, 950.0, &[1], &[]).saturated());
        assert!(step(1000.0, 899.0, &[1], &[]).saturated());
    }

    #[test]
    fn the_csv_has_one_row_per_step_and_empty_cells_for_unmeasured_latency() {
        let steps = [step(1000.0, 998.0, &[1_500, 2_500], &[]), step(2000.0, 1500.0, &[40_000], &[90_000])];
        let out = csv(&steps);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0], CSV_HEADER);
        let columns = CSV_HEADER.split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns), "{out}");
        assert!(lines[1].starts_with("1000,998,1.500,2.501,"), "{out}");
        assert!(lines[1].contains(",,,,0,0,"), "no end-to-end latency, not saturated: {out}");
        assert!(lines[2].starts_with("2000,1500,40.0") && lines[2].contains(",1,0,"), "{out}");
    }

    #[test]
    fn the_plot_is_an_svg_with_a_line_per_percentile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.svg");
        let steps = [
            step(1000.0, 1000.0, &[1_000, 3_000], &[2_000, 5_000]),
            step(2000.0, 2000.0, &[1_200, 4_000], &[2_500, 6_000]),
            step(3000.0, 2100.0, &[90_000, 300_000], &[120_000, 400_000]),
        ];
        let args = BenchArgs::parse_for_test(&["--scenario", "end-to-end", "--sweep"]);
        plot(&steps, &args, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        for label in ["confirm p50", "confirm p99", "confirm p999", "end-to-end p50", "end-to-end p99"] {
            assert!(svg.contains(label), "legend names {label}");
        }
        assert!(svg.matches("<polyline").count() >= 5, "one line per series");
        assert!(svg.contains("achieved msgs/s"));
    }
}
