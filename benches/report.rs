//! Results of one Rust benchmark, in the shape `benches/run.py` collects.
//!
//! Shared by every benchmark target of the workspace (`#[path]`-included).
//! A benchmark adds rows, each with every run's value (the row's value is
//! their median) and, where it has a baseline measured in the same run, the
//! per-run ratios against it (the row's ratio is their median, so a noisy
//! neighbour moves numerator and denominator together). `finish` prints a
//! Markdown table and writes `<VAULT_BENCH_OUT>/<bench>.json` (default
//! `target/vault-bench/results`).
//!
//! Ratios are "this ÷ baseline" in the row's unit: above 1 is faster for a
//! rate (MB/s, docs/s) and slower for a time (µs, ms).

// Each benchmark uses the part it needs.
#![allow(dead_code)]

use serde_json::{Value, json};

pub(crate) struct Report {
    bench: &'static str,
    quick: bool,
    rows: Vec<Value>,
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    assert!(n > 0, "median of no runs");
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Report {
    pub(crate) fn new(bench: &'static str) -> Self {
        Report {
            bench,
            quick: std::env::var_os("VAULT_BENCH_QUICK").is_some(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn quick(&self) -> bool {
        self.quick
    }

    /// A row with no baseline. `id` is stable across runs (for the JSON and
    /// the targets); `name` is what the table shows.
    pub(crate) fn add(&mut self, id: &str, name: &str, unit: &str, runs: &[f64]) {
        self.rows.push(json!({
            "id": id, "name": name, "unit": unit,
            "value": median(runs), "runs": runs,
        }));
    }

    /// A row with its per-run ratios against the row `baseline` (an id).
    pub(crate) fn add_vs(
        &mut self,
        id: &str,
        name: &str,
        unit: &str,
        runs: &[f64],
        baseline: &str,
        ratios: &[f64],
    ) {
        self.rows.push(json!({
            "id": id, "name": name, "unit": unit,
            "value": median(runs), "runs": runs,
            "baseline": baseline, "ratio": median(ratios), "ratio_runs": ratios,
        }));
    }

    pub(crate) fn finish(self) {
        let names: std::collections::HashMap<&str, &str> = self
            .rows
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["name"].as_str().unwrap()))
            .collect();
        println!(
            "\n## {}{}\n",
            self.bench,
            if self.quick {
                " (quick mode: tiny inputs, figures meaningless)"
            } else {
                ""
            }
        );
        println!("| measurement | median | runs | ratio | baseline |\n|---|---:|---:|---:|---|");
        for r in &self.rows {
            let ratio = r["ratio"]
                .as_f64()
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_default();
            let base = r["baseline"]
                .as_str()
                .map(|b| names.get(b).copied().unwrap_or(b))
                .unwrap_or("");
            println!(
                "| {} | {:.1} {} | {} | {ratio} | {base} |",
                r["name"].as_str().unwrap(),
                r["value"].as_f64().unwrap(),
                r["unit"].as_str().unwrap(),
                r["runs"].as_array().map_or(0, Vec::len),
            );
        }
        let dir = std::env::var("VAULT_BENCH_OUT").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../target/vault-bench/results").into()
        });
        std::fs::create_dir_all(&dir).unwrap();
        let doc = json!({ "bench": self.bench, "quick": self.quick, "rows": self.rows });
        let path = std::path::Path::new(&dir).join(format!("{}.json", self.bench));
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}
