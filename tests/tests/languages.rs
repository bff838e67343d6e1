//! Languages and the printable view, through the real `silta` program against a real relay: the
//! same referral shown in Finnish, Swedish and English (`inbox show --format text|html`, golden
//! files in tests/golden/), the language chosen by `--lang` or the locale, an interpreter request,
//! unknown language codes refused before anything is sent, and a hostile referral that cannot
//! put markup or terminal controls on the page.

use std::{path::Path, process::Command};

use silta_tests::{TestPki, TestRelay, TestUser, assert_golden};

const SILTA: &str = env!("CARGO_BIN_EXE_silta-under-test");

/// Runs `silta` with no locale of its own (English) unless `env` sets one.
fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(SILTA);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SILTA_PURPOSE")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .env("SILTA_USER", "tester");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const REFERRAL: &str = r#"account = "Met at the centre; worked without pay for a year."
observations = "Passport held by the employer."
[person]
name = "A. Person"
date_of_birth = "1990-01-01"
nationality = "Afghanistan"
mother_tongue = "prs"
other_languages = ["fa", "en"]
age_group = "AGE_GROUP_ADULT"
[consent]
person_name = "A. Person"
date = "2026-11-20"
language = "prs"
interpreter_used = true
informed_about = ["services"]
"#;

/// Sends `form` as a referral from the centre in `case` with `extra` flags.
fn refer(
    centre: &Path,
    dir: &Path,
    case: &str,
    form: &str,
    extra: &[&str],
) -> std::process::Output {
    let path = dir.join("referral.toml");
    std::fs::write(&path, form).unwrap();
    let mut args = vec![
        "referral",
        "--to",
        "assistance/nas",
        "--case",
        case,
        "--urgency",
        "urgent",
        "--form",
        path.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    run(centre, &args, &[])
}

fn message_id(o: &std::process::Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["message_id"].as_str().unwrap().to_owned()
}

fn received(nas: &Path) -> usize {
    let o = run(
        nas,
        &["inbox", "list", "--purpose", "triage", "--json"],
        &[],
    );
    assert!(o.status.success(), "{}", out(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_printed_in_three_languages() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let c = centre.dir.path().join("silta.toml");
    let n = nas.dir.path().join("silta.toml");
    for cfg in [&c, &n] {
        assert!(run(cfg, &["keys", "publish"], &[]).status.success());
    }
    let o = run(&n, &["case", "new", "--json"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    let case: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let case = case["case"].as_str().unwrap().to_owned();

    // Unknown language codes are refused before anything is sealed or sent: in the form, and in
    // the interpreter flags.
    let o = refer(
        &c,
        centre.dir.path(),
        &case,
        &REFERRAL.replace("mother_tongue = \"prs\"", "mother_tongue = \"Dari\""),
        &[],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(
        out(&o).contains("mother_tongue: Dari is not an ISO 639 language code"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("`silta languages`"), "{}", out(&o));
    let o = refer(
        &c,
        centre.dir.path(),
        &case,
        REFERRAL,
        &["--interpreter-language", "xx"],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(out(&o).contains("language: xx"), "{}", out(&o));
    // In Finnish, the same refusal.
    let o = refer(
        &c,
        centre.dir.path(),
        &case,
        REFERRAL,
        &["--interpreter-language", "Dari", "--lang", "fi"],
    );
    assert_eq!(o.status.code(), Some(64), "{}", out(&o));
    assert!(
        out(&o).contains("virhe: language: Dari ei ole Siltan tuntema ISO 639 -kielikoodi"),
        "{}",
        out(&o)
    );
    assert_eq!(received(&n), 0, "nothing was sent");

    // `silta languages` lists the codes in the reader's language.
    let o = run(&c, &["languages", "--lang", "sv"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(stdout(&o).contains("prs  dari"), "{}", out(&o));
    assert!(
        stdout(&o).contains("ckb  sorani (centralkurdiska)"),
        "{}",
        out(&o)
    );

    // A referral asking for an interpreter.
    let o = refer(
        &c,
        centre.dir.path(),
        &case,
        REFERRAL,
        &[
            "--interpreter-language",
            "prs",
            "--interpreter-dialect",
            "Herati",
            "--interpreter-note",
            "female interpreter",
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    let id = message_id(&o);
    assert_eq!(received(&n), 1);

    // The same page in every language, text and HTML, byte for byte.
    for lang in ["fi", "sv", "en"] {
        for format in ["text", "html"] {
            let o = run(
                &n,
                &[
                    "inbox",
                    "show",
                    &id,
                    "--format",
                    format,
                    "--lang",
                    lang,
                    // A case's purpose is asked per case (the list's general one covers none).
                    "--purpose",
                    "printing the referral",
                ],
                &[],
            );
            assert!(o.status.success(), "{}", out(&o));
            // Who printed it is the OS user (the access log's person), not $SILTA_USER.
            let os = silta_client::access::os_user().name;
            let who = [
                format!("Printed by {os} at"),
                format!("Tulostanut {os} "),
                format!("Utskrivet av {os} "),
            ];
            let redacted = [
                "Printed by [OS-USER] at",
                "Tulostanut [OS-USER] ",
                "Utskrivet av [OS-USER] ",
            ];
            let replace: Vec<(&str, &str)> = who.iter().map(String::as_str).zip(redacted).collect();
            assert_golden(
                &format!("show-referral-{format}-{lang}"),
                &stdout(&o),
                &replace,
            );
        }
    }

    // The language of the locale, unless --lang says otherwise; the terminal view too.
    let o = run(&n, &["inbox", "show", &id], &[("LANG", "fi_FI.UTF-8")]);
    assert!(o.status.success(), "{}", out(&o));
    let fi = stdout(&o);
    assert!(
        fi.contains("TULKKI TARVITAAN: dari (prs); murre: Herati"),
        "{fi}"
    );
    assert!(fi.contains("Ikäryhmä: Täysi-ikäinen"), "{fi}");
    assert!(fi.contains("Äidinkieli: dari (prs)"), "{fi}");
    assert!(!fi.contains("AGE_GROUP_ADULT"), "{fi}");
    let o = run(
        &n,
        &["inbox", "show", &id],
        &[("LANG", "en_GB.UTF-8"), ("LC_ALL", "sv_FI.UTF-8")],
    );
    assert!(stdout(&o).contains("Åldersgrupp: Vuxen"), "{}", out(&o));
    let o = run(
        &n,
        &["inbox", "show", &id, "--lang", "en"],
        &[("LANG", "sv_SE.UTF-8")],
    );
    assert!(
        stdout(&o)
            .contains("INTERPRETER NEEDED: Dari (prs); dialect: Herati; note: female interpreter"),
        "{}",
        out(&o)
    );
    assert!(stdout(&o).contains("Age group: Adult"), "{}", out(&o));

    // Every view and print was recorded in the access log first.
    let o = run(&n, &["inbox", "access-report", &case, "--json"], &[]);
    assert!(o.status.success(), "{}", out(&o));
    let entries: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let count = |action: &str| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    // Six pages (text and HTML in three languages) printed, three views on the screen.
    assert_eq!((count("printed"), count("shown")), (6, 3), "{entries:#}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_referral_prints_as_text_not_markup_or_controls() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let centre = TestUser::new(&pki, relay.addr, "centre/joutseno", "server-1");
    let nas = TestUser::new(&pki, relay.addr, "assistance/nas", "desk-1");
    let c = centre.dir.path().join("silta.toml");
    let n = nas.dir.path().join("silta.toml");
    for cfg in [&c, &n] {
        assert!(run(cfg, &["keys", "publish"], &[]).status.success());
    }
    let o = run(&n, &["case", "new", "--json"], &[]);
    let case: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let case = case["case"].as_str().unwrap().to_owned();
    let hostile = REFERRAL
        .replace(
            "Met at the centre;",
            r#"<script>alert(1)</script><img src=x onerror=alert(2)>\u202Etxt.exe\u001b[2J\u001b]0;owned\u0007\u200Bhidden\" & 'q'"#,
        )
        .replace("A. Person", "A.\u{2067}Person\u{2069}");
    let o = refer(
        &c,
        centre.dir.path(),
        &case,
        &hostile,
        &["--interpreter-note", "</p><script>x()</script>\u{202E}"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let id = message_id(&o);
    assert_eq!(received(&n), 1);

    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}')
    };
    for format in ["html", "text"] {
        let o = run(
            &n,
            &[
                "inbox",
                "show",
                &id,
                "--format",
                format,
                "--purpose",
                "checking the page",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", out(&o));
        let page = stdout(&o);
        assert!(!page.chars().any(bad), "{format}: {page:?}");
        if format == "html" {
            assert!(!page.contains("<script"), "{page}");
            assert!(!page.contains("<img"), "{page}");
            assert!(
                page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{page}"
            );
            assert!(page.contains("&quot; &amp; &#39;q&#39;"), "{page}");
            assert!(page.contains("&lt;/p&gt;&lt;script&gt;x()"), "{page}");
            // Self-contained: nothing is loaded from elsewhere.
            assert!(!page.contains(" src=\""), "{page}");
            assert!(!page.contains("<link"), "{page}");
        }
        assert!(page.contains("\u{FFFD}txt.exe\u{FFFD}[2J"), "{page}");
    }
    // And the terminal view.
    let o = run(&n, &["inbox", "show", &id], &[]);
    assert!(!stdout(&o).chars().any(|c| (c.is_control() && c != '\n')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')));
    relay.stop().await;
}
