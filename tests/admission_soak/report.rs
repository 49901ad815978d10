//! What the soak prints: the RSS/fd series, counts by image and outcome,
//! latencies, the server's own counters, and the first problems.

use std::collections::BTreeMap;
use std::time::Duration;

use super::judge::{Judge, Kind, Outcome, Record, Verdict};
use super::usage::Sample;

/// 1 allowed, 2 denied as not trusted, 3 denied as unverifiable, 0 unanswered.
pub fn outcome_class(o: &Outcome) -> usize {
    match o {
        Outcome::Allowed(_) => 1,
        Outcome::Denied(m) if m.contains(super::judge::FAIL_CLOSED) => 3,
        Outcome::Denied(_) => 2,
        Outcome::Unanswered(_) => 0,
    }
}

pub fn report(records: &[Record], samples: &[Sample], judge: &Judge<'_>, metrics: &str) {
    println!("\n   time  rss_kib  fds  in_flight  registry");
    for x in samples {
        println!(
            "{:>6}s {:>8} {:>4} {:>10}  {}",
            x.at.as_secs(),
            x.rss_kib,
            x.fds,
            x.in_flight,
            if x.registry_up { "up" } else { "down" }
        );
    }
    // sent, allowed, denied not trusted, denied unverifiable, wrong, unanswered
    let mut by_kind: BTreeMap<Kind, [usize; 6]> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in records {
        let row = by_kind.entry(r.kind).or_default();
        row[0] += 1;
        let class = outcome_class(&r.outcome);
        if class > 0 {
            row[class] += 1;
        }
        match judge.judge(r) {
            Verdict::Correct => {}
            v @ Verdict::Wrong(_) => {
                row[4] += 1;
                problems.push(v);
            }
            v @ Verdict::Unanswered(_) => {
                row[5] += 1;
                problems.push(v);
            }
        }
    }
    let all = |i: usize| by_kind.values().map(|r| r[i]).sum::<usize>();
    println!(
        "\nsent {} answered {} allowed {} denied {} (not trusted {}, registry unreachable {}) wrong {} unanswered {}",
        all(0),
        all(0) - all(5),
        all(1),
        all(2) + all(3),
        all(2),
        all(3),
        all(4),
        all(5)
    );
    println!(
        "  image          sent  allowed  denied:untrusted  denied:unreachable  wrong  unanswered"
    );
    for (k, r) in &by_kind {
        println!(
            "  {:<13} {:>5} {:>8} {:>17} {:>19} {:>6} {:>11}",
            format!("{k:?}"),
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5]
        );
    }
    for (name, class) in [
        ("allowed", 1),
        ("denied:untrusted", 2),
        ("denied:unreachable", 3),
    ] {
        let mut l: Vec<Duration> = records
            .iter()
            .filter(|r| outcome_class(&r.outcome) == class)
            .map(|r| r.answered - r.sent)
            .collect();
        l.sort();
        if !l.is_empty() {
            let q = |p: usize| l[(l.len() - 1) * p / 100].as_millis();
            println!(
                "  latency ms, {name}: p50 {} p90 {} p99 {} max {}",
                q(50),
                q(90),
                q(99),
                q(100)
            );
        }
    }
    for line in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && (l.contains("cache_")
                || l.contains("verifications_total")
                || l.contains("requests_total"))
    }) {
        println!("  {line}");
    }
    for p in problems.iter().take(20) {
        println!("  PROBLEM {p:?}");
    }
}
