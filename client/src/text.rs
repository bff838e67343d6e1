//! Text from the relay or another party, made safe to show: one set of functions for every
//! output of the `silta` program (tables, text, CSV; JSON is escaped by the serialiser).
//!
//! A sender, a recipient (a rejection's detail, a device id) or a relay (an event's detail, an
//! audit purpose) controls some of the text an auditor or a case worker reads. Control
//! characters (escape sequences that move the cursor, erase lines or retitle the terminal) and
//! the Unicode controls that reorder text on screen are replaced with U+FFFD, so what is shown is
//! what was stored; spreadsheet formulas in CSV cells are neutralised.

/// The replacement shown for a character that is not safe to print.
pub(crate) const REPLACEMENT: char = '\u{FFFD}';

/// Bidirectional controls and line/paragraph separators reorder or break what a terminal or a
/// spreadsheet shows, and zero-width and invisible formatting characters hide what is there:
/// the lists shared with the relay's checks.
use silta_proto::text::{invisible, reorders};

/// Multi-line text (a message body): control characters other than a line feed, reordering
/// controls and invisible characters (zero-width space, joiners, soft hyphen, BOM) become
/// U+FFFD, so what is shown is all that is stored.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' => '\n',
            c if c.is_control() || reorders(c) || invisible(c) => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// One line (a table cell, a field in a sentence): like [`printable`], and line breaks and tabs
/// become U+FFFD too, so a value can never start a new row or shift the columns.
pub fn printable_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || reorders(c) || invisible(c) {
                REPLACEMENT
            } else {
                c
            }
        })
        .collect()
}

/// A CSV cell (RFC 4180): made printable on one line, and a value a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`;
/// quoted when it holds a comma, a quote or a line end.
pub(crate) fn csv_cell(s: &str) -> String {
    let cell = csv_text(s);
    if cell.contains([',', '"']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// A CSV cell's text before quoting: printable on one line, a formula neutralised with a leading
/// `'` (see [`csv_cell`]).
pub(crate) fn csv_text(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut cell = printable_line(s);
    if formula {
        cell.insert(0, '\'');
    }
    cell
}

/// A CSV cell always in quotes (RFC 4180), its text as [`csv_text`] makes it.
pub fn csv_quoted(s: &str) -> String {
    format!("\"{}\"", csv_text(s).replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        let hostile = "ok\x1b[2K\x1b[1A\r\x07\x1b]0;owned\x07 \u{202E}txt.exe\u{9b}31m";
        for out in [printable(hostile), printable_line(hostile)] {
            assert!(
                !out.chars().any(|c| c.is_control() || reorders(c)),
                "{out:?}"
            );
            assert!(out.starts_with("ok\u{FFFD}[2K"), "{out:?}");
        }
        assert_eq!(printable("a\nb\tc"), "a\nb\u{FFFD}c");
        assert_eq!(printable_line("a\nb"), "a\u{FFFD}b");
        assert_eq!(printable_line("Jyväskylä — ok"), "Jyväskylä — ok");
        assert_eq!(printable_line("a\u{2028}b\u{2029}c"), "a\u{FFFD}b\u{FFFD}c");
        // Zero-width characters, as on the printed page.
        assert_eq!(
            printable_line("ad\u{200B}min\u{FEFF}"),
            "ad\u{FFFD}min\u{FFFD}"
        );
        assert_eq!(printable("a\u{200D}\nb\u{00AD}"), "a\u{FFFD}\nb\u{FFFD}");
    }

    #[test]
    fn csv_cells_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\u{FFFD}x");
        assert_eq!(csv_cell("\r=1"), "'\u{FFFD}=1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("x\ny"), "x\u{FFFD}y");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_quoted("=1+\"2\""), "\"'=1+\"\"2\"\"\"");
        assert_eq!(csv_quoted("ACCEPTED"), "\"ACCEPTED\"");
    }
}
