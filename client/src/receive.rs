//! The one way received messages are opened, for every program: fetch (subscribe) -> open and
//! verify -> **record the opening in the access log** -> keep (the caller's storage) ->
//! acknowledge, at once or later when a person does ([`Acknowledge`]).
//!
//! The access-log entry (`received`, with who, the installation's principal and the purpose
//! the caller gives in its [`Opener`]) is written and synced before the caller's `keep` sees
//! the content, so nothing opened escapes the log: if the entry cannot be written, the message
//! is neither kept nor acknowledged, and the relay delivers it again later. The daemon, `silta
//! inbox sync` and `silta receive` all go through [`Client::process_opts`].
//!
//! Duplicates (acknowledged before), replays (an id seen with other content), messages kept
//! and waiting for a person, and messages whose sender's keys cannot be fetched now (retried
//! later, durably, without holding up the messages behind them) are decided here too.

use std::time::{Duration, SystemTime};

use silta_proto::pb;

use crate::{
    access::{Access, AccessLog, AccessLogError, Action},
    client::{Client, ClientError, Received},
    ids::MessageId,
    seal::{Opened, Rejected, sign_ack},
    times::unix_ms,
};

/// Who opens received messages, for which installation, and why: what each `received`
/// access-log entry says. (`inbox::Reader` is the same type.)
#[derive(Debug, Clone)]
pub struct Opener<'a> {
    /// The access log.
    pub log: &'a AccessLog,
    /// The person or process (`process:silta-daemon`, a user name).
    pub who: &'a str,
    /// The installation's principal.
    pub principal: &'a str,
    /// Why.
    pub purpose: &'a str,
}

impl Opener<'_> {
    /// Records an access to `case`'s `messages` (synced before it returns).
    pub fn record(
        &self,
        action: Action,
        case: &[u8],
        messages: &[Vec<u8>],
    ) -> Result<(), AccessLogError> {
        self.log
            .record(&Access {
                who: self.who,
                principal: self.principal,
                action,
                case,
                messages,
                purpose: self.purpose,
                recipients: &[],
            })
            .map(|_| ())
    }
}

/// When an opened and kept message is acknowledged to the relay (its sender then sees
/// "acknowledged").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// At once, after it was kept (the daemon, `silta receive`).
    AfterKeeping,
    /// Later, by a person ([`Client::acknowledge_stored`]): the inbox. The message comes again
    /// on each subscription until then, and is recognised as kept (not opened again).
    ByPerson,
}

impl Client {
    /// Subscribes and processes what arrives until nothing new came for `idle`, or `max` items.
    /// Each opened message is recorded in the access log as `opener`, then `keep` is called
    /// *before* it is acknowledged: store it durably there; if it fails, the message is not
    /// acknowledged (the relay delivers it again later) and receiving stops with the error.
    pub async fn receive(
        &self,
        opener: &Opener<'_>,
        idle: Duration,
        max: usize,
        mut keep: impl FnMut(&pb::DeliveredEnvelope, &Opened) -> Result<(), String>,
    ) -> Result<Vec<Received>, ClientError> {
        let mut stream = self
            .connection()
            .mailbox()
            .subscribe(self.subscribe_request())
            .await?
            .into_inner();
        let mut out = Vec::new();
        while out.len() < max {
            let item = match tokio::time::timeout(idle, stream.message()).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Err(status)) => return Err(status.into()),
                Ok(Ok(Some(item))) => item,
            };
            out.push(self.process(item, opener, &mut keep).await?);
        }
        Ok(out)
    }

    /// Processes one mailbox item: opens, logs the opening, keeps and acknowledges, or
    /// rejects; confirms status items.
    pub async fn process(
        &self,
        item: pb::MailboxItem,
        opener: &Opener<'_>,
        keep: &mut impl FnMut(&pb::DeliveredEnvelope, &Opened) -> Result<(), String>,
    ) -> Result<Received, ClientError> {
        self.process_opts(item, opener, keep, Acknowledge::AfterKeeping)
            .await
    }

    /// Like [`Client::process`]; with [`Acknowledge::ByPerson`] an opened message is kept but
    /// not acknowledged (the inbox leaves that to a person: [`Client::acknowledge_stored`]), so
    /// it comes again on the next subscription and is recognised by its kept record in the
    /// state (`msgid_record`), not opened (nor logged) again.
    pub async fn process_opts(
        &self,
        item: pb::MailboxItem,
        opener: &Opener<'_>,
        keep: &mut impl FnMut(&pb::DeliveredEnvelope, &Opened) -> Result<(), String>,
        acknowledge: Acknowledge,
    ) -> Result<Received, ClientError> {
        match item.item {
            Some(pb::mailbox_item::Item::Status(status)) => {
                self.connection()
                    .mailbox()
                    .ack(pb::AckRequest {
                        device_id: self.keys().device_id().to_owned(),
                        target: Some(pb::ack_request::Target::StatusSeq(item.seq)),
                    })
                    .await?;
                Ok(Received::Status(status))
            }
            Some(pb::mailbox_item::Item::Envelope(delivered))
                if delivered.handled.is_some() || delivered.sealed_before_device =>
            {
                self.process_handled(item.seq, delivered, opener, keep)
                    .await
            }
            Some(pb::mailbox_item::Item::Envelope(delivered)) => {
                let env = delivered.envelope.clone().unwrap_or_default();
                // Acknowledged before (the relay delivers it again, e.g. after a restore from a
                // backup): acknowledged again, not shown again.
                match self.state().seen(&env.message_id)? {
                    Some(digest) if digest == env.ciphertext_sha256 => {
                        self.acknowledge(&env).await?;
                        return Ok(Received::Duplicate {
                            message_id: env.message_id,
                        });
                    }
                    Some(_) => {
                        let rejected = Rejected::new(
                            pb::RejectionReason::Replay,
                            "message id seen before with other content",
                        );
                        self.reject(&env, &rejected).await?;
                        return Ok(Received::Rejected {
                            delivered,
                            rejected,
                        });
                    }
                    None => {}
                }
                // Kept earlier and waiting for a person's acknowledgement: not opened and judged
                // again (keys, revocations and dates may have changed since it was verified).
                let kept = match acknowledge {
                    Acknowledge::AfterKeeping => None,
                    Acknowledge::ByPerson => match self.state().message(&env.message_id) {
                        Ok(kept) => kept,
                        // A kept record that does not load: not opened and kept over it (that
                        // would lose what a person did with it), not holding up the others.
                        Err(e) if self.state().has_message(&env.message_id)? => {
                            tracing::error!(message_id = %hex::encode(&env.message_id), error = %e, "the kept record of a received message does not load; left as it is");
                            return Ok(Received::Duplicate {
                                message_id: env.message_id,
                            });
                        }
                        Err(e) => return Err(e.into()),
                    },
                };
                if let Some(kept) = kept {
                    if kept.digest() == env.ciphertext_sha256 {
                        return Ok(Received::Duplicate {
                            message_id: env.message_id,
                        });
                    }
                    let rejected = Rejected::new(
                        pb::RejectionReason::Replay,
                        "message id kept before with other content",
                    );
                    self.reject(&env, &rejected).await?;
                    return Ok(Received::Rejected {
                        delivered,
                        rejected,
                    });
                }
                // Waiting for its next try: skipped, so it does not hold up what follows.
                let retry = self.state().retry(&env.message_id)?;
                if let Some(r) = retry
                    .as_ref()
                    .filter(|r| unix_ms(self.now()) < r.next_at_ms)
                {
                    return Ok(Received::Deferred {
                        delivered,
                        retry: r.clone(),
                        tried: false,
                    });
                }
                let outcome = match self.open(&delivered).await {
                    Ok(outcome) => outcome,
                    Err(e) if e.is_per_message() => {
                        return self.defer(delivered, retry, &e).await;
                    }
                    Err(e) => return Err(e),
                };
                if retry.is_some() {
                    self.state().remove_retry(&env.message_id)?;
                }
                match outcome {
                    Ok(opened) => {
                        // The opening is on record before anything is kept or shown.
                        opener
                            .record(
                                Action::Received,
                                &opened.signed.case_ref,
                                std::slice::from_ref(&opened.signed.message_id),
                            )
                            .map_err(|e| ClientError::Store(format!("could not record the opening of a received message in the access log (not kept, not acknowledged; it will come again): {e}")))?;
                        keep(&delivered, &opened).map_err(|e| ClientError::Store(format!("could not store a received message (not acknowledged; it will come again): {e}")))?;
                        if acknowledge == Acknowledge::ByPerson {
                            return Ok(Received::Message {
                                delivered,
                                opened: Box::new(opened),
                            });
                        }
                        // Recorded before acknowledging: a crash in between re-delivers, and the
                        // redelivery is recognised as a duplicate.
                        self.state()
                            .mark_seen(&env.message_id, &env.ciphertext_sha256)?;
                        self.acknowledge(&env).await?;
                        Ok(Received::Message {
                            delivered,
                            opened: Box::new(opened),
                        })
                    }
                    Err(rejected) => {
                        self.reject(&env, &rejected).await?;
                        Ok(Received::Rejected {
                            delivered,
                            rejected,
                        })
                    }
                }
            }
            None => Err(ClientError::Relay(tonic::Status::internal(
                "empty mailbox item",
            ))),
        }
    }

    /// The subscription of this desk: from the start of the mailbox, for this device (the
    /// relay skips what this desk is done with, and says what another desk handled).
    pub fn subscribe_request(&self) -> pb::SubscribeRequest {
        pb::SubscribeRequest {
            after_seq: 0,
            device_id: self.keys().device_id().to_owned(),
        }
    }

    /// An envelope another desk of this principal already acknowledged or rejected
    /// (`handled`), or one sealed before this desk's keys were published
    /// (`sealed_before_device`). Never acknowledged or rejected from here (that would look as
    /// if this desk handled it): the claim is checked against the handling device's key
    /// bundle ([`Client::check_handled`]); a message that opens is opened, logged and kept as
    /// usual and its kept record (if in the state) notes who handled it; one sealed before
    /// this desk gets a placeholder record without content in the state. Then the relay is
    /// told this desk is done with it (`done_seq`).
    async fn process_handled(
        &self,
        seq: u64,
        delivered: pb::DeliveredEnvelope,
        opener: &Opener<'_>,
        keep: &mut impl FnMut(&pb::DeliveredEnvelope, &Opened) -> Result<(), String>,
    ) -> Result<Received, ClientError> {
        let env = delivered.envelope.clone().unwrap_or_default();
        let id = MessageId::from_slice(&env.message_id)
            .map_or_else(|_| hex::encode(&env.message_id), |m| m.to_string());
        let handled = match &delivered.handled {
            Some(_) => Some(self.check_handled(&delivered).await?),
            None => None,
        };
        if let Some(h) = &handled {
            if h.verified {
                tracing::info!(message_id = %id, device = %h.device, "message handled by another desk (signature verified)");
            } else {
                tracing::warn!(message_id = %id, device = %h.device, problem = ?h.problem, "the relay says another desk handled this message, but that could not be verified here");
            }
        }
        let note = |record: &mut crate::record::MessageRecord| {
            if handled.is_some() && record.handled_elsewhere != handled {
                record.handled_elsewhere.clone_from(&handled);
                true
            } else {
                false
            }
        };
        // Kept here before (fetched before the other desk answered, or a placeholder): noted,
        // not opened again.
        if self.state().has_message(&env.message_id)? {
            if let Ok(Some(mut record)) = self.state().message(&env.message_id)
                && note(&mut record)
            {
                self.state().put_message(&record.message_id, &record)?;
            }
            self.done_item(seq).await?;
            return Ok(Received::Duplicate {
                message_id: env.message_id,
            });
        }
        if self.state().seen(&env.message_id)?.is_some() {
            self.done_item(seq).await?;
            return Ok(Received::Duplicate {
                message_id: env.message_id,
            });
        }
        if delivered.sealed_before_device {
            tracing::warn!(message_id = %id, from = %delivered.sender, "{}", crate::record::SEALED_BEFORE_NOTE);
            let mut record = crate::record::MessageRecord::sealed_before(&delivered);
            record.received_at = Some(crate::times::now_rfc3339());
            note(&mut record);
            self.state().put_message(&record.message_id, &record)?;
            self.done_item(seq).await?;
            return Ok(Received::NotForThisDesk { delivered });
        }
        let retry = self.state().retry(&env.message_id)?;
        if let Some(r) = retry
            .as_ref()
            .filter(|r| unix_ms(self.now()) < r.next_at_ms)
        {
            return Ok(Received::Deferred {
                delivered,
                retry: r.clone(),
                tried: false,
            });
        }
        let outcome = match self.open(&delivered).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_per_message() => return self.defer(delivered, retry, &e).await,
            Err(e) => return Err(e),
        };
        if retry.is_some() {
            self.state().remove_retry(&env.message_id)?;
        }
        match outcome {
            Ok(opened) => {
                opener
                    .record(
                        Action::Received,
                        &opened.signed.case_ref,
                        std::slice::from_ref(&opened.signed.message_id),
                    )
                    .map_err(|e| ClientError::Store(format!("could not record the opening of a received message in the access log (not kept; it will come again): {e}")))?;
                keep(&delivered, &opened).map_err(|e| {
                    ClientError::Store(format!(
                        "could not store a received message (it will come again): {e}"
                    ))
                })?;
                if let Ok(Some(mut record)) = self.state().message(&env.message_id)
                    && note(&mut record)
                {
                    self.state().put_message(&record.message_id, &record)?;
                }
                self.state()
                    .mark_seen(&env.message_id, &env.ciphertext_sha256)?;
                self.done_item(seq).await?;
                Ok(Received::Message {
                    delivered,
                    opened: Box::new(opened),
                })
            }
            Err(rejected) => {
                // Another desk already answered it: no rejection from here (it would change
                // nothing); this desk is done with it.
                tracing::warn!(message_id = %id, reason = rejected.reason.as_str_name(), detail = %rejected.detail, "a message another desk handled does not open or verify here; not kept");
                self.done_item(seq).await?;
                Ok(Received::Rejected {
                    delivered,
                    rejected,
                })
            }
        }
    }

    /// Checks the relay's claim that another desk of this principal handled `delivered`
    /// (`DeliveredEnvelope.handled`): an acknowledgement's signature against the key bundle of
    /// that device of this principal, verified against the CA, as current at the
    /// acknowledgement's log index (a key rotated since still counts for what it signed). A
    /// rejection carries no signature: recorded as unverified with that reason. A passing
    /// failure to fetch the keys is returned as an error (the item comes again).
    pub async fn check_handled(
        &self,
        delivered: &pb::DeliveredEnvelope,
    ) -> Result<crate::record::HandledElsewhere, ClientError> {
        let h = delivered.handled.clone().unwrap_or_default();
        let env = delivered.envelope.clone().unwrap_or_default();
        let rejected = h.state == pb::DeliveryState::Rejected as i32;
        let mut out = crate::record::HandledElsewhere {
            at: crate::times::rfc3339(h.time.as_ref()),
            device: crate::text::printable_line(&h.device),
            key: None,
            log_index: h.log_index,
            problem: None,
            reason: rejected.then(|| {
                pb::RejectionReason::try_from(h.rejection_reason)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("REJECTION_REASON_")
                    .to_owned()
            }),
            state: if rejected { "rejected" } else { "acknowledged" }.to_owned(),
            verified: false,
        };
        if let Some(problem) = handled_out_of_order(delivered) {
            out.problem = Some(problem);
            return Ok(out);
        }
        if rejected {
            out.problem = Some("a rejection carries no signature".into());
            return Ok(out);
        }
        if h.state != pb::DeliveryState::Acknowledged as i32 {
            out.problem = Some(format!("the relay names state {} for it", h.state));
            return Ok(out);
        }
        let at_ack = pb::DeliveredEnvelope {
            accepted_at: h.time,
            log_index: h.log_index,
            ..Default::default()
        };
        let keys = match self.key_history(self.principal(), &at_ack).await {
            Ok(keys) => keys,
            Err(e) if !e.is_per_message() => return Err(e),
            Err(e) => {
                out.problem = Some(format!("this principal's keys could not be fetched ({e})"));
                return Ok(out);
            }
        };
        let Some(key) = keys.iter().find(|k| k.device_id == h.device) else {
            out.problem = Some(format!(
                "{} has no key of device {:?} that verifies against the CA",
                self.principal(),
                out.device
            ));
            return Ok(out);
        };
        if crate::ack::signature_verifies(
            key,
            &env.message_id,
            &env.ciphertext_sha256,
            &h.ack_signature,
        ) {
            out.verified = true;
            out.key = Some(key.fingerprint.clone());
        } else {
            out.problem = Some(format!(
                "the signature does NOT verify with the key of device {} (fingerprint {})",
                key.device_id, key.fingerprint
            ));
        }
        Ok(out)
    }

    /// Tells the relay this desk is done with the envelope item `seq`, which another desk
    /// handled or which was sealed before this desk (`done_seq`). An item already gone
    /// (every desk done, or a retry) is fine.
    pub async fn done_item(&self, seq: u64) -> Result<(), ClientError> {
        match self
            .connection()
            .mailbox()
            .ack(pb::AckRequest {
                device_id: self.keys().device_id().to_owned(),
                target: Some(pb::ack_request::Target::DoneSeq(seq)),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s.into()),
        }
    }

    /// A message that could not be opened now, for a reason of its own (its sender's keys
    /// could not be fetched): one more try recorded and the next one scheduled; after the
    /// configured number of tries, rejected so that its sender sees it was not taken in.
    async fn defer(
        &self,
        delivered: pb::DeliveredEnvelope,
        before: Option<crate::state::Retry>,
        error: &ClientError,
    ) -> Result<Received, ClientError> {
        let env = delivered.envelope.clone().unwrap_or_default();
        let id = MessageId::from_slice(&env.message_id)
            .map_or_else(|_| hex::encode(&env.message_id), |m| m.to_string());
        let attempts = before.map_or(0, |r| r.attempts).saturating_add(1);
        // What the log, the person and (on rejection) the sender see: the kind of failure,
        // never anything of the message's content.
        let what = match error {
            ClientError::Relay(s) => {
                format!("the sender's keys could not be fetched ({:?})", s.code())
            }
            other => format!("the sender's keys could not be checked ({other})"),
        };
        if attempts >= self.receive_config().max_attempts.max(1) {
            let rejected = Rejected::new(
                pb::RejectionReason::UntrustedSenderKey,
                format!("not processed after {attempts} tries: {what}"),
            );
            tracing::warn!(message_id = %id, from = %delivered.sender, attempts, error = %what, "message could not be processed; rejected");
            self.reject(&env, &rejected).await?;
            self.state().remove_retry(&env.message_id)?;
            return Ok(Received::Rejected {
                delivered,
                rejected,
            });
        }
        let delay = self.receive_config().delay(attempts);
        let retry = crate::state::Retry {
            attempts,
            next_at_ms: unix_ms(self.now()).saturating_add(delay.as_millis() as u64),
            sender: delivered.sender.clone(),
            error: what,
        };
        self.state().put_retry(&env.message_id, &retry)?;
        tracing::warn!(message_id = %id, from = %delivered.sender, attempt = attempts, max_attempts = self.receive_config().max_attempts, retry_in_s = delay.as_secs_f32(), error = %retry.error, "message could not be processed now; skipped, will retry");
        Ok(Received::Deferred {
            delivered,
            retry,
            tried: true,
        })
    }

    /// When the earliest deferred message due later than `after` is due for another try (by
    /// the client's clock), if any.
    pub fn next_retry_after(&self, after: SystemTime) -> Result<Option<SystemTime>, ClientError> {
        let after = unix_ms(after);
        Ok(self
            .state()
            .retries()?
            .iter()
            .map(|(_, r)| r.next_at_ms)
            .filter(|&t| t > after)
            .min()
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)))
    }

    /// Confirms that the status item with mailbox `seq` was processed (the relay removes it).
    pub async fn ack_status(&self, seq: u64) -> Result<(), ClientError> {
        self.connection()
            .mailbox()
            .ack(pb::AckRequest {
                device_id: self.keys().device_id().to_owned(),
                target: Some(pb::ack_request::Target::StatusSeq(seq)),
            })
            .await?;
        Ok(())
    }

    /// Acknowledges a delivered envelope that was opened and stored earlier (the inbox keeps
    /// messages unacknowledged until a person acknowledges them). Returns the relay's answer;
    /// [`decided_elsewhere`] tells whether another desk's answer came first.
    pub async fn acknowledge_stored(
        &self,
        message_id: &[u8],
        digest: &[u8],
    ) -> Result<pb::AckResponse, ClientError> {
        // Acknowledged first: if that fails, the message stays "new" everywhere; a crash after
        // it leaves the kept copy, which later syncs recognise without opening it again.
        let answer = self
            .acknowledge(&pb::Envelope {
                message_id: message_id.to_vec(),
                ciphertext_sha256: digest.to_vec(),
                ..Default::default()
            })
            .await?;
        self.state().mark_seen(message_id, digest)?;
        Ok(answer)
    }

    /// The other desk the relay says decided a copy this desk just answered, if it was not
    /// this one (`AckResponse.decided_by`): the relay's claim, not yet checked. It is checked
    /// when the item comes again with the signed acknowledgement (the next sync; the relay
    /// keeps it for this desk).
    pub fn decided_elsewhere(&self, answer: &pb::AckResponse) -> Option<String> {
        (!answer.decided_by.is_empty() && answer.decided_by != self.keys().device_id())
            .then(|| answer.decided_by.clone())
    }

    async fn acknowledge(&self, env: &pb::Envelope) -> Result<pb::AckResponse, ClientError> {
        let signature = sign_ack(self.keys(), &env.message_id, &env.ciphertext_sha256);
        Ok(self
            .connection()
            .mailbox()
            .ack(pb::AckRequest {
                device_id: self.keys().device_id().to_owned(),
                target: Some(pb::ack_request::Target::Acknowledge(pb::Acknowledgement {
                    message_id: env.message_id.clone(),
                    ciphertext_sha256: env.ciphertext_sha256.clone(),
                    signature: signature.to_vec(),
                    signer_key: self.keys().device_id().to_owned(),
                })),
            })
            .await?
            .into_inner())
    }

    async fn reject(&self, env: &pb::Envelope, rejected: &Rejected) -> Result<(), ClientError> {
        tracing::warn!(message_id = %hex::encode(&env.message_id), reason = rejected.reason.as_str_name(), detail = %rejected.detail, "message rejected");
        self.connection()
            .mailbox()
            .ack(pb::AckRequest {
                device_id: self.keys().device_id().to_owned(),
                target: Some(pb::ack_request::Target::Reject(pb::Rejection {
                    message_id: env.message_id.clone(),
                    reason: rejected.reason.into(),
                    detail: rejected.detail.chars().take(500).collect(),
                })),
            })
            .await?;
        Ok(())
    }
}

/// The relay chooses the log index and time a handled claim's key is looked up at
/// (`DeliveredEnvelope.handled`): a decision cannot come before the message was accepted (its
/// index after the message's, its time not before the acceptance), so a claim that says so is
/// not believed (the reason why), whatever its signature.
pub fn handled_out_of_order(delivered: &pb::DeliveredEnvelope) -> Option<String> {
    let h = delivered.handled.as_ref()?;
    let accepted = delivered.accepted_at.map_or(i64::MIN, |t| t.seconds);
    let at = h.time.map_or(i64::MIN, |t| t.seconds);
    if h.log_index <= delivered.log_index {
        return Some(format!(
            "the relay dates the decision before the message (log index {} not after the message's {})",
            h.log_index, delivered.log_index
        ));
    }
    if h.time.is_none() || at < accepted {
        return Some("the relay dates the decision before the message was accepted".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn delivered(
        index: u64,
        at: i64,
        handled_index: u64,
        handled_at: i64,
    ) -> pb::DeliveredEnvelope {
        pb::DeliveredEnvelope {
            log_index: index,
            accepted_at: Some(Timestamp {
                seconds: at,
                nanos: 0,
            }),
            handled: Some(pb::Handled {
                device: "desk1".into(),
                time: Some(Timestamp {
                    seconds: handled_at,
                    nanos: 0,
                }),
                state: pb::DeliveryState::Acknowledged.into(),
                log_index: handled_index,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_handled_claim_dated_before_the_message_is_not_believed() {
        assert_eq!(handled_out_of_order(&delivered(10, 1000, 12, 1000)), None);
        assert_eq!(handled_out_of_order(&delivered(10, 1000, 11, 1500)), None);
        // Below or at the message's index (a key bundle of the past chosen by the relay).
        let p = handled_out_of_order(&delivered(10, 1000, 3, 1500)).unwrap();
        assert!(p.contains("log index 3"), "{p}");
        assert!(handled_out_of_order(&delivered(10, 1000, 10, 1500)).is_some());
        // Before the acceptance, or no time at all.
        assert!(handled_out_of_order(&delivered(10, 1000, 12, 999)).is_some());
        let mut d = delivered(10, 1000, 12, 1500);
        d.handled.as_mut().unwrap().time = None;
        assert!(handled_out_of_order(&d).is_some());
        // No claim: nothing to say.
        d.handled = None;
        assert_eq!(handled_out_of_order(&d), None);
    }
}
