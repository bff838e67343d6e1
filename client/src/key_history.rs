//! Which of a principal's earlier key bundles may have signed a message: only the bundle that
//! was its device's current keys when the relay accepted the message.
//!
//! A key rotated away from (possibly because it was suspected compromised: `silta keys rotate`
//! keeps the installation certificate, so the old key's certificate is never revoked) or the
//! key of a device the relay's administrator retired must not verify messages accepted after
//! that. The client computes supersession by a newer bundle from the history itself (the
//! relay's log indexes order it); retirement, which is not a bundle, is the relay's word
//! (`PublishedBundle.superseded_at_index`): a relay that lies about it can only make the check
//! stricter, which is no more than withholding the message.

use std::collections::HashMap;

/// Collects, bundle by bundle (the history arrives in pages), per device the bundle with the
/// greatest log index below the message's, and keeps only that one: memory is one bundle per
/// device however long the history is.
#[derive(Debug)]
pub struct CurrentAt<T> {
    message_index: u64,
    latest: HashMap<String, Candidate<T>>,
}

#[derive(Debug)]
struct Candidate<T> {
    log_index: u64,
    superseded_at_index: u64,
    item: T,
}

impl<T> CurrentAt<T> {
    /// For a message accepted at `message_index` in the delivery log.
    pub fn new(message_index: u64) -> Self {
        CurrentAt {
            message_index,
            latest: HashMap::new(),
        }
    }

    /// Offers a bundle of `device` logged at `log_index`, which the relay says stopped being
    /// current at `superseded_at_index` (0: it does not say).
    pub fn offer(&mut self, device: &str, log_index: u64, superseded_at_index: u64, item: T) {
        if log_index >= self.message_index {
            // Published at or after the message: neither a key that signed it nor one that
            // can matter for it (the device's bundle before the message was current then).
            return;
        }
        match self.latest.get_mut(device) {
            Some(c) if c.log_index > log_index => {}
            Some(c) if c.log_index == log_index => {
                // The same bundle twice (e.g. in the active list and in the history): the
                // stricter word on its retirement counts.
                c.superseded_at_index = stricter(c.superseded_at_index, superseded_at_index);
            }
            _ => {
                self.latest.insert(
                    device.to_owned(),
                    Candidate {
                        log_index,
                        superseded_at_index,
                        item,
                    },
                );
            }
        }
    }

    /// Devices with a candidate so far.
    pub fn devices(&self) -> usize {
        self.latest.len()
    }

    /// Per device, the bundle that was current when the message was accepted, unless the relay
    /// says it was retired at or before the message; in log order.
    pub fn into_selected(self) -> Vec<(u64, T)> {
        let message_index = self.message_index;
        let mut out: Vec<(u64, T)> = self
            .latest
            .into_values()
            .filter(|c| c.superseded_at_index == 0 || message_index < c.superseded_at_index)
            .map(|c| (c.log_index, c.item))
            .collect();
        out.sort_by_key(|(i, _)| *i);
        out
    }
}

/// The earlier of two non-zero supersession indexes (0: none).
fn stricter(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log indexes selected for a message at `message_index` from (device, log_index,
    /// superseded_at_index) entries.
    fn selected(message_index: u64, entries: &[(&str, u64, u64)]) -> Vec<u64> {
        let mut c = CurrentAt::new(message_index);
        for (device, index, superseded) in entries {
            c.offer(device, *index, *superseded, ());
        }
        c.into_selected().into_iter().map(|(i, ())| i).collect()
    }

    #[test]
    fn only_the_bundle_current_at_the_message_is_selected() {
        let history = [("desk", 3, 0), ("desk", 10, 0), ("desk", 20, 0)];
        // Before the first bundle: nothing was current.
        assert_eq!(selected(2, &history), Vec::<u64>::new());
        assert_eq!(selected(3, &history), Vec::<u64>::new());
        // Between rotations: the bundle of the day, not the one rotated away from.
        assert_eq!(selected(4, &history), vec![3]);
        assert_eq!(selected(10, &history), vec![3]);
        assert_eq!(selected(11, &history), vec![10]);
        // After the last rotation: only the newest, never an older key.
        assert_eq!(selected(21, &history), vec![20]);
        assert_eq!(selected(u64::MAX, &history), vec![20]);
    }

    #[test]
    fn each_device_has_its_own_current_bundle() {
        let history = [
            ("desk", 3, 0),
            ("laptop", 5, 0),
            ("desk", 8, 0),
            ("laptop", 30, 0),
        ];
        assert_eq!(selected(9, &history), vec![5, 8]);
        assert_eq!(selected(31, &history), vec![8, 30]);
    }

    #[test]
    fn order_of_arrival_does_not_matter() {
        let history = [("desk", 20, 0), ("desk", 3, 0), ("desk", 10, 0)];
        assert_eq!(selected(15, &history), vec![10]);
    }

    #[test]
    fn a_device_retired_before_the_message_has_no_current_bundle() {
        // Retired (KEY_REVOKED) at 12: a message accepted after it is not from that device.
        let history = [("desk", 3, 0), ("desk", 10, 12), ("laptop", 4, 0)];
        assert_eq!(selected(11, &history), vec![4, 10]);
        assert_eq!(selected(12, &history), vec![4]);
        assert_eq!(selected(13, &history), vec![4]);
        // Retirement does not bring the bundle before it back.
        assert_eq!(selected(50, &history), vec![4]);
    }

    #[test]
    fn the_relay_saying_a_bundle_was_superseded_only_makes_it_stricter() {
        // The relay names its successor's index (10): consistent with the history.
        let honest = [("desk", 3, 10), ("desk", 10, 0)];
        assert_eq!(selected(5, &honest), vec![3]);
        assert_eq!(selected(11, &honest), vec![10]);
        // A relay claiming a later supersession than the history shows changes nothing.
        let late = [("desk", 3, 99), ("desk", 10, 0)];
        assert_eq!(selected(11, &late), vec![10]);
        // Nor does withholding the newer bundle's index (0) make the older one current.
        let silent = [("desk", 3, 0), ("desk", 10, 0)];
        assert_eq!(selected(11, &silent), vec![10]);
    }

    #[test]
    fn bundles_at_or_after_the_message_are_not_kept() {
        let mut c = CurrentAt::new(10);
        c.offer("desk", 3, 0, ());
        c.offer("laptop", 10, 0, ());
        c.offer("phone", 11, 0, ());
        assert_eq!(c.devices(), 1);
        assert_eq!(c.into_selected(), vec![(3, ())]);
    }

    #[test]
    fn a_bundle_seen_twice_keeps_the_stricter_retirement() {
        let twice = [("desk", 10, 0), ("desk", 10, 12)];
        assert_eq!(selected(13, &twice), Vec::<u64>::new());
        let twice = [("desk", 10, 15), ("desk", 10, 12)];
        assert_eq!(selected(13, &twice), Vec::<u64>::new());
        assert_eq!(selected(11, &twice), vec![10]);
    }
}
