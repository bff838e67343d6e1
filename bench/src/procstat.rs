//! A server process's CPU time and peak resident memory, read from `/proc` (Linux).

use std::io;

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time so far, in microseconds.
    pub cpu_us: u64,
    /// Peak resident set so far (VmHWM), in KiB.
    pub peak_rss_kib: u64,
}

/// What a server used over a measured window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerUsage {
    /// CPU time spent in the window, in microseconds.
    pub cpu_us: u64,
    /// Peak resident set at the end of the window, in KiB.
    pub peak_rss_kib: u64,
}

/// A server process, sampled at the start and the end of a measured window.
#[derive(Clone, Debug)]
pub struct ProcStat {
    pid: u32,
    start: Option<ProcSample>,
}

impl ProcStat {
    /// Watches process `pid`.
    pub fn new(pid: u32) -> Self {
        ProcStat { pid, start: None }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the process now.
    pub fn sample(&self) -> io::Result<ProcSample> {
        sample(self.pid)
    }

    /// Marks the start of the window.
    pub fn start(&mut self) -> io::Result<()> {
        self.start = Some(self.sample()?);
        Ok(())
    }

    /// Ends the window: the CPU time since [`ProcStat::start`] and the peak RSS now.
    pub fn finish(&self) -> io::Result<ServerUsage> {
        let end = self.sample()?;
        let start = self
            .start
            .ok_or_else(|| io::Error::other("ProcStat::finish before start"))?;
        Ok(usage(start, end))
    }
}

/// The usage between two samples of one process.
pub fn usage(start: ProcSample, end: ProcSample) -> ServerUsage {
    ServerUsage {
        cpu_us: end.cpu_us.saturating_sub(start.cpu_us),
        peak_rss_kib: end.peak_rss_kib,
    }
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let ticks = parse_cpu_ticks(&stat)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: unexpected format")))?;
    let peak_rss_kib = parse_vm_hwm_kib(&status)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/status: no VmHWM")))?;
    Ok(ProcSample {
        cpu_us: ticks_to_us(ticks, clock_ticks_per_second()),
        peak_rss_kib,
    })
}

/// USER_HZ, the unit of utime/stime (sysconf(_SC_CLK_TCK); 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        hz => hz,
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields
/// are counted from the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmHWM:` line of `/proc/PID/status`, in KiB.
pub fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Clock ticks to microseconds.
pub fn ticks_to_us(ticks: u64, hz: u64) -> u64 {
    ticks.saturating_mul(1_000_000) / hz.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis; utime 1234, stime 566.
        let stat = "4242 (silta relay) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 566 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1800));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(ticks_to_us(1800, 100), 18_000_000);
    }

    #[test]
    fn vm_hwm_in_kib() {
        let status =
            "Name:\tsilta-relay\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(51234));
        assert_eq!(parse_vm_hwm_kib("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_uses_cpu() {
        let mut p = ProcStat::new(std::process::id());
        p.start().unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let u = p.finish().unwrap();
        assert!(u.cpu_us >= 100_000, "{u:?}");
        assert!(u.peak_rss_kib > 0);
    }
}
