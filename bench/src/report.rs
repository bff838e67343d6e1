//! From Outcome lines to the comparison: medians with min and max over rounds, grouped by system
//! and mode, the issue's target ratios, and an SVG plot.

use std::{collections::BTreeMap, fmt::Write as _};

use crate::Outcome;

/// Median, min and max of some rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

/// The spread of `values`; `None` when there are none (NaN values are ignored).
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// The order systems are shown in.
const SYSTEM_ORDER: [&str; 7] = [
    "fsync",
    "echo",
    "echo-fsync",
    "rabbitmq",
    "nats",
    "silta",
    "silta-nosync",
];

fn system_rank(s: &str) -> usize {
    SYSTEM_ORDER
        .iter()
        .position(|x| *x == s)
        .unwrap_or(SYSTEM_ORDER.len())
}

/// Every round of one system in one mode.
#[derive(Clone, Debug)]
pub struct Group {
    /// The system.
    pub system: String,
    /// The mode.
    pub mode: String,
    /// Its outcomes, one per round.
    pub rounds: Vec<Outcome>,
}

impl Group {
    fn field(&self, f: impl Fn(&Outcome) -> Option<f64>) -> Option<Spread> {
        let v: Vec<f64> = self.rounds.iter().filter_map(f).collect();
        spread(&v)
    }

    /// Messages per second.
    pub fn throughput(&self) -> Option<Spread> {
        self.field(|o| Some(o.throughput))
    }
    /// p50 latency, ms.
    pub fn p50(&self) -> Option<Spread> {
        self.field(|o| Some(o.p50_ms))
    }
    /// p99 latency, ms.
    pub fn p99(&self) -> Option<Spread> {
        self.field(|o| Some(o.p99_ms))
    }
    /// p99.9 latency, ms.
    pub fn p999(&self) -> Option<Spread> {
        self.field(|o| Some(o.p999_ms))
    }
    /// Max latency, ms.
    pub fn max(&self) -> Option<Spread> {
        self.field(|o| Some(o.max_ms))
    }
    /// Server CPU per message, µs.
    pub fn cpu(&self) -> Option<Spread> {
        self.field(|o| o.server_cpu_us_per_msg)
    }
    /// Server peak RSS, MiB.
    pub fn rss_mib(&self) -> Option<Spread> {
        self.field(|o| o.server_peak_rss_kib.map(|k| k as f64 / 1024.0))
    }
    /// Send → recipient holds it, p50 and p99, ms.
    pub fn deliver(&self) -> (Option<Spread>, Option<Spread>) {
        (
            self.field(|o| o.deliver_p50_ms),
            self.field(|o| o.deliver_p99_ms),
        )
    }
}

/// The order modes are shown in; others follow by name.
const MODE_ORDER: [&str; 4] = ["send", "consume", "cycle", "batch"];

fn mode_rank(m: &str) -> usize {
    MODE_ORDER
        .iter()
        .position(|x| *x == m)
        .unwrap_or(MODE_ORDER.len())
}

/// Groups outcomes by (mode, system): modes send, consume, batch, then others by name; systems
/// in the fixed order of the comparison, unknown ones last by name.
pub fn group(outcomes: &[Outcome]) -> Vec<Group> {
    type Key = (usize, String, usize, String);
    let mut map: BTreeMap<Key, Vec<Outcome>> = BTreeMap::new();
    for o in outcomes {
        let key = (
            mode_rank(&o.mode),
            o.mode.clone(),
            system_rank(&o.system),
            o.system.clone(),
        );
        map.entry(key).or_default().push(o.clone());
    }
    map.into_iter()
        .map(|((_, mode, _, system), mut rounds)| {
            rounds.sort_by_key(|o| o.round);
            Group {
                system,
                mode,
                rounds,
            }
        })
        .collect()
}

/// `median (min–max)` with `digits` decimals, or `–`.
pub fn cell(s: Option<Spread>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 => format!("{:.digits$}", s.median),
        Some(s) => format!(
            "{:.digits$} ({:.digits$}–{:.digits$})",
            s.median, s.min, s.max
        ),
    }
}

/// The markdown tables, one per mode.
pub fn markdown(groups: &[Group]) -> String {
    let mut out = String::new();
    let mut mode = None;
    for g in groups {
        if mode != Some(&g.mode) {
            mode = Some(&g.mode);
            let _ = writeln!(
                out,
                "\n### mode `{}`: median (min–max) over rounds\n\n\
                 | system | rounds | msg/s | p50 ms | p99 ms | p99.9 ms | max ms | deliver p50 / p99 ms | server CPU µs/msg | server peak RSS MiB |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                g.mode
            );
        }
        let (d50, d99) = g.deliver();
        let deliver = if d50.is_none() && d99.is_none() {
            "–".to_string()
        } else {
            format!("{} / {}", cell(d50, 2), cell(d99, 2))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            g.system,
            g.rounds.len(),
            cell(g.throughput(), 0),
            cell(g.p50(), 2),
            cell(g.p99(), 2),
            cell(g.p999(), 2),
            cell(g.max(), 2),
            deliver,
            cell(g.cpu(), 0),
            cell(g.rss_mib(), 1),
        );
    }
    out
}

/// One of the issue's targets, evaluated on medians.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    /// What is compared.
    pub what: String,
    /// The ratio of the medians.
    pub value: f64,
    /// The goal, as text (`≥ 0.75`).
    pub goal: String,
    /// Whether it is met.
    pub met: bool,
}

fn find<'a>(groups: &'a [Group], system: &str, mode: &str) -> Option<&'a Group> {
    groups.iter().find(|g| g.system == system && g.mode == mode)
}

/// The target ratios of issue 14 for which both sides were measured.
pub fn ratios(groups: &[Group]) -> Vec<Ratio> {
    type Metric = fn(&Group) -> Option<Spread>;
    // (what, mode, ours, theirs, metric, at least (true) or at most, goal)
    let rules: [(&str, &str, &str, &str, Metric, bool, f64); 7] = [
        (
            "silta / echo-fsync throughput",
            "send",
            "silta",
            "echo-fsync",
            Group::throughput,
            true,
            0.75,
        ),
        (
            "silta / echo-fsync p99",
            "send",
            "silta",
            "echo-fsync",
            Group::p99,
            false,
            2.0,
        ),
        (
            "silta / echo-fsync server CPU per message",
            "send",
            "silta",
            "echo-fsync",
            Group::cpu,
            false,
            2.0,
        ),
        (
            "silta / rabbitmq throughput",
            "send",
            "silta",
            "rabbitmq",
            Group::throughput,
            true,
            1.1,
        ),
        (
            "silta / nats throughput",
            "send",
            "silta",
            "nats",
            Group::throughput,
            true,
            1.0,
        ),
        (
            "silta / rabbitmq consume + ack throughput",
            "consume",
            "silta",
            "rabbitmq",
            Group::throughput,
            true,
            1.0,
        ),
        (
            "silta / nats consume + ack throughput",
            "consume",
            "silta",
            "nats",
            Group::throughput,
            true,
            1.0,
        ),
    ];
    let mut out = Vec::new();
    for (what, mode, ours, theirs, metric, at_least, goal) in rules {
        let (Some(a), Some(b)) = (find(groups, ours, mode), find(groups, theirs, mode)) else {
            continue;
        };
        let (Some(a), Some(b)) = (metric(a), metric(b)) else {
            continue;
        };
        if b.median == 0.0 {
            continue;
        }
        let value = a.median / b.median;
        out.push(Ratio {
            what: what.into(),
            value,
            goal: format!("{} {goal}", if at_least { "≥" } else { "≤" }),
            met: if at_least {
                value >= goal
            } else {
                value <= goal
            },
        });
    }
    out
}

/// The ratios as a markdown table.
pub fn ratios_markdown(ratios: &[Ratio]) -> String {
    if ratios.is_empty() {
        return "\n(no target ratio: a side of each comparison is missing)\n".into();
    }
    let mut out = String::from(
        "\n### targets of issue 14 (ratios of medians)\n\n| comparison | ratio | goal | met |\n|---|---:|---:|---|\n",
    );
    for r in ratios {
        let _ = writeln!(
            out,
            "| {} | {:.2} | {} | {} |",
            r.what,
            r.value,
            r.goal,
            if r.met { "yes" } else { "**no**" }
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart panel: one bar per group with its median, a whisker from min to max.
fn panel(
    out: &mut String,
    x0: f64,
    title: &str,
    unit: &str,
    bars: &[(String, Spread)],
    colour: &str,
) {
    const TOP: f64 = 50.0;
    const HEIGHT: f64 = 300.0;
    const WIDTH: f64 = 420.0;
    let top_value = bars
        .iter()
        .map(|(_, s)| s.max)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.1;
    let y = |v: f64| TOP + HEIGHT - v / top_value * HEIGHT;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="30" font-size="15" font-weight="bold">{}</text>"#,
        x0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r#"<line x1="{x0:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + HEIGHT,
        x0 + WIDTH,
        TOP + HEIGHT
    );
    let _ = writeln!(
        out,
        r##"<text x="{x0:.1}" y="{:.1}" font-size="11" fill="#555">{}</text>"##,
        TOP - 6.0,
        escape(unit)
    );
    if bars.is_empty() {
        return;
    }
    let slot = WIDTH / bars.len() as f64;
    for (i, (label, s)) in bars.iter().enumerate() {
        let bx = x0 + slot * i as f64 + slot * 0.15;
        let bw = slot * 0.7;
        let cx = bx + bw / 2.0;
        let _ = writeln!(
            out,
            r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{colour}"><title>{}: {:.2} ({:.2}–{:.2})</title></rect>"#,
            y(s.median),
            (TOP + HEIGHT - y(s.median)).max(0.0),
            escape(label),
            s.median,
            s.min,
            s.max
        );
        let _ = writeln!(
            out,
            r#"<path d="M{cx:.1} {:.1}V{:.1}M{:.1} {:.1}h8M{:.1} {:.1}h8" stroke="black" fill="none"/>"#,
            y(s.min),
            y(s.max),
            cx - 4.0,
            y(s.min),
            cx - 4.0,
            y(s.max)
        );
        let value = if s.median >= 100.0 {
            format!("{:.0}", s.median)
        } else {
            format!("{:.1}", s.median)
        };
        let _ = writeln!(
            out,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{value}</text>"#,
            y(s.max) - 4.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="end" transform="rotate(-35 {cx:.1} {:.1})">{}</text>"#,
            TOP + HEIGHT + 14.0,
            TOP + HEIGHT + 14.0,
            escape(label)
        );
    }
}

/// Grouped bars of throughput and p99 per system (mode "send", then "consume" throughput),
/// median with min–max whiskers, as a standalone SVG.
pub fn svg(groups: &[Group]) -> String {
    let bars = |mode: &str, metric: fn(&Group) -> Option<Spread>| -> Vec<(String, Spread)> {
        groups
            .iter()
            .filter(|g| g.mode == mode)
            .filter_map(|g| metric(g).map(|s| (g.system.clone(), s)))
            .collect()
    };
    let mut out = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="1440" height="440" viewBox="0 0 1440 440" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#,
    );
    panel(
        &mut out,
        40.0,
        "send: throughput",
        "messages/s (median, min–max)",
        &bars("send", Group::throughput),
        "#4a7ebb",
    );
    panel(
        &mut out,
        510.0,
        "send: p99 latency to durable",
        "ms (median, min–max)",
        &bars("send", Group::p99),
        "#d9822b",
    );
    panel(
        &mut out,
        980.0,
        "consume + ack: throughput",
        "messages/s (median, min–max)",
        &bars("consume", Group::throughput),
        "#5a9e5a",
    );
    out.push_str("</svg>\n");
    out
}

/// Reads JSONL: one Outcome per line; blank lines and lines not starting with `{` are skipped
/// (logs mixed in), a `{` line that does not parse is an error naming the line.
pub fn parse_jsonl(name: &str, text: &str) -> anyhow::Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let o: Outcome = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{name}:{}: not an Outcome: {e}", i + 1))?;
        out.push(o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(system: &str, mode: &str, round: u32, throughput: f64, p99: f64) -> Outcome {
        Outcome {
            system: system.into(),
            mode: mode.into(),
            round,
            throughput,
            p99_ms: p99,
            ..Outcome::default()
        }
    }

    #[test]
    fn median_odd_even_and_empty() {
        let s = spread(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = spread(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
        assert_eq!(cell(spread(&[3.0, 1.0, 2.0]), 1), "2.0 (1.0–3.0)");
        assert_eq!(cell(None, 1), "–");
    }

    #[test]
    fn groups_by_system_and_mode_in_order() {
        let all = vec![
            o("silta", "send", 2, 30.0, 5.0),
            o("echo-fsync", "send", 1, 100.0, 2.0),
            o("silta", "send", 1, 10.0, 9.0),
            o("silta", "consume", 1, 7.0, 1.0),
            o("zzz", "send", 1, 1.0, 1.0),
            o("silta", "send", 3, 20.0, 1.0),
        ];
        let g = group(&all);
        let keys: Vec<(&str, &str, usize)> = g
            .iter()
            .map(|g| (g.mode.as_str(), g.system.as_str(), g.rounds.len()))
            .collect();
        assert_eq!(
            keys,
            [
                ("send", "echo-fsync", 1),
                ("send", "silta", 3),
                ("send", "zzz", 1),
                ("consume", "silta", 1)
            ]
        );
        let silta = &g[1];
        assert_eq!(
            silta.rounds.iter().map(|o| o.round).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(silta.throughput().unwrap().median, 20.0);
        let r = ratios(&g);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].what, "silta / echo-fsync throughput");
        assert!((r[0].value - 0.2).abs() < 1e-12 && !r[0].met);
        assert_eq!(r[1].what, "silta / echo-fsync p99");
        assert!((r[1].value - 2.5).abs() < 1e-12 && !r[1].met);
        let md = markdown(&g);
        assert!(md.contains("| silta | 3 | 20 (10–30) |"), "{md}");
        assert!(svg(&g).contains("<title>silta: 20.00 (10.00–30.00)</title>"));
    }

    #[test]
    fn jsonl_names_the_bad_line() {
        let text = "log line\n{\"system\":\"fsync\",\"mode\":\"send\",\"round\":1,\"in_flight\":1,\"rate\":0,\"size\":4096,\"count\":5,\"seconds\":1.0,\"throughput\":5.0,\"p50_ms\":1.0,\"p99_ms\":1.0,\"p999_ms\":1.0,\"max_ms\":1.0}\n\n{broken\n";
        let e = parse_jsonl("r.jsonl", text).unwrap_err().to_string();
        assert!(e.starts_with("r.jsonl:4: not an Outcome"), "{e}");
        let ok = parse_jsonl("r.jsonl", &text[..text.len() - 8]).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].system, "fsync");
    }
}
