//! The auditor's monthly summary of the delivery log: how many messages were accepted, how many
//! deliveries were made, acknowledged, rejected or expired, and how long recipients took to
//! acknowledge, per calendar month, per message kind and per urgency.
//!
//! The summary is computed from the log's events alone, so it needs nothing but what an auditor
//! query returns. It shows routing metadata counts and durations only: no principal names, no
//! case references, nothing from inside a message.
//!
//! # How events are counted
//! - A message belongs to the calendar month (UTC, `YYYY-MM`) of its ACCEPTED event, and so do
//!   all its deliveries, acknowledgements, rejections and expiries, even if they happen later.
//! - `accepted` counts messages (distinct message ids with an ACCEPTED event). `delivered`,
//!   `acknowledged`, `rejected` and `expired` count distinct (message, recipient) pairs with at
//!   least one event of that type: a copy streamed twice is one delivery.
//! - Kind and urgency come from the ACCEPTED event when there is one, otherwise from the event.
//! - If the ACCEPTED event of a message is not in the input (for example, the query window began
//!   after it), its other events are counted in the month of their own time, and its
//!   acknowledgements contribute no latency, because the start of the interval is unknown.
//! - The latency of a pair runs from the message's ACCEPTED time to the pair's earliest
//!   ACKNOWLEDGED time. A negative difference (a clock step at the relay) is counted as zero.
//! - Events that are not about messages (keys, principals, audit queries, purges) are ignored.
//!   Message events without a time, a message id or a recipient, and repeated ACCEPTED events
//!   for an id already seen, cannot be placed; they are counted in
//!   [`Report::unusable_events`] and nowhere else.

use std::collections::{BTreeMap, btree_map::Entry};
use std::fmt::Write as _;

use serde::Serialize;
use silta_proto::pb;

use crate::payload::kind_name;

/// An inclusive span of calendar months, from `YYYY-MM` to `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSpan {
    from: String,
    to: String,
}

impl MonthSpan {
    /// The months from `from` to `to`, both included, each written `YYYY-MM`.
    pub fn new(from: &str, to: &str) -> Result<Self, ReportError> {
        let from = parse_month(from)?;
        let to = parse_month(to)?;
        if to < from {
            return Err(ReportError::EmptySpan { from, to });
        }
        Ok(MonthSpan { from, to })
    }

    fn contains(&self, month: &str) -> bool {
        // `YYYY-MM` strings order like the months they name.
        self.from.as_str() <= month && month <= self.to.as_str()
    }
}

/// Why a report could not be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A month is not written `YYYY-MM`.
    #[error("{0:?} is not a month; write it as YYYY-MM, for example 2025-03")]
    BadMonth(String),
    /// The span ends before it starts.
    #[error("the span starts at {from} but ends earlier, at {to}")]
    EmptySpan {
        /// First month asked for.
        from: String,
        /// Last month asked for.
        to: String,
    },
}

fn parse_month(s: &str) -> Result<String, ReportError> {
    let bad = || ReportError::BadMonth(s.to_owned());
    let t = s.trim();
    let (year, month) = t.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    if !year
        .bytes()
        .chain(month.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let m: u8 = month.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok(t.to_owned())
}

/// The summary of a delivery log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// One entry per calendar month with at least one counted event, ascending. Months
    /// without any activity are left out.
    pub months: Vec<MonthReport>,
    /// All months of [`Report::months`] together; its `month` is `"total"`.
    pub total: MonthReport,
    /// Message events that could not be placed (see the [module documentation](crate::report)).
    pub unusable_events: u64,
}

/// The counts for one calendar month (or for all of them, in [`Report::total`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonthReport {
    /// `YYYY-MM` (UTC), or `"total"`.
    pub month: String,
    /// All messages of the month.
    pub all: Stats,
    /// Per message kind (`referral`, `status-update`, ...), in the order of the kind numbers;
    /// only kinds that occur.
    pub by_kind: Vec<Group>,
    /// Per urgency (`normal`, `urgent`, `emergency`), in that order; only urgencies that occur.
    pub by_urgency: Vec<Group>,
}

/// The counts for one kind or one urgency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    /// The kind's or urgency's short name.
    pub name: String,
    /// Its counts.
    pub stats: Stats,
}

/// Counts and acknowledgement latency for a set of messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Messages accepted.
    pub accepted: u64,
    /// (message, recipient) pairs delivered at least once.
    pub delivered: u64,
    /// (message, recipient) pairs acknowledged.
    pub acknowledged: u64,
    /// (message, recipient) pairs rejected.
    pub rejected: u64,
    /// (message, recipient) pairs expired.
    pub expired: u64,
    /// Time from acceptance to acknowledgement, over the acknowledged pairs whose ACCEPTED event
    /// is known.
    pub ack_latency: Latency,
    /// Every latency summarised in `ack_latency`, in seconds, ascending. Kept for plotting and
    /// left out of the JSON.
    #[serde(skip)]
    pub latencies: Vec<f64>,
}

/// A summary of latencies in seconds.
///
/// Percentiles use the nearest-rank method: of `n` values sorted ascending, the p-th percentile
/// is the value at (1-based) rank `ceil(p / 100 × n)`. It is always one of the observed values;
/// for an even `n` the median is the lower of the two middle values. With no values, every
/// field but `count` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Number of latencies.
    pub count: usize,
    /// 50th percentile, nearest rank.
    pub median_secs: Option<f64>,
    /// 90th percentile, nearest rank.
    pub p90_secs: Option<f64>,
    /// Largest.
    pub max_secs: Option<f64>,
}

impl Latency {
    /// Summarises `sorted`, which must be in ascending order.
    fn of(sorted: &[f64]) -> Self {
        Latency {
            count: sorted.len(),
            median_secs: nearest_rank(sorted, 50),
            p90_secs: nearest_rank(sorted, 90),
            max_secs: sorted.last().copied(),
        }
    }
}

/// The p-th percentile (0 < p ≤ 100) of ascending `sorted` by nearest rank.
fn nearest_rank(sorted: &[f64], p: usize) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    Some(sorted[rank - 1])
}

/// A point in time as the log records it, nanoseconds normalised into range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct At {
    secs: i64,
    nanos: i32,
}

impl At {
    fn of(event: &pb::Event) -> Option<(At, String)> {
        let t = event.time.as_ref()?;
        let at = At {
            secs: t.seconds,
            nanos: t.nanos.clamp(0, 999_999_999),
        };
        let utc = time::OffsetDateTime::from_unix_timestamp(at.secs).ok()?;
        let month = format!("{:04}-{:02}", utc.year(), u8::from(utc.month()));
        Some((at, month))
    }

    /// Seconds from `self` to `later`, never negative.
    fn secs_until(self, later: At) -> f64 {
        let d = (later.secs as f64 - self.secs as f64)
            + f64::from(later.nanos - self.nanos) / 1_000_000_000.0;
        d.max(0.0)
    }
}

/// What the ACCEPTED event says about a message.
struct Accepted {
    at: At,
    month: String,
    kind: i32,
    urgency: i32,
}

/// The earliest event of one type for one (message, recipient) pair.
struct Pair {
    at: At,
    month: String,
    kind: i32,
    urgency: i32,
}

#[derive(Default)]
struct MonthAcc {
    all: Stats,
    kinds: BTreeMap<i32, Stats>,
    urgencies: BTreeMap<i32, Stats>,
}

impl MonthAcc {
    fn add(&mut self, kind: i32, urgency: i32, f: &dyn Fn(&mut Stats)) {
        f(&mut self.all);
        f(self.kinds.entry(kind).or_default());
        f(self.urgencies.entry(urgency).or_default());
    }

    fn finish(self, month: String) -> MonthReport {
        let group = |(name, stats): (String, Stats)| Group {
            name,
            stats: finish_stats(stats),
        };
        MonthReport {
            month,
            all: finish_stats(self.all),
            by_kind: self
                .kinds
                .into_iter()
                .map(|(k, s)| group((kind_label(k), s)))
                .collect(),
            by_urgency: self
                .urgencies
                .into_iter()
                .map(|(u, s)| group((urgency_label(u), s)))
                .collect(),
        }
    }
}

fn finish_stats(mut stats: Stats) -> Stats {
    stats.latencies.sort_by(f64::total_cmp);
    stats.ack_latency = Latency::of(&stats.latencies);
    stats
}

fn kind_label(kind: i32) -> String {
    pb::MessageKind::try_from(kind)
        .map(kind_name)
        .unwrap_or_else(|_| format!("kind-{kind}"))
}

fn urgency_label(urgency: i32) -> String {
    match pb::Urgency::try_from(urgency) {
        Ok(u) => u
            .as_str_name()
            .trim_start_matches("URGENCY_")
            .to_ascii_lowercase(),
        Err(_) => format!("urgency-{urgency}"),
    }
}

/// Summarises `events` (in log order) by month, kind and urgency, keeping only the months in
/// `span` if one is given. See the [module documentation](crate::report) for what is counted
/// where.
pub fn summarize(events: &[pb::Event], span: Option<&MonthSpan>) -> Report {
    let mut unusable = 0u64;

    let mut accepted: BTreeMap<&[u8], Accepted> = BTreeMap::new();
    for e in events {
        if e.r#type != pb::EventType::Accepted as i32 {
            continue;
        }
        let Some((at, month)) = At::of(e).filter(|_| !e.message_id.is_empty()) else {
            unusable += 1;
            continue;
        };
        match accepted.entry(&e.message_id) {
            Entry::Vacant(v) => {
                v.insert(Accepted {
                    at,
                    month,
                    kind: e.kind,
                    urgency: e.urgency,
                });
            }
            Entry::Occupied(_) => unusable += 1,
        }
    }

    let mut pairs: BTreeMap<(i32, &[u8], &str), Pair> = BTreeMap::new();
    let per_pair = [
        pb::EventType::Delivered,
        pb::EventType::Acknowledged,
        pb::EventType::Rejected,
        pb::EventType::Expired,
    ];
    for e in events {
        if !per_pair.iter().any(|t| *t as i32 == e.r#type) {
            continue;
        }
        let Some((at, month)) = At::of(e) else {
            unusable += 1;
            continue;
        };
        if e.message_id.is_empty() || e.recipients.is_empty() {
            unusable += 1;
            continue;
        }
        for recipient in &e.recipients {
            match pairs.entry((e.r#type, &e.message_id, recipient)) {
                Entry::Vacant(v) => {
                    v.insert(Pair {
                        at,
                        month: month.clone(),
                        kind: e.kind,
                        urgency: e.urgency,
                    });
                }
                Entry::Occupied(mut o) => {
                    if at < o.get().at {
                        o.get_mut().at = at;
                    }
                }
            }
        }
    }

    let in_span = |month: &str| span.is_none_or(|s| s.contains(month));
    let mut months: BTreeMap<String, MonthAcc> = BTreeMap::new();
    let mut total = MonthAcc::default();
    let mut record = |month: &str, kind: i32, urgency: i32, f: &dyn Fn(&mut Stats)| {
        let acc = months.entry(month.to_owned()).or_default();
        for acc in [acc, &mut total] {
            acc.add(kind, urgency, f);
        }
    };

    for msg in accepted.values() {
        if in_span(&msg.month) {
            record(&msg.month, msg.kind, msg.urgency, &|s| s.accepted += 1);
        }
    }
    for ((ty, id, _), pair) in &pairs {
        let msg = accepted.get(id);
        let (month, kind, urgency) = match msg {
            Some(m) => (&m.month, m.kind, m.urgency),
            None => (&pair.month, pair.kind, pair.urgency),
        };
        if !in_span(month) {
            continue;
        }
        let ty = *ty;
        let latency = msg
            .filter(|_| ty == pb::EventType::Acknowledged as i32)
            .map(|m| m.at.secs_until(pair.at));
        record(month, kind, urgency, &|s| {
            if ty == pb::EventType::Delivered as i32 {
                s.delivered += 1;
            } else if ty == pb::EventType::Acknowledged as i32 {
                s.acknowledged += 1;
            } else if ty == pb::EventType::Rejected as i32 {
                s.rejected += 1;
            } else {
                s.expired += 1;
            }
            s.latencies.extend(latency);
        });
    }

    Report {
        months: months
            .into_iter()
            .map(|(month, acc)| acc.finish(month))
            .collect(),
        total: total.finish("total".to_owned()),
        unusable_events: unusable,
    }
}

/// The rows of a report in reading order: each month's "all" row, then its kinds, then its
/// urgencies; the total last.
fn rows(report: &Report) -> impl Iterator<Item = (&MonthReport, &'static str, &str, &Stats)> {
    report
        .months
        .iter()
        .chain(std::iter::once(&report.total))
        .flat_map(|m| {
            std::iter::once((m, "all", "all", &m.all))
                .chain(
                    m.by_kind
                        .iter()
                        .map(move |g| (m, "kind", g.name.as_str(), &g.stats)),
                )
                .chain(
                    m.by_urgency
                        .iter()
                        .map(move |g| (m, "urgency", g.name.as_str(), &g.stats)),
                )
        })
}

/// A duration for people: `42s`, `4m 10s`, `1h 02m`, `3d 4h`; `<1s` below a second.
/// Truncates, so a value is never shown larger than it is.
fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).floor() as u64;
    if s == 0 && secs > 0.0 {
        return "<1s".to_owned();
    }
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn human_opt(secs: Option<f64>) -> String {
    secs.map_or_else(|| "-".to_owned(), human_duration)
}

/// The report as aligned plain-text tables, one block per month and a total block.
pub fn render_table(report: &Report) -> String {
    render_table_in(report, crate::i18n::Lang::En)
}

/// [`render_table`] with its headings and fixed text in `lang` (groups keep their short names,
/// as in the CSV).
pub fn render_table_in(report: &Report, lang: crate::i18n::Lang) -> String {
    let tr = |id: &str| crate::i18n::tr(lang, id, &[]);
    let header = [
        tr("report-col-month"),
        tr("report-col-group"),
        tr("report-col-accepted"),
        tr("report-col-delivered"),
        tr("report-col-acknowledged"),
        tr("report-col-rejected"),
        tr("report-col-expired"),
        tr("report-col-median"),
        tr("report-col-p90"),
        tr("report-col-max"),
    ];
    let header = header.each_ref().map(String::as_str);
    // `None` separates months.
    let mut lines: Vec<Option<[String; 10]>> = Vec::new();
    let mut last_month = None;
    for (m, dimension, name, s) in rows(report) {
        let first = last_month != Some(m.month.as_str());
        if first && last_month.is_some() {
            lines.push(None);
        }
        last_month = Some(m.month.as_str());
        let group = match dimension {
            "all" => tr("report-group-all"),
            "kind" => format!("{} {name}", tr("report-group-kind")),
            "urgency" => format!("{} {name}", tr("report-group-urgency")),
            _ => format!("{dimension} {name}"),
        };
        lines.push(Some([
            if first {
                m.month.clone()
            } else {
                String::new()
            },
            group,
            s.accepted.to_string(),
            s.delivered.to_string(),
            s.acknowledged.to_string(),
            s.rejected.to_string(),
            s.expired.to_string(),
            human_opt(s.ack_latency.median_secs),
            human_opt(s.ack_latency.p90_secs),
            human_opt(s.ack_latency.max_secs),
        ]));
    }

    let mut widths = header.map(|h| h.chars().count());
    for cells in lines.iter().flatten() {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            // Text columns left, numbers and durations right.
            if i < 2 {
                let _ = write!(out, "{c:<w$}");
            } else {
                let _ = write!(out, "{c:>w$}");
            }
        }
        out.trim_end().to_owned() + "\n"
    };

    let mut out = line(&header);
    out += &line(&widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for cells in &lines {
        match cells {
            Some(cells) => out += &line(&cells.each_ref().map(String::as_str)),
            None => out.push('\n'),
        }
    }
    let _ = writeln!(out, "\n{}", tr("report-footnote"));
    if report.unusable_events > 0 {
        let _ = writeln!(
            out,
            "{}",
            crate::i18n::tr(
                lang,
                "report-unusable",
                &[("count", report.unusable_events.into())]
            )
        );
    }
    out
}

/// One CSV field: printable, a formula neutralised, quoted as RFC 4180 asks
/// ([`crate::text::csv_cell`]).
fn csv_field(s: &str) -> String {
    crate::text::csv_cell(s)
}

/// Seconds to at most millisecond precision, without trailing zeros; empty for none.
fn csv_secs(secs: Option<f64>) -> String {
    secs.map_or_else(String::new, |s| {
        format!("{s:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    })
}

/// The report as CSV (RFC 4180, CRLF line ends): a header, then one row per month × group,
/// `dimension` being `all`, `kind` or `urgency`; the total rows have month `total`. Latencies
/// are in seconds, empty when there are none.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "month,dimension,group,accepted,delivered,acknowledged,rejected,expired,\
         latency_count,median_secs,p90_secs,max_secs\r\n",
    );
    for (m, dimension, name, s) in rows(report) {
        let l = &s.ack_latency;
        let fields = [
            csv_field(&m.month),
            csv_field(dimension),
            csv_field(name),
            s.accepted.to_string(),
            s.delivered.to_string(),
            s.acknowledged.to_string(),
            s.rejected.to_string(),
            s.expired.to_string(),
            l.count.to_string(),
            csv_secs(l.median_secs),
            csv_secs(l.p90_secs),
            csv_secs(l.max_secs),
        ];
        out += &fields.join(",");
        out += "\r\n";
    }
    out
}

/// Text made safe for XML character data and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and line ends are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Axis ticks in seconds. The axis always reaches 7d, further if a latency does.
const TICKS: [(f64, &str); 9] = [
    (1.0, "1s"),
    (10.0, "10s"),
    (60.0, "1m"),
    (600.0, "10m"),
    (3_600.0, "1h"),
    (86_400.0, "1d"),
    (604_800.0, "7d"),
    (2_592_000.0, "30d"),
    (31_536_000.0, "365d"),
];

const SVG_WIDTH: f64 = 960.0;
const LABEL_RIGHT: f64 = 250.0;
const PLOT_LEFT: f64 = 270.0;
const PLOT_RIGHT: f64 = 930.0;
const ROW_HEIGHT: f64 = 26.0;

/// A self-contained SVG plot of the acceptance-to-acknowledgement times over all months: one
/// panel with a row per kind, one with a row per urgency. Each latency is a dot on a log-scale
/// time axis (latencies under a second are drawn at 1s); median, p90 and max are marked. Labels
/// give the number of latencies. The output depends only on the report and `title`.
pub fn to_svg(report: &Report, title: &str) -> String {
    let title = xml_escape(title);
    let total = &report.total;
    let mut out = String::new();
    let head = |out: &mut String, height: f64| {
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{SVG_WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {SVG_WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <title>{title}</title>\n\
             <rect x=\"0\" y=\"0\" width=\"{SVG_WIDTH}\" height=\"{height}\" fill=\"white\"/>\n\
             <text x=\"20\" y=\"28\" font-size=\"16\" font-weight=\"bold\">{title}</text>\n"
        );
    };

    let Some(&max) = total.all.latencies.last() else {
        head(&mut out, 80.0);
        out.push_str(
            "<text x=\"20\" y=\"56\" fill=\"#555\">no acknowledged messages</text>\n</svg>\n",
        );
        return out;
    };

    let hi = TICKS
        .iter()
        .map(|(t, _)| *t)
        .find(|t| *t >= max && *t >= 604_800.0)
        .unwrap_or(max);
    let x_of =
        |secs: f64| PLOT_LEFT + secs.max(1.0).log10() / hi.log10() * (PLOT_RIGHT - PLOT_LEFT);

    let panels = [
        ("By kind", &total.by_kind),
        ("By urgency", &total.by_urgency),
    ];
    let panel_height = |groups: &Vec<Group>| 24.0 + groups.len() as f64 * ROW_HEIGHT + 36.0;
    let height = 100.0 + panels.iter().map(|(_, g)| panel_height(g)).sum::<f64>();
    head(&mut out, height);

    let span = match (report.months.first(), report.months.last()) {
        (Some(a), Some(b)) if a.month != b.month => format!("{} to {}", a.month, b.month),
        (Some(a), _) => a.month.clone(),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<text x=\"20\" y=\"48\" fill=\"#555\">Time from acceptance to acknowledgement per \
         message and recipient, {} (log scale)</text>",
        xml_escape(&span)
    );
    // Legend.
    let _ = writeln!(
        out,
        "<g transform=\"translate({PLOT_LEFT},66)\">\
         <circle cx=\"0\" cy=\"0\" r=\"3\" fill=\"#1f77b4\" fill-opacity=\"0.5\"/>\
         <text x=\"8\" y=\"4\">one acknowledgement</text>\
         <line x1=\"150\" y1=\"-7\" x2=\"150\" y2=\"7\" stroke=\"#d62728\" stroke-width=\"2.5\"/>\
         <text x=\"157\" y=\"4\">median</text>\
         <line x1=\"220\" y1=\"-7\" x2=\"220\" y2=\"7\" stroke=\"#ff7f0e\" stroke-width=\"2\" \
         stroke-dasharray=\"3,2\"/>\
         <text x=\"227\" y=\"4\">p90</text>\
         <path d=\"M 280 -5 L 285 0 L 280 5 L 275 0 Z\" fill=\"#333\"/>\
         <text x=\"292\" y=\"4\">max</text></g>"
    );

    let mut y = 90.0;
    for (heading, groups) in panels {
        let top = y;
        let _ = writeln!(
            out,
            "<text x=\"20\" y=\"{:.1}\" font-weight=\"bold\">{heading}</text>",
            top + 14.0
        );
        let rows_top = top + 24.0;
        let rows_bottom = rows_top + groups.len() as f64 * ROW_HEIGHT;
        for (tick, label) in TICKS.iter().filter(|(t, _)| *t <= hi) {
            let x = x_of(*tick);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{rows_top:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" \
                 stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 fill=\"#555\">{label}</text>",
                rows_bottom + 4.0,
                rows_bottom + 18.0
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{PLOT_LEFT:.1}\" y1=\"{:.1}\" x2=\"{PLOT_RIGHT:.1}\" y2=\"{:.1}\" \
             stroke=\"#333\"/>",
            rows_bottom + 4.0,
            rows_bottom + 4.0
        );
        for (i, g) in groups.iter().enumerate() {
            let cy = rows_top + (i as f64 + 0.5) * ROW_HEIGHT;
            svg_row(&mut out, g, cy, &x_of);
        }
        y += panel_height(groups);
    }
    out.push_str("</svg>\n");
    out
}

fn svg_row(out: &mut String, group: &Group, cy: f64, x_of: &impl Fn(f64) -> f64) {
    let l = &group.stats.ack_latency;
    let _ = writeln!(
        out,
        "<text x=\"{LABEL_RIGHT:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} (n={})</text>",
        cy + 4.0,
        xml_escape(&group.name),
        l.count
    );
    if group.stats.latencies.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#999\">none acknowledged</text>",
            PLOT_LEFT + 6.0,
            cy + 4.0
        );
        return;
    }
    out.push_str("<g fill=\"#1f77b4\" fill-opacity=\"0.45\">");
    for (i, v) in group.stats.latencies.iter().enumerate() {
        // A fixed vertical spread so that equal values stay visible as a cluster.
        let jitter = (i * 7 % 11) as f64 - 5.0;
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
            x_of(*v),
            cy + jitter
        );
    }
    out.push_str("</g>\n");
    if let Some(m) = l.median_secs {
        let x = x_of(m);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" \
             stroke-width=\"2.5\"><title>median {}</title></line>",
            cy - 9.0,
            cy + 9.0,
            xml_escape(&human_duration(m))
        );
    }
    if let Some(p) = l.p90_secs {
        let x = x_of(p);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ff7f0e\" \
             stroke-width=\"2\" stroke-dasharray=\"3,2\"><title>p90 {}</title></line>",
            cy - 9.0,
            cy + 9.0,
            xml_escape(&human_duration(p))
        );
    }
    if let Some(m) = l.max_secs {
        let x = x_of(m);
        let _ = writeln!(
            out,
            "<path d=\"M {x:.1} {:.1} L {:.1} {cy:.1} L {x:.1} {:.1} L {:.1} {cy:.1} Z\" \
             fill=\"#333\"><title>max {}</title></path>",
            cy - 5.0,
            x + 5.0,
            cy + 5.0,
            x - 5.0,
            xml_escape(&human_duration(m))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::{EventType as T, MessageKind as K, Urgency as U};

    /// 2025-01-10 00:00:00 UTC.
    const JAN: i64 = 1_736_467_200;
    /// 2025-01-31 23:59:30 UTC.
    const JAN_END: i64 = 1_738_367_970;
    /// 2025-02-05 00:00:00 UTC.
    const FEB: i64 = 1_738_713_600;

    fn ev(ty: T, secs: i64, id: u8, kind: K, urgency: U, recipients: &[&str]) -> pb::Event {
        pb::Event {
            r#type: ty as i32,
            time: Some(prost_types::Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            message_id: vec![id; 16],
            kind: kind as i32,
            urgency: urgency as i32,
            sender: "centre/x".into(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        }
    }

    /// Two months; see the comments for what each message exercises.
    fn fixture() -> Vec<pb::Event> {
        let (a, b) = ("assistance/nas", "assistance/other");
        let mut events = vec![
            // m1: two recipients, a delivered twice, a acknowledged twice (earliest counts).
            ev(T::Accepted, JAN, 1, K::Referral, U::Urgent, &[a, b]),
            ev(T::Delivered, JAN + 10, 1, K::Referral, U::Urgent, &[a]),
            ev(T::Delivered, JAN + 20, 1, K::Referral, U::Urgent, &[a]),
            ev(T::Delivered, JAN + 30, 1, K::Referral, U::Urgent, &[b]),
            ev(T::Acknowledged, JAN + 250, 1, K::Referral, U::Urgent, &[a]),
            ev(
                T::Acknowledged,
                JAN + 3_720,
                1,
                K::Referral,
                U::Urgent,
                &[b],
            ),
            ev(
                T::Acknowledged,
                JAN + 9_999,
                1,
                K::Referral,
                U::Urgent,
                &[a],
            ),
            // m2: accepted in January, acknowledged in February: counts in January.
            ev(T::Accepted, JAN_END, 2, K::Referral, U::Normal, &[a]),
            ev(T::Delivered, JAN_END + 30, 2, K::Referral, U::Normal, &[a]),
            ev(
                T::Acknowledged,
                JAN_END + 60,
                2,
                K::Referral,
                U::Normal,
                &[a],
            ),
            // m3: delivered, never acknowledged.
            ev(T::Accepted, JAN + 100, 3, K::StatusUpdate, U::Normal, &[a]),
            ev(T::Delivered, JAN + 200, 3, K::StatusUpdate, U::Normal, &[a]),
            // m4: rejected.
            ev(
                T::Accepted,
                JAN + 300,
                4,
                K::AnonymousConsultation,
                U::Emergency,
                &[a],
            ),
            ev(
                T::Delivered,
                JAN + 400,
                4,
                K::AnonymousConsultation,
                U::Emergency,
                &[a],
            ),
            ev(
                T::Rejected,
                JAN + 500,
                4,
                K::AnonymousConsultation,
                U::Emergency,
                &[a],
            ),
            // m5: acknowledged after 3d 4h.
            ev(T::Accepted, FEB, 5, K::Referral, U::Urgent, &[a]),
            ev(T::Delivered, FEB + 60, 5, K::Referral, U::Urgent, &[a]),
            ev(
                T::Acknowledged,
                FEB + 273_600,
                5,
                K::Referral,
                U::Urgent,
                &[a],
            ),
            // m6: expired in March, counts in February.
            ev(T::Accepted, FEB + 100, 6, K::StatusUpdate, U::Normal, &[a]),
            ev(
                T::Expired,
                FEB + 2_592_000,
                6,
                K::StatusUpdate,
                U::Normal,
                &[a],
            ),
            // m7: ACCEPTED not in the input: counted in February, no latency.
            ev(T::Delivered, FEB + 500, 7, K::Referral, U::Urgent, &[a]),
            ev(T::Acknowledged, FEB + 800, 7, K::Referral, U::Urgent, &[a]),
            // Not about messages: ignored.
            ev(
                T::KeyPublished,
                FEB + 5,
                0,
                K::Unspecified,
                U::Unspecified,
                &[],
            ),
            pb::Event {
                r#type: T::AuditQuery as i32,
                time: Some(prost_types::Timestamp {
                    seconds: FEB + 6,
                    nanos: 0,
                }),
                actor: "auditor/a".into(),
                ..Default::default()
            },
            // No time: unusable.
            pb::Event {
                time: None,
                ..ev(T::Delivered, 0, 9, K::Referral, U::Urgent, &[a])
            },
        ];
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        events
    }

    fn counts(s: &Stats) -> [u64; 5] {
        [
            s.accepted,
            s.delivered,
            s.acknowledged,
            s.rejected,
            s.expired,
        ]
    }

    fn latency(count: usize, median: f64, p90: f64, max: f64) -> Latency {
        Latency {
            count,
            median_secs: Some(median),
            p90_secs: Some(p90),
            max_secs: Some(max),
        }
    }

    fn group<'a>(groups: &'a [Group], name: &str) -> &'a Stats {
        &groups.iter().find(|g| g.name == name).unwrap().stats
    }

    fn names(groups: &[Group]) -> Vec<&str> {
        groups.iter().map(|g| g.name.as_str()).collect()
    }

    #[test]
    fn counts_and_latencies_per_month() {
        let r = summarize(&fixture(), None);
        assert_eq!(r.unusable_events, 1);
        let months: Vec<_> = r.months.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(months, ["2025-01", "2025-02"]);

        let jan = &r.months[0];
        assert_eq!(counts(&jan.all), [4, 5, 3, 1, 0]);
        assert_eq!(jan.all.latencies, [60.0, 250.0, 3_720.0]);
        assert_eq!(jan.all.ack_latency, latency(3, 250.0, 3_720.0, 3_720.0));
        assert_eq!(
            names(&jan.by_kind),
            ["anonymous-consultation", "referral", "status-update"]
        );
        let consult = group(&jan.by_kind, "anonymous-consultation");
        assert_eq!(counts(consult), [1, 1, 0, 1, 0]);
        assert_eq!(consult.ack_latency, Latency::default());
        let referral = group(&jan.by_kind, "referral");
        assert_eq!(counts(referral), [2, 3, 3, 0, 0]);
        assert_eq!(referral.ack_latency, latency(3, 250.0, 3_720.0, 3_720.0));
        assert_eq!(
            counts(group(&jan.by_kind, "status-update")),
            [1, 1, 0, 0, 0]
        );
        assert_eq!(names(&jan.by_urgency), ["normal", "urgent", "emergency"]);
        let normal = group(&jan.by_urgency, "normal");
        assert_eq!(counts(normal), [2, 2, 1, 0, 0]);
        assert_eq!(normal.ack_latency, latency(1, 60.0, 60.0, 60.0));
        let urgent = group(&jan.by_urgency, "urgent");
        assert_eq!(counts(urgent), [1, 2, 2, 0, 0]);
        assert_eq!(urgent.ack_latency, latency(2, 250.0, 3_720.0, 3_720.0));
        assert_eq!(counts(group(&jan.by_urgency, "emergency")), [1, 1, 0, 1, 0]);

        // m7's delivery and acknowledgement count, but give no latency.
        let feb = &r.months[1];
        assert_eq!(counts(&feb.all), [2, 2, 2, 0, 1]);
        assert_eq!(
            feb.all.ack_latency,
            latency(1, 273_600.0, 273_600.0, 273_600.0)
        );
        assert_eq!(names(&feb.by_kind), ["referral", "status-update"]);
        assert_eq!(counts(group(&feb.by_kind, "referral")), [1, 2, 2, 0, 0]);
        assert_eq!(
            counts(group(&feb.by_kind, "status-update")),
            [1, 0, 0, 0, 1]
        );
        assert_eq!(names(&feb.by_urgency), ["normal", "urgent"]);

        let total = &r.total;
        assert_eq!(total.month, "total");
        assert_eq!(counts(&total.all), [6, 7, 5, 1, 1]);
        assert_eq!(
            total.all.ack_latency,
            latency(4, 250.0, 273_600.0, 273_600.0)
        );
        assert_eq!(counts(group(&total.by_kind, "referral")), [3, 5, 5, 0, 0]);
        assert_eq!(
            group(&total.by_urgency, "urgent").latencies,
            [250.0, 3_720.0, 273_600.0]
        );
    }

    #[test]
    fn month_span_keeps_only_its_months() {
        let span = MonthSpan::new("2025-02", "2025-02").unwrap();
        let r = summarize(&fixture(), Some(&span));
        assert_eq!(r.months.len(), 1);
        assert_eq!(r.months[0].month, "2025-02");
        // m2 was acknowledged in February but accepted in January: not here.
        assert_eq!(counts(&r.total.all), [2, 2, 2, 0, 1]);
        assert_eq!(r.total.all.latencies, [273_600.0]);

        assert_eq!(
            MonthSpan::new("2025-13", "2025-12"),
            Err(ReportError::BadMonth("2025-13".into()))
        );
        assert_eq!(
            MonthSpan::new("2025-01", "25-02"),
            Err(ReportError::BadMonth("25-02".into()))
        );
        assert_eq!(
            MonthSpan::new("2025-03", "2025-02"),
            Err(ReportError::EmptySpan {
                from: "2025-03".into(),
                to: "2025-02".into()
            })
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(Latency::of(&ten), latency(10, 5.0, 9.0, 10.0));
        let eleven: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(Latency::of(&eleven), latency(11, 6.0, 10.0, 11.0));
        assert_eq!(Latency::of(&[7.0]), latency(1, 7.0, 7.0, 7.0));
        assert_eq!(Latency::of(&[]), Latency::default());
        assert_eq!(nearest_rank(&ten, 100), Some(10.0));
    }

    #[test]
    fn sub_second_latency_and_negative_clock_step() {
        let mut accepted = ev(T::Accepted, JAN, 1, K::Referral, U::Normal, &["x/y"]);
        accepted.time.as_mut().unwrap().nanos = 250_000_000;
        let mut ack = ev(T::Acknowledged, JAN, 1, K::Referral, U::Normal, &["x/y"]);
        ack.time.as_mut().unwrap().nanos = 750_000_000;
        let early = ev(
            T::Acknowledged,
            JAN - 5,
            1,
            K::Referral,
            U::Normal,
            &["x/z"],
        );
        let r = summarize(&[accepted, ack, early], None);
        assert_eq!(r.total.all.latencies, [0.0, 0.5]);
        assert!(to_csv(&r).contains("\r\ntotal,all,all,1,0,2,0,0,2,0,0.5,0.5\r\n"));
        // "<1s" in the marker titles is escaped: the plot stays well-formed XML.
        let svg = to_svg(&r, "sub-second");
        assert!(svg.contains("<title>max &lt;1s</title>"), "{svg}");
        assert_well_formed(&svg);
    }

    #[test]
    fn durations_for_people() {
        let cases = [
            (0.0, "0s"),
            (0.5, "<1s"),
            (59.9, "59s"),
            (250.0, "4m 10s"),
            (3_720.0, "1h 02m"),
            (273_600.0, "3d 4h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
        assert_eq!(human_opt(None), "-");
    }

    #[test]
    fn table_rows() {
        let table = render_table(&summarize(&fixture(), None));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "month    group                        accepted  delivered  acknowledged  rejected  \
             expired  median     p90     max"
        );
        assert_eq!(
            lines[2],
            "2025-01  all                                 4          5             3         1        \
             0  4m 10s  1h 02m  1h 02m"
        );
        assert_eq!(
            lines[3],
            "         kind anonymous-consultation         1          1             0         1        \
             0       -       -       -"
        );
        assert_eq!(
            lines[6],
            "         urgency normal                      2          2             1         0        \
             0  1m 00s  1m 00s  1m 00s"
        );
        assert_eq!(lines[9], "");
        assert_eq!(
            lines[10],
            "2025-02  all                                 2          2             2         0        \
             1   3d 4h   3d 4h   3d 4h"
        );
        assert!(table.contains("\ntotal    all "));
        assert!(table.contains("1 message event had no time"));
        // The same report for a Finnish or Swedish reader: headings and fixed text translated,
        // the numbers and group names as they are.
        let fi = render_table_in(&summarize(&fixture(), None), crate::i18n::Lang::Fi);
        assert!(fi.starts_with("kuukausi  ryhmä"), "{fi}");
        assert!(fi.contains("laji anonymous-consultation"), "{fi}");
        assert!(fi.contains("1 viestitapahtumalta puuttui aika"), "{fi}");
        let sv = render_table_in(&summarize(&fixture(), None), crate::i18n::Lang::Sv);
        assert!(sv.contains("\ntotal    alla "), "{sv}");
    }

    #[test]
    fn csv_rows_and_quoting() {
        let csv = to_csv(&summarize(&fixture(), None));
        let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(
            rows[0],
            "month,dimension,group,accepted,delivered,acknowledged,rejected,expired,\
             latency_count,median_secs,p90_secs,max_secs"
        );
        assert_eq!(rows[1], "2025-01,all,all,4,5,3,1,0,3,250,3720,3720");
        assert_eq!(
            rows[2],
            "2025-01,kind,anonymous-consultation,1,1,0,1,0,0,,,"
        );
        assert!(rows.contains(&"total,kind,referral,3,5,5,0,0,4,250,273600,273600"));
        // 3 months' worth of blocks (Jan: 1+3+3, Feb: 1+2+2, total: 1+3+3) plus the header.
        assert_eq!(rows.len(), 1 + 7 + 5 + 7);
        assert!(!csv.replace("\r\n", "").contains('\n'));

        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        // One line per row: a line break from another party is made printable, and a formula
        // is neutralised (crate::text::csv_cell).
        assert_eq!(csv_field("two\nlines"), "two\u{FFFD}lines");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }

    #[test]
    fn json_has_summaries_not_raw_latencies() {
        let v = serde_json::to_value(summarize(&fixture(), None)).unwrap();
        assert_eq!(v["total"]["all"]["ack_latency"]["median_secs"], 250.0);
        assert_eq!(v["months"][1]["month"], "2025-02");
        assert_eq!(v["months"][0]["by_urgency"][2]["name"], "emergency");
        assert!(v["total"]["all"].get("latencies").is_none());
    }

    #[test]
    fn svg_plot() {
        let r = summarize(&fixture(), None);
        let svg = to_svg(&r, "Deliveries <Q1> & \"more\"");
        assert_well_formed(&svg);
        assert!(svg.contains("<title>Deliveries &lt;Q1&gt; &amp; &quot;more&quot;</title>"));
        for label in [
            "referral (n=4)",
            "status-update (n=0)",
            "anonymous-consultation (n=0)",
            "normal (n=1)",
            "urgent (n=3)",
            "emergency (n=0)",
        ] {
            assert!(svg.contains(label), "{label}");
        }
        for tick in [">1s<", ">10s<", ">1m<", ">10m<", ">1h<", ">1d<", ">7d<"] {
            assert!(svg.contains(tick), "{tick}");
        }
        // One dot per latency in each panel, and one in the legend.
        assert_eq!(svg.matches("<circle").count(), 4 + 4 + 1);
        assert!(svg.contains("<title>median 4m 10s</title>"));
        assert!(svg.contains("<title>max 3d 4h</title>"));
        assert_eq!(svg, to_svg(&r, "Deliveries <Q1> & \"more\""));
    }

    #[test]
    fn empty_input() {
        let r = summarize(&[], None);
        assert!(r.months.is_empty());
        assert_eq!(r.total.all, Stats::default());
        let svg = to_svg(&r, "empty");
        assert_well_formed(&svg);
        assert!(svg.contains("no acknowledged messages"));
        assert!(to_csv(&r).ends_with("\r\ntotal,all,all,0,0,0,0,0,0,,,\r\n"));
        assert!(render_table(&r).contains("\ntotal  all           0"));
    }

    /// Checks the XML structure the plot relies on: balanced, properly nested elements, one
    /// root, quoted attributes, and only known entities.
    fn assert_well_formed(xml: &str) {
        let body = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .expect("XML declaration");
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            assert_text(&rest[..open]);
            if stack.is_empty() {
                assert!(rest[..open].trim().is_empty(), "text outside the root");
            }
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
                continue;
            }
            let (tag, self_closing) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let name = &tag[..name_end];
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "bad element name {name:?}"
            );
            assert_attributes(&tag[name_end..]);
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        assert!(rest.trim().is_empty(), "text after the root");
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(roots, 1);
    }

    fn assert_attributes(mut attrs: &str) {
        loop {
            attrs = attrs.trim_start();
            if attrs.is_empty() {
                return;
            }
            let eq = attrs.find('=').expect("attribute without value");
            let name = &attrs[..eq];
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
                "bad attribute name {name:?}"
            );
            let value = attrs[eq + 1..].strip_prefix('"').expect("unquoted value");
            let end = value.find('"').expect("unterminated value");
            assert!(!value[..end].contains('<'));
            assert_text(&value[..end]);
            attrs = &value[end + 1..];
        }
    }

    fn assert_text(text: &str) {
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            let after = &rest[amp + 1..];
            let semi = after.find(';').expect("unterminated entity");
            assert!(
                matches!(&after[..semi], "amp" | "lt" | "gt" | "quot" | "apos"),
                "unknown entity &{};",
                &after[..semi]
            );
            rest = &after[semi + 1..];
        }
    }
}
