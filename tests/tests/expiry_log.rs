//! The relay's expiry warnings in its log, with an injected clock: at start (and daily), a WARN
//! line for each principal certificate, the relay's certificate, the CA and each CRL that runs
//! out within `tls.expiry_warning_days` (default 30). Its own test binary: the log is captured
//! through the process-wide subscriber, which no other test may share.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use silta_tests::{TestClock, TestPki, TestRelay};

const WAIT: Duration = Duration::from_secs(10);

/// Collects what the relay logs (formatted lines) for the current thread's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn warnings(&self, what: &str) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("expiry_warning_days"))
            .filter(|l| l.contains(&format!("what={what}")))
            .count()
    }
}

#[tokio::test]
async fn the_relay_warns_in_its_log_about_what_expires_within_its_window() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();

    let pki = TestPki::new();
    let clock = TestClock::new();
    // A window of 1 day: nothing in the test PKI is that close.
    let relay = TestRelay::start_clocked(&pki, &clock, |c| c.tls.expiry_warning_days = 1).await;
    let _centre = relay.connect_as(&pki, "centre/c").await;
    let data = relay.stop_keep().await;
    assert_eq!(
        captured.warnings(""),
        0,
        "no warnings expected:\n{}",
        captured.text()
    );

    // A window of a year, on the same data: the relay's certificate (30 days), the CRL (60), the
    // certificate centre/c authenticated with (90) and the CA (365) — the test PKI's lifetimes.
    let relay = TestRelay::start_in_clocked(&pki, data, Arc::new(clock.clone()), |c| {
        c.tls.expiry_warning_days = 365
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while captured.warnings("principal-certificate") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning:\n{}",
            captured.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for what in ["relay-certificate", "ca-certificate", "crl"] {
        assert_eq!(captured.warnings(what), 1, "{what}:\n{}", captured.text());
    }
    let text = captured.text();
    assert!(text.contains("subject=\"centre/c\""), "{text}");
    // Ninety days, less the moments since the certificate was made.
    assert!(
        text.contains("days_left=89") || text.contains("days_left=90"),
        "{text}"
    );
    relay.stop().await;
}
