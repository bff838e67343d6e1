//! `bench-report FILE.jsonl...`: the comparison as markdown tables (median (min–max) over
//! rounds per system and mode, the target ratios) on stdout, and with `--svg PATH` a
//! plot of throughput and p99 per system.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use silta_bench::report;

#[derive(Parser, Debug)]
#[command(about = "tables and plot from Outcome lines")]
struct Args {
    /// JSONL files of Outcome lines.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the SVG plot here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut all = Vec::new();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        all.extend(report::parse_jsonl(&f.display().to_string(), &text)?);
    }
    anyhow::ensure!(!all.is_empty(), "no Outcome lines in the given files");
    let groups = report::group(&all);
    print!("{}", report::markdown(&groups));
    print!("{}", report::ratios_markdown(&report::ratios(&groups)));
    if let Some(path) = &args.svg {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, report::svg(&groups))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench-report: plot written to {}", path.display());
    }
    Ok(())
}
