# Silta: what people read, in English (the fallback for every message).
# Every message here must also be in ../fi/silta.ftl and ../sv/silta.ftl (a test checks it).
# Values in { $braces } come from the program; they are made printable before they are put in.

## Prefixes of what the program says on stderr.

prefix-error = error:
prefix-hint = hint:
prefix-warning = warning:

## Help (`silta --help` and each command's about line).

help-about =
    silta: send and receive end-to-end encrypted referrals about possible victims of human
    trafficking, between reception centres and Finland's Assistance System. The relay in between
    keeps only ciphertext and a delivery log that auditors verify.

    Centres run `silta daemon` (forms dropped into outbox/, messages written to inbox/); the
    Assistance System reads with `silta inbox` and answers with the reply commands; auditors check
    the delivery log with `silta audit`.
help-exit-codes =
    Exit codes:
      0   done
      1   failed (the relay refused, a message was rejected, a receipt did not check out, ...)
      2   the delivery log did NOT verify (audit verify): keep everything as it is and report it
      64  usage or configuration error (a flag, the configuration file, a missing file)
      65  invalid form: nothing was sent (the message names the field and why)
      69  the relay is unreachable, or its answer was lost (connection broken, timed out):
          running the same command again sends the same message (the daemon retries by itself)
      77  the relay rejected this installation's certificate (revoked, expired, not yet valid,
          another CA, wrong role): ask the administrator for a valid one

    Start with `silta init --role centre|assistance|auditor`, or try everything with `silta demo`.
help-arg-config = Client configuration file.
help-arg-lang = The language of what is shown: fi, sv or en (default: from LC_ALL, LC_MESSAGES or LANG; English if they name none of these).
help-arg-help = Print help
help-arg-version = Print version
help-arg-inbox-purpose = Why you are reading (recorded in the access log): for the case(s) of this command only, remembered for that case for 8 hours; asked per case if not given. Listing and syncing use a general purpose. $SILTA_PURPOSE applies to this one command
help-arg-inbox-sync-wait = Stop after this many seconds without a new item
help-arg-inbox-list-new = Only messages not acknowledged yet
help-arg-inbox-list-offline = Do not fetch first
help-arg-inbox-list-wait = Seconds to wait for new items when fetching
help-arg-inbox-list-json = JSON output
help-arg-inbox-show-id = The message
help-arg-inbox-show-json = JSON output
help-arg-inbox-show-format = A page to read or print: text, or html (one self-contained file with a print stylesheet). Default: the terminal view
help-arg-inbox-thread-case = The case reference
help-arg-inbox-thread-json = JSON output
help-arg-inbox-ack-ids = Message ids (or unique prefixes)
help-arg-inbox-access-report-case = The case reference
help-arg-inbox-access-report-json = JSON output
help-arg-referral-interpreter_language = Ask for an interpreter for the referral conversation: the language's ISO 639 code (`silta languages` lists them), e.g. prs for Dari
help-arg-referral-interpreter_dialect = The interpreter's dialect, if it matters
help-arg-referral-interpreter_note = A note about the interpreter (e.g. "female interpreter", "not from the same community")
help-heading-usage = Usage:
help-heading-commands = Commands
help-heading-options = Options
help-heading-arguments = Arguments
help-cmd-init = Set up this installation: write the configuration, create and publish device keys, and check the connection end to end
help-cmd-daemon = Run the centre daemon: send forms dropped into outbox/, receive into inbox/ (see the [daemon] section of the configuration). Stops cleanly on SIGTERM or Ctrl-C
help-cmd-inbox = The inbox: fetch, list, read and acknowledge messages; the access report
help-cmd-inbox-sync = Fetch, open and verify what is waiting (kept unacknowledged until `inbox ack`)
help-cmd-inbox-list = Received messages: case, kind, from, urgency, received, state; most urgent first
help-cmd-inbox-show = Show a message (id or a unique prefix of at least 8 characters)
help-cmd-inbox-thread = A case's messages in order, both directions
help-cmd-inbox-ack = Acknowledge messages: the sender sees that the Assistance System took them in
help-cmd-inbox-access-report = Who opened a case's messages, when, and why (from this installation's access log)
help-cmd-case = Case references (issued by the Assistance System)
help-cmd-case-new = Issue a new case reference (random, never derived from a name or number)
help-cmd-case-list = The case references issued here, or learned from a message, with who holds each
help-cmd-case-close = Close a case here: its messages (plaintext, kept sealed copies) are deleted from this installation after `[retention] closed_case_days` (see README, Retention). Logged
help-cmd-case-reopen = Reopen a case closed by mistake; messages already deleted stay deleted. Logged
help-cmd-request-info = Ask a centre for information about a case (Assistance System)
help-cmd-decision = Tell the referring centre the admission decision: yes or no, and dates only
help-cmd-meeting = Meetings: propose, confirm, cancel, reply
help-cmd-meeting-propose = Propose meeting slots
help-cmd-meeting-confirm = Confirm a slot
help-cmd-meeting-cancel = Cancel a meeting
help-cmd-meeting-reply = Answer a proposal: accept a slot, decline, or counter-propose
help-cmd-assessment = The joint assessment's shared parts (Assistance System)
help-cmd-agreement = The service agreement: who does what
help-cmd-consultation = An anonymous consultation (centre): no identifying data
help-cmd-referral = A written referral with the person's consent (centre; give the form with --form)
help-cmd-info-response = Answer an information request (centre)
help-cmd-demo = Play a whole case on a temporary relay with the development PKI, then verify the delivery log and print the story and the audit trail
help-cmd-purge = Delete the copies the retention rules say are due, and list them (never content)
help-cmd-resend = Re-send a message sent from here to the recipients who could not open it
help-cmd-languages = The language codes (ISO 639) that language fields take, with their names
help-cmd-keys = Device keys
help-cmd-keys-init = Create this device's keys (age identity and Ed25519 key, mode 0600; never overwritten)
help-cmd-keys-show = Print this device's public keys and the fingerprint to compare by phone
help-cmd-keys-rotate = Make new keys for this device and publish them under the same device id. The old identity is kept (STATE_DIR/keys/retired/, 0600) so messages sealed to it still open, and deleted by the retention sweep after retention.retired_key_days. Safe to run again after a failure: it goes on where it stopped. Stop the daemon first
help-cmd-keys-publish = Publish this device's key bundle to the relay's directory
help-cmd-keys-get = Print the verified keys of a principal (<role>/<id>)
help-cmd-admin = The relay's administration (role admin): principals, expiry, disabling, retiring devices
help-cmd-admin-principals = List the principals the relay knows: first and last seen, certificate, devices, pending messages and quota use
help-cmd-admin-expiring = List the certificates (principals', the relay's, the CA) and CRLs that expire soon
help-cmd-admin-disable = Disable a principal: its requests are refused, its open streams end, sends to it are refused, and its pending messages are reported to their senders as undeliverable
help-cmd-admin-enable = Enable a disabled principal again (messages already reported undeliverable stay so)
help-cmd-admin-retire-devices = Retire devices of a principal (an operator handover, a lost machine): their keys leave the directory, and pending messages nobody left can read are reported undeliverable. The principal stays enabled: a new certificate can enrol and publish keys
help-cmd-send = Seal a form and send it
help-cmd-audit = The delivery log: verify, evidence, queries
help-cmd-audit-verify = Verify the whole delivery log against the relay's signed checkpoint and what was verified before; names the first bad index if anything was rewritten, removed, reordered or forked. Every acknowledgement's signature is checked against the recipient's key bundles, verified with the configured CA
help-cmd-audit-prove = Write offline evidence for a message: its events, inclusion proofs and a checkpoint
help-cmd-audit-check-evidence = Check an evidence file offline, with no relay
help-cmd-audit-report = Summary report per month: messages accepted, delivered, acknowledged, rejected, expired, and the time from acceptance to acknowledgement (median, p90, max), per kind and urgency
help-cmd-audit-query = Query the delivery log
help-cmd-receive = Receive, open, verify and acknowledge what is waiting; print or write each message
help-cmd-inbox-due = What is due: deadlines from the messages, and urgent messages waiting too long
help-cmd-case-claim = Take a case: every desk sees that you handle it
help-cmd-case-handover = Hand a case you hold to a colleague (their OS user name)
help-cmd-case-release = Let a case you hold go: nobody holds it afterwards
help-cmd-case-show = Who holds a case, and every claim, handover and release of it (as synced here)
help-cmd-consultation-reply = Answer an anonymous consultation (Assistance System): advice, refer or not, urgent or not
help-cmd-consent-record = A consent record on its own (centre): fresh consent, or a change of its scope
help-cmd-emergency-confirmation = Confirm services started after a phone referral (Assistance System); issues the case
help-cmd-status-update = A change in the case (both directions): moving, closing, security, missing, ...
help-cmd-case-transfer = Transfer the case to another centre (Assistance System)
help-cmd-consent-withdrawal = The person withdrew consent or narrowed its scope (both directions)
help-cmd-exit-notice = The client relationship ends (Assistance System): reason and date only
help-cmd-agreement-answer = Answer a version of the service agreement (centre): accept or counter-draft
help-arg-inbox-due-offline = Do not fetch first
help-arg-inbox-due-wait = Seconds to wait for new items when fetching
help-arg-inbox-due-json = JSON output
help-arg-inbox-access-report-data_subject = What the data subject is owed (GDPR Art. 15; 906/2019 s. 17): dates, purposes and desks of every access to the case's data, merged across every desk that shared its access log
help-arg-inbox-access-report-with_staff = With --data-subject: also name the staff (the controller's internal use; recorded in the access log)
help-arg-case-claim-case = The case reference (32 hex digits)
help-arg-case-claim-note = A short note (no client data), e.g. "calling the centre today"
help-arg-case-claim-force = Take it even though a colleague holds it (said in the claim's note and the access log)
help-arg-case-handover-case = The case reference (32 hex digits)
help-arg-case-handover-to = The colleague's user name (as the access log names them)
help-arg-case-handover-note = A short note (no client data), e.g. "on leave from Monday"
help-arg-case-handover-force = Hand it over although you do not hold it (said in the note and the access log)
help-arg-case-release-case = The case reference (32 hex digits)
help-arg-case-release-note = A short note (no client data)
help-arg-case-release-force = Release it although you do not hold it (said in the note and the access log)
help-arg-case-show-case = The case reference (32 hex digits)
help-arg-case-show-json = JSON output
help-arg-agreement-answer-accept = Accept the version answered
help-arg-agreement-answer-counter_draft = Propose changes: the draft is made of --service, --procedures and --review-date
help-arg-agreement-answer-note = A note

## Errors and hints.

hint-no-configuration = set this installation up with `silta init --role centre|assistance|auditor ...`, or pass --config FILE (or set SILTA_CONFIG); to try Silta first, run `silta demo`
hint-fix-form = nothing was sent; fix the form and try again
hint-fix-form-or-flags = nothing was sent; fix the form or flags and try again
err-cert-rejected = the relay rejected this installation's certificate: { $why }
hint-cert-rejected = ask your administrator for a valid certificate (silta-certs issue) and point `cert`/`key` in the configuration at it
err-relay-cert = the relay's certificate is not trusted: { $why }
hint-relay-cert = check `ca` and `relay` (or `server_name`) in the configuration
err-cert-no-longer = the relay no longer accepts this certificate: { $why }
hint-cert-no-longer = it was probably revoked; ask your administrator
cert-revoked = it has been REVOKED
cert-expired = it has EXPIRED or is NOT YET VALID (check this machine's clock too)
cert-other-ca = it was not issued by the relay's CA
cert-wrong-role = it is not a Silta role certificate (wrong role, identity or key usage)
cert-none-sent = no certificate was sent
cert-tls-alert = TLS alert { $alert }
err-unreachable = cannot reach the relay: { $why }
hint-unreachable = is the relay running, and is `relay` in the configuration right? (`silta daemon` retries by itself)
err-unavailable = the relay is unavailable: { $why }
hint-try-again-shortly = try again shortly
err-no-answer = no answer from the relay: { $why }
hint-no-device-keys = create and publish keys with `silta init` (or `silta keys init` then `silta keys publish`)
err-no-recipient-keys = { $principal } has not published keys, so nothing can be sealed for it
hint-no-recipient-keys = { $principal } must run `silta init` (or `silta keys publish`) first
err-not-found = the relay does not know it: { $why }
hint-not-found = check the recipient (<role>/<id>) or the message id
err-permission-denied = the relay refused: { $why }
hint-permission-denied = your role may not do this; see the README's "who may send what"
form-unknown-language = { $field }: { $code } is not an ISO 639 language code Silta knows
form-unknown-language-hint = write the language's ISO 639 code (639-1 where one exists, e.g. ar, fa, so; else 639-3, e.g. prs for Dari, ckb for Central Kurdish); `silta languages` lists them
case-none-refused = case: give a case reference (32 hex digits); messages without a case ("none") belong to no one case: `silta inbox list` shows them, `silta inbox show ID` opens one
cmd-written-referral-deadline-required = --written-referral-deadline YYYY-MM-DD is required
cmd-deadline-past = { $flag } { $date } is in the past (today is { $today })
cmd-receiving-centre-required = --receiving-centre centre/<id> is required
cmd-date-format = { $flag } { $value }: write a date YYYY-MM-DD
cmd-date-future = { $flag } { $date } is after today ({ $today }): give the date it happened
cmd-consultation-reply-case = a consultation reply carries no case reference: the consultation stays unlinked to the case (the referral that may follow starts it)
cmd-received-how = --received-how { $value }: oral or written
cmd-answer-reply-to-required = --reply-to <the service agreement version answered> is required
cmd-answer-reply-to-version = --reply-to <the version answered> is required
cmd-answer-accept-with-draft = --service, --procedures and --review-date make a counter-draft: give --counter-draft, not --accept
cmd-answer-how = say how you answer: --accept, or --counter-draft with the changes (--service, --procedures, --review-date)
cmd-supersedes-not-version = --supersedes { $id }: not a service agreement version in this case
cmd-reply-to-not-agreement = --reply-to { $id }: a message of kind { $kind } is not a service agreement version; answer the agreement
cmd-case-issued = new case reference { $case } issued for this emergency referral

## The inbox.

inbox-purpose-prompt = Purpose of this session (listing, fetching) (recorded in the access log):
inbox-purpose-missing = the access log needs the purpose of this session (listing, fetching)
inbox-purpose-hint = add --purpose "..." (remembered for 8 hours) or set SILTA_PURPOSE
inbox-purpose-prompt-case = Purpose of your access to case { $case } (recorded in the access log):
inbox-purpose-missing-case = the access log needs the purpose of your access to case { $case }
inbox-purpose-hint-case = add --purpose "..." (for this case only; remembered for it for 8 hours) or set SILTA_PURPOSE
inbox-purpose-prompt-message = Purpose of your access to message { $message } (it has no case; recorded in the access log):
inbox-purpose-missing-message = the access log needs the purpose of your access to message { $message } (it has no case)
inbox-purpose-hint-message = add --purpose "..." (for this message only; remembered for it for 8 hours) or set SILTA_PURPOSE
inbox-no-messages = no messages
inbox-no-case-messages = no messages of case { $case } here
inbox-thread-header = case { $case } — { $count ->
        [one] 1 message
       *[other] { $count } messages
    }
inbox-new-messages = { $count ->
        [one] 1 new message
       *[other] { $count } new messages
    }
inbox-rejected = rejected a message { $detail }
inbox-deferred = could not process a message now (left for a later sync; the others were not held up) { $detail }
inbox-acked = acknowledged { $kind } { $id } from { $from } (the sender sees it)
inbox-ack-expired = NOT acknowledged: { $kind } { $id } from { $from } expired at the relay before it was acknowledged. The sender was told it EXPIRED and may send it again: call or answer { $from } so they know it arrived here. (Marked expired-at-relay; retention deletes it by its rules.)
inbox-ack-expired-summary = { $count ->
        [one] 1 message expired at the relay and cannot be acknowledged: { $ids }
       *[other] { $count } messages expired at the relay and cannot be acknowledged: { $ids }
    }
inbox-id-too-short = { $id }: give at least 8 characters of the message id
inbox-no-such-message = no message { $id } here (run `silta inbox list`)
inbox-id-ambiguous = { $id } matches { $count } messages; give more of the id
case-not-hex = { $case }: expected 32 hex digits or "none"
case-wrong-length = { $case }: expected 32 hex digits (16 bytes)
case-new-not-assistance = case references are issued by the Assistance System; { $principal } uses the one it was given
case-new-issued = new case reference issued; use it with --case (it says nothing about the person)
col-issued = issued (UTC)
col-by = by
col-held-by = held by
col-label = label
col-id = id
col-case = case
col-kind = kind
col-from = from
col-urgency = urgency
col-received = received (UTC)
col-state = state
col-code = code
col-language = language
case-none = (none)
record-state-new = new
record-state-acknowledged = acknowledged
record-state-sent = sent
record-state-expired-at-relay = expired at the relay
value-yes = yes
value-no = no

## One message (`inbox show`, `inbox thread`).

show-received = received
show-sent = sent
show-from = from
show-to = to
show-case = case
show-case-none = (none yet)
show-urgency = urgency
show-legal-basis = legal basis
show-in-reply-to = in reply to
show-written = written
show-written-accepted = { $written }    accepted by the relay: { $accepted } (log index { $index })
show-state = state
show-acked-by = by { $who } at { $time }
show-handled = handled
show-signed-by = signed by
show-signed-by-device = { $from } device { $device } (key { $key })
show-resends = re-sends
show-resent-as = re-sent as { $id } at { $time }
show-interpreter-needed = INTERPRETER NEEDED: { $language }
show-interpreter-dialect = dialect: { $value }
show-interpreter-note = note: { $value }

## The printable page (`inbox show --format text|html`).

page-title = { $kind } — Silta
page-kind = Kind
page-message-id = Message id
page-case = Case
page-from = From
page-to = To
page-written = Written
page-urgency = Urgency
page-legal-basis = Legal basis
page-in-reply-to = In reply to
page-state = State
page-from-device = Sender's device
page-accepted = Accepted by the relay
page-accepted-at = { $time } (log index { $index })
page-received = Received
page-acknowledged = Acknowledged
page-content = Content
page-handled = Handled at another desk
page-handled-by = handled by { $device } at { $time }
page-rejected-by = rejected by { $device } at { $time } ({ $reason })
page-handled-verified = signature verified
page-handled-unverified = handled-claim UNVERIFIED: { $problem }
page-sealed-before = Sealed before this desk's keys were published: the content cannot be opened here; open it at another desk.
page-footer = Printed by { $who } at { $time } (UTC). Confidential: contains personal data of a possible victim of human trafficking. Keep it locked away and destroy it when it is no longer needed.

## The access report (`inbox access-report`).

access-report-header = Access to case { $case } recorded by { $principal } ({ $path })
access-report-footer = { $count ->
        [one] 1 entry; the log's hash chain is intact.
       *[other] { $count } entries; the log's hash chain is intact.
    }
access-note-case-only = note: only entries recorded under the case are shown ({ $error })
access-note-torn = note: line(s) { $lines } of the log are writes cut short (a crash or power loss); they hold no entry
access-log-damaged = ACCESS LOG DAMAGED: { $error }
access-log-damaged-hint = keep the file as it is and report this
access-n-messages = { $count } messages
access-purpose-to = { $purpose } (to { $recipients })
col-when = when (UTC)
col-who = who
col-what = what
col-messages = messages
col-purpose = purpose

## Case claims (`case claim|handover|release|show`, the held-by column), `inbox due`, the data
## subject's access report (`inbox access-report CASE --data-subject`).

claim-holder-at-desk = { $person } (desk { $desk })
claim-nobody = nobody
claim-held-since = { $person } since { $since }
claim-to-invalid = --to: the colleague's user name, as the access log names them (no spaces)
claim-case-missing = case: give a case reference (32 hex digits)
claim-refused = case { $case } is held by { $holder } (as synced here), not by you ({ $user })
claim-refused-hint = run `silta inbox sync` for the latest claims; add --force to do it anyway (the claim's note and the access log say it was forced)
claim-done-claim = you ({ $person }) hold case { $case } at desk { $desk }
claim-done-handover = case { $case } handed over to { $to }
claim-done-release = case { $case } released: nobody holds it
claim-sent = { $done } (claim { $id } accepted at log index { $index }; the other desks see it at their next sync)
claim-show-case = case { $case }
claim-show-held-by = held by: { $person } since { $since }
claim-show-held-by-desk = held by: { $person } at desk { $desk } since { $since }
claim-show-held-by-nobody = held by: nobody
claim-show-none = (no claims synced here; `silta inbox sync` fetches the other desks' claims)
claim-line-claim = claimed by { $holder }
claim-line-handover = handed over by { $holder } to { $to }
claim-line-release = released by { $holder }
claim-line-none = a claim without an action by { $holder }
claim-line = { $what } at desk { $desk } ({ $at })
claim-line-note = { $what } at desk { $desk } ({ $at }): { $note }
sync-shared = shared { $entries } access-log entries with the other desks ({ $messages } message(s))
sync-share-failed = could not share this desk's access log (tried again at the next sync): { $why }
due-nothing = nothing due
due-overdue = OVERDUE
col-due = due
col-from-message = from message
due-what-information-response = information-response
due-what-written-referral = written-referral
due-what-agreement-review = agreement-review
due-what-meeting = meeting
due-what-acknowledgement = acknowledgement
ds-share-failed = note: this desk's latest entries could not be shared now: { $why }
ds-header =
    Access to the data of case { $case } at { $controller }: when, why, and at which desk
    (what the data subject is owed: GDPR Art. 15, Finnish 906/2019 s. 17)
col-desk = desk
col-message = message
col-staff = staff
ds-staff = { $user } (uid { $uid })
ds-staff-declared = { $user } (uid { $uid }; says: { $declared })
ds-covers-own = { $desk } (to { $until }, this desk's own log)
ds-covers = { $desk } (to { $until })
ds-footer = { $count ->
        [one] 1 entry. Covers desks: { $desks }.
       *[other] { $count } entries. Covers desks: { $desks }.
    }
ds-not-covered = Desks that never shared their access log of this case are not covered; `silta inbox sync` takes in the other desks' latest shares.
ds-staff-not-named = Staff are not named (--with-staff names them, for the controller's internal use).
access-action-received = received
access-action-listed = listed
access-action-shown = shown
access-action-thread = thread
access-action-disclosed = disclosed
access-action-reported = reported
access-action-closed = closed
access-action-reopened = reopened
access-action-shared = shared
access-action-purged = purged
access-action-key-deleted = key-deleted

## The auditor's reports (`audit report`, `audit query`).

report-col-month = month
report-col-group = group
report-col-accepted = accepted
report-col-delivered = delivered
report-col-acknowledged = acknowledged
report-col-rejected = rejected
report-col-expired = expired
report-col-median = median
report-col-p90 = p90
report-col-max = max
report-group-all = all
report-group-kind = kind
report-group-urgency = urgency
report-footnote = median, p90, max: time from acceptance to acknowledgement per (message, recipient), nearest-rank percentiles.
report-unusable = { $count ->
        [one] 1 message event had no time, message id or recipient, or repeated an acceptance, and is not counted.
       *[other] { $count } message events had no time, message id or recipient, or repeated an acceptance, and are not counted.
    }
audit-col-index = index
audit-col-time = time (UTC)
audit-col-event = event
audit-col-actor = actor
audit-col-kind = kind
audit-col-message = message
audit-col-to = to
audit-col-detail = detail
audit-events-count = { $count ->
        [one] (1 event)
       *[other] ({ $count } events)
    }

## The configuration `silta init` writes (each line becomes a comment).

config-head =
    silta configuration for { $principal } (role { $role }), written by `silta init`.
    Use it with `silta --config { $config } ...` or SILTA_CONFIG={ $config }.
config-relay = The relay, host:port.
config-ca = The CA that issued the relay's and everyone's certificates.
config-cert = This installation's certificate and key (from `silta-certs issue`).
config-state-dir = Device keys (keys/, mode 0600), local state, the access log (access.log).
config-log-key = The delivery log's verifier key: every receipt is checked against it.
config-log-key-none =
    The delivery log's verifier key (`silta-relay log-key`, given out of band); with it
    every receipt is checked.
config-daemon-folder =
    outbox/ (forms to send), sent/ (with their delivery state), failed/ (with the reason),
    inbox/ (messages received).
config-daemon-scan = How often outbox/ is looked at, and how retries back off while the relay is away.
config-daemon-purpose = Recorded in the access log when the daemon opens received messages.
config-retention-closed =
    This installation's copies are transit copies (the case system of record keeps what the
    law says). Days after `silta case close CASE` before the case's messages are deleted here.
config-retention-uncased = Days after which a message with no case is deleted here.

## Enum values: the label of each value, under its protobuf name.

MESSAGE_KIND_UNSPECIFIED = Unspecified
MESSAGE_KIND_ANONYMOUS_CONSULTATION = Anonymous consultation
MESSAGE_KIND_CONSULTATION_REPLY = Consultation reply
MESSAGE_KIND_CONSENT_RECORD = Consent record
MESSAGE_KIND_REFERRAL = Referral
MESSAGE_KIND_EMERGENCY_REFERRAL_CONFIRMATION = Emergency referral confirmation
MESSAGE_KIND_INFORMATION_REQUEST = Information request
MESSAGE_KIND_INFORMATION_RESPONSE = Information response
MESSAGE_KIND_ADMISSION_DECISION_NOTICE = Admission decision notice
MESSAGE_KIND_MEETING_PROPOSAL = Meeting proposal
MESSAGE_KIND_MEETING_CONFIRMATION = Meeting confirmation
MESSAGE_KIND_MEETING_CANCELLATION = Meeting cancellation
MESSAGE_KIND_MEETING_REPLY = Meeting reply
MESSAGE_KIND_JOINT_ASSESSMENT_RECORD = Joint assessment record
MESSAGE_KIND_SERVICE_AGREEMENT = Service agreement
MESSAGE_KIND_STATUS_UPDATE = Status update
MESSAGE_KIND_CASE_TRANSFER = Case transfer
MESSAGE_KIND_CONSENT_WITHDRAWAL = Consent withdrawal
MESSAGE_KIND_EXIT_NOTICE = Exit notice
MESSAGE_KIND_SERVICE_AGREEMENT_ANSWER = Service agreement answer
MESSAGE_KIND_CASE_CLAIM = Case claim
MESSAGE_KIND_ACCESS_LOG_SHARE = Access log share

URGENCY_UNSPECIFIED = Unspecified
URGENCY_NORMAL = Normal
URGENCY_URGENT = Urgent
URGENCY_EMERGENCY = Emergency

LEGAL_BASIS_UNSPECIFIED = Unspecified
LEGAL_BASIS_CONSENT = Consent
LEGAL_BASIS_STATUTORY_INFORMATION_RIGHT = Statutory right to information
LEGAL_BASIS_CHILD_WELFARE_DUTY = Child welfare duty
LEGAL_BASIS_ACUTE_DANGER = Acute danger
LEGAL_BASIS_NO_PERSONAL_DATA = No personal data
LEGAL_BASIS_INTERNAL = Internal to the organisation

DELIVERY_STATE_UNSPECIFIED = Unspecified
DELIVERY_STATE_PENDING = Pending
DELIVERY_STATE_DELIVERED = Delivered
DELIVERY_STATE_ACKNOWLEDGED = Acknowledged
DELIVERY_STATE_REJECTED = Rejected
DELIVERY_STATE_EXPIRED = Expired
DELIVERY_STATE_UNDELIVERABLE = Undeliverable
DELIVERY_STATE_SENT = Sent
DELIVERY_STATE_ACKNOWLEDGEMENT_NOT_VERIFIED = Acknowledgement NOT verified

UNDELIVERABLE_REASON_UNSPECIFIED = Unspecified
UNDELIVERABLE_REASON_RECIPIENT_DISABLED = Recipient disabled
UNDELIVERABLE_REASON_DEVICES_RETIRED = Recipient's devices retired
UNDELIVERABLE_REASON_CASE_MOVED = Case moved to another centre

REJECTION_REASON_UNSPECIFIED = Unspecified
REJECTION_REASON_CANNOT_DECRYPT = Cannot decrypt
REJECTION_REASON_BAD_SIGNATURE = Bad signature
REJECTION_REASON_ENVELOPE_MISMATCH = Envelope does not match the signed content
REJECTION_REASON_REPLAY = Replayed message
REJECTION_REASON_MISROUTED = Misrouted
REJECTION_REASON_MALFORMED_PAYLOAD = Malformed content
REJECTION_REASON_UNTRUSTED_SENDER_KEY = Untrusted sender key
REJECTION_REASON_OTHER = Other

PURPOSE_CODE_UNSPECIFIED = Unspecified
PURPOSE_CODE_SUPERVISION = Supervision
PURPOSE_CODE_DATA_SUBJECT_REQUEST = Data subject request
PURPOSE_CODE_INCIDENT = Incident
PURPOSE_CODE_DELIVERY_CHECK = Delivery check
PURPOSE_CODE_LOG_VERIFICATION = Log verification
PURPOSE_CODE_REPORTING = Reporting
PURPOSE_CODE_LEGAL_REQUEST = Legal request

AGE_GROUP_UNSPECIFIED = Not stated
AGE_GROUP_ADULT = Adult
AGE_GROUP_CHILD_UNDER_15 = Child under 15
AGE_GROUP_CHILD_15_TO_17 = Child aged 15–17

EXPLOITATION_TYPE_UNSPECIFIED = Not stated
EXPLOITATION_TYPE_SEXUAL = Sexual exploitation
EXPLOITATION_TYPE_FORCED_LABOUR = Forced labour
EXPLOITATION_TYPE_FORCED_MARRIAGE = Forced marriage
EXPLOITATION_TYPE_FORCED_CRIMINALITY = Forced criminality
EXPLOITATION_TYPE_ORGAN_REMOVAL = Organ removal
EXPLOITATION_TYPE_OTHER = Other

EXPLOITATION_PLACE_UNSPECIFIED = Not stated
EXPLOITATION_PLACE_FINLAND = In Finland
EXPLOITATION_PLACE_ABROAD = Abroad
EXPLOITATION_PLACE_IN_TRANSIT = In transit

CENTRE_TYPE_UNSPECIFIED = Not stated
CENTRE_TYPE_ADULT = Reception centre for adults
CENTRE_TYPE_MINOR_UNIT = Unit for unaccompanied minors

ADMISSION_OUTCOME_UNSPECIFIED = Not stated
ADMISSION_OUTCOME_ADMITTED = Admitted
ADMISSION_OUTCOME_NOT_ADMITTED = Not admitted

MEETING_ANSWER_UNSPECIFIED = Not stated
MEETING_ANSWER_ACCEPT = Accepted
MEETING_ANSWER_DECLINE = Declined
MEETING_ANSWER_COUNTER_PROPOSAL = Counter-proposal

THREAT_LEVEL_UNSPECIFIED = Not stated
THREAT_LEVEL_NONE = None
THREAT_LEVEL_LOW = Low
THREAT_LEVEL_MODERATE = Moderate
THREAT_LEVEL_HIGH = High

CRIMINAL_CASE_STATUS_UNSPECIFIED = Not stated
CRIMINAL_CASE_STATUS_NONE = None
CRIMINAL_CASE_STATUS_REPORT_FILED = Report filed
CRIMINAL_CASE_STATUS_PRE_TRIAL_INVESTIGATION = Pre-trial investigation
CRIMINAL_CASE_STATUS_COURT = In court

SUPPORT_PERSON_NEED_UNSPECIFIED = Not stated
SUPPORT_PERSON_NEED_YES = Needed
SUPPORT_PERSON_NEED_NO = Not needed
SUPPORT_PERSON_NEED_ARRANGED = Arranged

RESPONSIBLE_PARTY_UNSPECIFIED = Not stated
RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM = Assistance System
RESPONSIBLE_PARTY_CENTRE = Reception centre
RESPONSIBLE_PARTY_MUNICIPALITY = Municipality
RESPONSIBLE_PARTY_OTHER = Other

AGREEMENT_STATUS_UNSPECIFIED = Not stated
AGREEMENT_STATUS_DRAFT = Draft
AGREEMENT_STATUS_AGREED = Agreed
AGREEMENT_STATUS_SUPERSEDED = Superseded

AGREEMENT_ANSWER_UNSPECIFIED = Not stated
AGREEMENT_ANSWER_ACCEPT = Accepted
AGREEMENT_ANSWER_COUNTER_DRAFT = Counter-draft

CHANGE_KIND_UNSPECIFIED = Not stated
CHANGE_KIND_CLIENT_MOVING = Client moving
CHANGE_KIND_CENTRE_CLOSING = Centre closing
CHANGE_KIND_OPERATOR_CHANGE = Change of operator
CHANGE_KIND_SECURITY_SITUATION = Security situation
CHANGE_KIND_ASYLUM_STATUS = Asylum status
CHANGE_KIND_HOSPITALISATION = Hospitalisation
CHANGE_KIND_CLIENT_MISSING = Client missing
CHANGE_KIND_REPRESENTATIVE_CHANGE = Change of representative
CHANGE_KIND_OTHER = Other

EXIT_REASON_UNSPECIFIED = Not stated
EXIT_REASON_LEFT_VOLUNTARILY = Left voluntarily
EXIT_REASON_REMOVED_BY_DECISION = Removed by decision

CLAIM_ACTION_UNSPECIFIED = Not stated
CLAIM_ACTION_CLAIM = Claimed
CLAIM_ACTION_HANDOVER = Handed over
CLAIM_ACTION_RELEASE = Released

## Payload fields: field-<name as in the schema and the forms>.

field-accepted_slot = Accepted slot
field-access_log_share = Access log share
field-account = Account of events
field-action = Action
field-actions_required = Actions required
field-admission_decision_notice = Admission decision notice
field-advice = Advice
field-age_group = Age group
field-agreement = Agreement
field-anonymous_consultation = Anonymous consultation
field-answer = Answer
field-answers = Answers
field-attachments = Attachments
field-case_claim = Case claim
field-case_ref = Case reference
field-case_transfer = Case transfer
field-centre_actions = Centre's actions
field-centre_client_id = Centre's client number
field-centre_type = Type of centre
field-change = Change
field-child_consented = Child consented
field-children = Children
field-client_attends = Client attends
field-client_consented = Client consented
field-client_informed = Client informed
field-client_view = Client's own view
field-consent = Consent
field-consent_record = Consent record
field-consent_withdrawal = Consent withdrawal
field-consultation_reply = Consultation reply
field-contact = Contact
field-contact_details = Contact details
field-contact_person = Contact the person
field-contact_referrer = Contact the referrer
field-contact_role = Contact (role)
field-counsel = Legal counsel
field-counter_draft = Counter-draft
field-counter_slots = Counter-proposed slots
field-covers_until = Covers until
field-created_at = Written
field-criminal_case = Criminal case
field-current_address = Current address
field-date = Date
field-date_of_birth = Date of birth
field-deadline = Deadline
field-decision_date = Decision date
field-declared_user = Declared user
field-declined = Declined
field-description = Description
field-desk = Desk
field-dialect = Dialect
field-duration_minutes = Duration (minutes)
field-effective_date = Effective date
field-emergency_referral_confirmation = Emergency referral confirmation
field-entries = Entries
field-exit_notice = Exit notice
field-exploitation_place = Place of exploitation
field-exploitation_type = Type of exploitation
field-guardian_name = Guardian's or representative's name
field-guardian_role = Guardian's or representative's role
field-guardian_signed = Guardian or representative signed
field-handed_to = Handed to
field-handover = Handover
field-health_notes = Health notes
field-holder = Holder
field-holder_device = Holder's desk
field-in_reply_to = In reply to
field-indicators = Indicators
field-information_request = Information request
field-information_response = Information response
field-informed_about = Informed about
field-interim_measures = Interim measures
field-interpreter = Interpreter
field-interpreter_language = Interpreter language
field-interpreter_used = Interpreter used
field-item = Item
field-items = Items
field-joint_assessment_record = Joint assessment record
field-kind = Kind
field-language = Language
field-legal_basis = Legal basis
field-legal_basis_note = Legal basis (note)
field-locator = Locator
field-media_type = Media type
field-meeting_cancellation = Meeting cancellation
field-meeting_confirmation = Meeting confirmation
field-meeting_date = Meeting date
field-meeting_proposal = Meeting proposal
field-meeting_reply = Meeting reply
field-message_id = Message id
field-mother_tongue = Mother tongue
field-name = Name
field-nationality = Nationality
field-new_location = New location
field-not_held = Not held
field-note = Note
field-observations = Observations
field-old_centre_access_revoked = Old centre's access revoked
field-os_user = Operating system user
field-other_languages = Other languages
field-outcome = Outcome
field-overall_situation = Overall situation
field-participants = Participants
field-person = Person
field-person_name = Name
field-phone = Phone
field-place = Place
field-police_report = Police report
field-procedures = Procedures
field-proceed_to_referral = Proceed to a referral
field-purpose = Purpose
field-questions = Questions
field-reason = Reason
field-received_how = Received how
field-receiving_centre = Receiving centre
field-recovery_period_end = End of the recovery period
field-recovery_period_granted = Recovery period granted
field-referral = Referral
field-referrer = Referrer
field-remote_link = Remote meeting link
field-residence_status = Residence status
field-responsible = Responsible
field-review_date = Review date
field-risks_and_mitigations = Risks and mitigations
field-role = Role
field-safety_concerns = Safety concerns
field-safety_measures = Safety measures
field-safety_precautions = Safety precautions
field-scope = Scope
field-security_threat = Security threat
field-service = Service
field-service_agreement = Service agreement
field-service_agreement_answer = Service agreement answer
field-sha256 = SHA-256
field-shared_parts_note = Note on the shared parts
field-signed_document = Signed document
field-slot = Slot
field-slots = Slots
field-start = Start
field-start_date = Start date
field-status = Status
field-status_update = Status update
field-support_person = Support person in criminal proceedings
field-supersedes = Supersedes
field-time = Time
field-uid = User id (uid)
field-uma_number = UMA number
field-urgent = Urgent
field-version = Version
field-withdrawn = Withdrawn
field-written_referral_deadline = Written referral due by

## Languages (ISO 639): lang-<code>.

lang-am = Amharic
lang-ar = Arabic
lang-az = Azerbaijani
lang-be = Belarusian
lang-bg = Bulgarian
lang-bn = Bengali
lang-bs = Bosnian
lang-ckb = Central Kurdish (Sorani)
lang-cs = Czech
lang-da = Danish
lang-de = German
lang-el = Greek
lang-en = English
lang-es = Spanish
lang-et = Estonian
lang-fa = Persian (Farsi)
lang-fi = Finnish
lang-fr = French
lang-ha = Hausa
lang-he = Hebrew
lang-hi = Hindi
lang-hr = Croatian
lang-hu = Hungarian
lang-hy = Armenian
lang-id = Indonesian
lang-ig = Igbo
lang-it = Italian
lang-ja = Japanese
lang-ka = Georgian
lang-kk = Kazakh
lang-kmr = Northern Kurdish (Kurmanji)
lang-ko = Korean
lang-ku = Kurdish
lang-ky = Kyrgyz
lang-lt = Lithuanian
lang-lv = Latvian
lang-mk = Macedonian
lang-mn = Mongolian
lang-ms = Malay
lang-my = Burmese
lang-ne = Nepali
lang-nl = Dutch
lang-no = Norwegian
lang-pa = Punjabi
lang-pl = Polish
lang-prs = Dari
lang-ps = Pashto
lang-pt = Portuguese
lang-ro = Romanian
lang-ru = Russian
lang-se = Northern Sami
lang-sk = Slovak
lang-sl = Slovenian
lang-so = Somali
lang-sq = Albanian
lang-sr = Serbian
lang-sv = Swedish
lang-sw = Swahili
lang-ta = Tamil
lang-tg = Tajik
lang-th = Thai
lang-ti = Tigrinya
lang-tk = Turkmen
lang-tl = Tagalog
lang-tr = Turkish
lang-uk = Ukrainian
lang-ur = Urdu
lang-uz = Uzbek
lang-vi = Vietnamese
lang-wo = Wolof
lang-yo = Yoruba
lang-zh = Chinese
case-held-forced = [forced]
case-claim-forced = [FORCED: the case was held by { $holder }]
