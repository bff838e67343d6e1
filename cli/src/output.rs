//! Printing helpers shared by the commands. Everything another party or the relay wrote is made
//! printable first ([`printable_line`]): it cannot move the cursor, erase rows or start new ones.

use silta_client::{client::Client, keys::DeviceKeys, text::printable_line};

/// This device's public keys and the fingerprint to compare by phone.
pub(crate) fn print_keys(keys: &DeviceKeys) {
    println!("device:      {}", keys.device_id());
    println!("age:         {}", keys.age_recipient());
    println!(
        "ed25519:     {}",
        hex::encode(keys.verifying_key().as_bytes())
    );
    println!("fingerprint: {}", keys.fingerprint());
}

/// Warns about every key that changed since it was last seen (it verified against the CA).
pub(crate) fn print_key_changes(client: &Client) {
    for c in client.take_key_changes() {
        eprintln!(
            "warning: the key of {} device {} CHANGED from {} to {}; it verified against the CA. Confirm the new fingerprint with them by phone.",
            c.principal, c.device, c.old, c.new
        );
    }
}

/// Prints aligned columns. Every cell is made printable on one line first
/// ([`printable_line`]): a value from the relay or another party cannot move the cursor, erase
/// rows or start a new one.
pub(crate) fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| std::array::from_fn(|i| printable_line(&r[i])))
        .collect();
    let rows = rows.as_slice();
    let mut width = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(head.to_vec());
    line(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
