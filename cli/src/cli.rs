//! Command-line definition of `silta`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use silta_client::i18n::{self, Lang};

/// Silta client: the centre daemon, the Assistance System's inbox, the auditor's tool.
///
/// `about` is set here, not taken from a crate description: the same main is
/// built as the system tests' `silta-under-test`, and the help must say what the program is for
/// (`long_about = None`: `-h` and `--help` print the same, options one per line).
#[derive(Parser)]
#[command(
    name = "silta",
    bin_name = "silta",
    version,
    about = ABOUT,
    long_about = None,
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    /// Client configuration file.
    #[arg(
        long,
        short,
        env = "SILTA_CONFIG",
        default_value = "silta.toml",
        global = true
    )]
    pub(crate) config: PathBuf,

    /// The language of what is shown: fi, sv or en (default: from LC_ALL, LC_MESSAGES or
    /// LANG; English if they name none of these).
    #[arg(long, global = true, value_parser = ["fi", "sv", "en"])]
    pub(crate) lang: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

const ABOUT: &str = "\
silta: send and receive end-to-end encrypted referrals about possible victims of human
trafficking, between reception centres and Finland's Assistance System. The relay in between
keeps only ciphertext and a delivery log that auditors verify.

Centres run `silta daemon` (forms dropped into outbox/, messages written to inbox/); the
Assistance System reads with `silta inbox` and answers with the reply commands; auditors check
the delivery log with `silta audit`.";

pub(crate) const EXIT_CODES: &str = "\
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

Start with `silta init --role centre|assistance|auditor`, or try everything with `silta demo`.";

/// `--lang X` or `--lang=X` anywhere on the command line (read before parsing, so the help is in
/// that language too); `None` if it is not given or not fi, sv or en.
pub(crate) fn lang_in_args(args: &[std::ffi::OsString]) -> Option<Lang> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == "--lang" {
            args.get(i + 1).and_then(|v| Lang::parse(v))
        } else {
            a.strip_prefix("--lang=").and_then(Lang::parse)
        }
    })
}

/// The command with its help in `lang`: the program's about and exit codes, every command's
/// about line (`help-cmd-<path>`), the global options, and the headings.
pub(crate) fn localised(cmd: clap::Command, lang: Lang) -> clap::Command {
    fn subcommands(cmd: clap::Command, path: &str, lang: Lang) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        names.into_iter().fold(cmd, |cmd, name| {
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}-{name}")
            };
            cmd.mut_subcommand(&name, |sub| {
                let id = format!("help-cmd-{path}");
                // English keeps clap's own help (the doc comments, with their long form).
                let sub = if lang != Lang::En && i18n::has(Lang::En, &id) {
                    sub.about(i18n::tr(lang, &id, &[])).long_about(None)
                } else {
                    sub
                };
                let sub = if lang == Lang::En {
                    sub
                } else {
                    // The flags that have a translation (`help-arg-<command path>-<flag id>`).
                    sub.mut_args(|a| {
                        let id = format!("help-arg-{path}-{}", a.get_id());
                        if i18n::has(Lang::En, &id) {
                            a.help(i18n::tr(lang, &id, &[])).long_help(None)
                        } else {
                            a
                        }
                    })
                };
                let sub = headings(sub, lang);
                subcommands(sub, &path, lang)
            })
        })
    }
    fn headings(cmd: clap::Command, lang: Lang) -> clap::Command {
        if lang == Lang::En {
            return cmd;
        }
        let options = leak(i18n::tr(lang, "help-heading-options", &[]));
        // clap adds its own -h/--help at build time, in English: ours instead.
        cmd.disable_help_flag(true)
            .arg(
                clap::Arg::new("help")
                    .short('h')
                    .long("help")
                    .action(clap::ArgAction::Help)
                    .help(i18n::tr(lang, "help-arg-help", &[]))
                    .help_heading(options),
            )
            .subcommand_help_heading(leak(i18n::tr(lang, "help-heading-commands", &[])))
            .help_template(format!(
                "{{before-help}}{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
                i18n::tr(lang, "help-heading-usage", &[])
            ))
            .mut_args(|a| {
                if a.is_positional() {
                    a.help_heading(leak(i18n::tr(lang, "help-heading-arguments", &[])))
                } else {
                    a.help_heading(options)
                }
            })
    }
    if lang == Lang::En {
        return cmd;
    }
    let cmd = cmd
        .disable_version_flag(true)
        .arg(
            clap::Arg::new("version")
                .short('V')
                .long("version")
                .action(clap::ArgAction::Version)
                .help(i18n::tr(lang, "help-arg-version", &[])),
        )
        .about(i18n::tr(lang, "help-about", &[]))
        .after_help(i18n::tr(lang, "help-exit-codes", &[]))
        .mut_arg("config", |a| a.help(i18n::tr(lang, "help-arg-config", &[])))
        .mut_arg("lang", |a| a.help(i18n::tr(lang, "help-arg-lang", &[])));
    let cmd = headings(cmd, lang);
    subcommands(cmd, "", lang)
}

/// A heading for clap, which takes only `&'static str` headings without its `string` feature: a
/// few short strings, made once when the program starts.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Set up this installation: write the configuration, create and publish device keys, and
    /// check the connection end to end.
    Init {
        /// centre, assistance or auditor (must match the certificate).
        #[arg(long)]
        role: String,
        /// The relay, host:port.
        #[arg(long)]
        relay: String,
        /// The CA certificate (PEM) that issued the relay's and everyone's certificates.
        #[arg(long)]
        ca: PathBuf,
        /// This installation's certificate (PEM), from `silta-certs issue`.
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where device keys and local state are kept.
        #[arg(long, default_value = "silta-state")]
        state_dir: PathBuf,
        /// Device name within the principal, e.g. server-1.
        #[arg(long, default_value = "default")]
        device: String,
        /// The centre daemon's folder (outbox/, sent/, failed/, inbox/).
        #[arg(long, default_value = "silta-folders")]
        folder: PathBuf,
        /// The delivery log's verifier key (`silta-relay log-key`), to check every receipt.
        #[arg(long)]
        log_key: Option<String>,
    },
    /// Run the centre daemon: send forms dropped into outbox/, receive into inbox/ (see the
    /// [daemon] section of the configuration). Stops cleanly on SIGTERM or Ctrl-C.
    Daemon,
    /// The inbox: fetch, list, read and acknowledge messages; the access report.
    Inbox {
        /// Why you are reading (recorded in the access log): for the case(s) of this command
        /// only, remembered for that case for 8 hours; asked per case if not given. Listing and
        /// syncing use a general purpose. $SILTA_PURPOSE applies to this one command.
        #[arg(long, global = true)]
        purpose: Option<String>,
        #[command(subcommand)]
        command: InboxCommand,
    },
    /// Case references (issued by the Assistance System).
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// The reply commands (listed here in the help as commands of their own).
    #[command(flatten)]
    Reply(ReplyCommand),
    /// Play a whole case on a temporary relay with the development PKI, then verify the
    /// delivery log and print the story and the audit trail.
    Demo {
        /// Keep the demo's folder here (default: a temporary folder, removed afterwards).
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Play an operator handover instead (README, "Operator handover"): the same centre id
        /// passing to a new operator, then a centre closing and its case moving to a new one;
        /// ends with the handover's trail in the delivery log.
        #[arg(long)]
        handover: bool,
    },
    /// Delete the copies the retention rules say are due, and list them (never content).
    ///
    /// Closed cases go after `[retention] closed_case_days`, messages with no case after
    /// `uncased_max_days`; each deletion is logged first (access log, `purged`). For
    /// installations without the daemon (the daemon sweeps by itself).
    Purge {
        /// Only list what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Re-send a message sent from here to the recipients who could not open it.
    ///
    /// For a copy the relay reports UNDELIVERABLE (the recipient's devices were retired in an
    /// operator handover, or it was disabled) or the recipient REJECTED as unreadable
    /// (cannot_decrypt): the same content is sealed again to those recipients' current keys
    /// under a new message id that names the original, and sent. Recipients whose copy arrived
    /// get nothing. Running it again does not send a second copy. At a centre whose daemon sent
    /// the message, the daemon does it (the request is left in its resend/ folder).
    Resend {
        /// The message id (or its first 8+ characters).
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The language codes (ISO 639) that language fields take, with their names.
    Languages,
    /// Device keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The relay's administration (role admin): principals, expiry, disabling, retiring devices.
    ///
    /// Every call is recorded in the relay's delivery log with its reason.
    #[command(after_help = ADMIN_EXAMPLES)]
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Seal a form and send it.
    Send {
        /// Message kind: referral, anonymous-consultation, information-response, ...
        #[arg(long)]
        kind: String,
        /// Recipient principal (<role>/<id>); repeat for several.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// Case reference: 32 hex digits, or "none" before a case exists.
        #[arg(long)]
        case: String,
        /// normal, urgent or emergency.
        #[arg(long, default_value = "normal")]
        urgency: String,
        /// consent, statutory-information-right, child-welfare-duty, acute-danger or
        /// no-personal-data; each kind allows some (see README, "Legal basis per kind").
        /// Default: the kind's (no-personal-data for an anonymous consultation and its reply,
        /// statutory-information-right for information requests and responses, else consent).
        #[arg(long)]
        legal_basis: Option<String>,
        /// The form: a TOML file, or JSON if it ends in .json.
        form: PathBuf,
    },
    /// The delivery log: verify, evidence, queries.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Receive, open, verify and acknowledge what is waiting; print or write each message.
    ///
    /// Each message opened is recorded in the access log first (`received`, with who and the
    /// purpose), before it is printed or written.
    Receive {
        /// Write each message as <message-id>.json into this folder (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this many seconds without a new item.
        #[arg(long, default_value_t = 3)]
        wait: u64,
        /// Why the messages are opened, recorded in the access log with each one (also
        /// $SILTA_PURPOSE). Default: the purpose configured for automatic receiving
        /// (`[daemon] purpose`, "passing received messages to the case-management system").
        #[arg(long, env = "SILTA_PURPOSE")]
        purpose: Option<String>,
    },
}

/// How `audit report` and `audit query` print their result: `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns, for people.
    Table,
    /// JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The commands that write one message of a kind from flags (and optionally a form) and send it.
#[derive(Subcommand)]
pub(crate) enum ReplyCommand {
    /// Ask a centre for information about a case (Assistance System).
    RequestInfo {
        #[command(flatten)]
        compose: Compose,
        /// An item asked for; repeat for several.
        #[arg(long = "item")]
        items: Vec<String>,
        /// Answer by this date (YYYY-MM-DD).
        #[arg(long)]
        deadline: Option<String>,
        /// Why the Assistance System may ask.
        #[arg(long)]
        note: Option<String>,
    },
    /// Tell the referring centre the admission decision: yes or no, and dates only.
    Decision {
        #[command(flatten)]
        compose: Compose,
        /// yes or no.
        #[arg(long)]
        admitted: Option<String>,
        /// Decision date (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        /// End of the recovery or reflection period, if the client agreed to share it.
        #[arg(long)]
        recovery_period_end: Option<String>,
    },
    /// Meetings: propose, confirm, cancel, reply.
    Meeting {
        #[command(subcommand)]
        command: MeetingCommand,
    },
    /// The joint assessment's shared parts (Assistance System).
    Assessment(Assessment),
    /// The service agreement: who does what.
    Agreement(Agreement),
    /// An anonymous consultation (centre): no identifying data.
    Consultation {
        #[command(flatten)]
        compose: Compose,
        /// An indicator observed; repeat for several.
        #[arg(long = "indicator")]
        indicators: Vec<String>,
        /// Questions for the Assistance System.
        #[arg(long)]
        questions: Option<String>,
    },
    /// A written referral with the person's consent (centre; give the form with --form).
    Referral {
        #[command(flatten)]
        compose: Compose,
        /// Ask for an interpreter for the referral conversation: the language's ISO 639 code
        /// (`silta languages` lists them), e.g. prs for Dari.
        #[arg(long)]
        interpreter_language: Option<String>,
        /// The interpreter's dialect, if it matters.
        #[arg(long)]
        interpreter_dialect: Option<String>,
        /// A note about the interpreter (e.g. "female interpreter", "not from the same
        /// community").
        #[arg(long)]
        interpreter_note: Option<String>,
    },
    /// Answer an information request (centre).
    InfoResponse {
        #[command(flatten)]
        compose: Compose,
        /// ITEM=ANSWER; repeat for several.
        #[arg(long = "answer")]
        answers: Vec<String>,
        /// An item not held; repeat for several.
        #[arg(long = "not-held")]
        not_held: Vec<String>,
    },
    /// Answer an anonymous consultation (Assistance System): advice, refer or not, urgent or not.
    ///
    /// It issues NO case reference (the consultation stays unlinked to the case:
    /// the referral that may follow starts the case). No personal data.
    ConsultationReply {
        #[command(flatten)]
        compose: Compose,
        /// The advice.
        #[arg(long)]
        advice: Option<String>,
        /// Advise to proceed to a referral.
        #[arg(long)]
        proceed: bool,
        /// The situation is urgent.
        #[arg(long)]
        urgent: bool,
        /// Interpreter arranged in this language: an ISO 639 code (fi, sv, en, ar, prs, ...).
        #[arg(long)]
        interpreter_language: Option<String>,
    },
    /// A consent record on its own (centre): fresh consent, or a change of its scope.
    ///
    /// Legal basis: consent. Give a form with --form, flags override it.
    ConsentRecord {
        #[command(flatten)]
        compose: Compose,
        /// Who consented.
        #[arg(long)]
        person_name: Option<String>,
        /// Date of consent (YYYY-MM-DD, not after today).
        #[arg(long)]
        date: Option<String>,
        /// Language the person was informed in: an ISO 639 code.
        #[arg(long)]
        language: Option<String>,
        /// An interpreter was used.
        #[arg(long)]
        interpreter_used: bool,
        /// What the person was told; repeat for several.
        #[arg(long = "informed-about")]
        informed_about: Vec<String>,
        /// What may be shared, with whom.
        #[arg(long)]
        scope: Option<String>,
        /// A child aged 15-17 consented themselves.
        #[arg(long)]
        child_consented: bool,
        /// The guardian's or representative's name.
        #[arg(long)]
        guardian_name: Option<String>,
        /// The guardian's or representative's role.
        #[arg(long)]
        guardian_role: Option<String>,
        /// The guardian or representative signed.
        #[arg(long)]
        guardian_signed: bool,
    },
    /// Confirm services started after a phone referral (Assistance System); issues the case.
    ///
    /// ISSUES a new case reference (random, as `case new`) unless --case is given, and sets
    /// the deadline for the written referral.
    EmergencyConfirmation {
        #[command(flatten)]
        compose: Compose,
        /// An interim measure agreed; repeat for several.
        #[arg(long = "measure")]
        measures: Vec<String>,
        /// Deadline for the written referral (YYYY-MM-DD, not in the past). Required.
        #[arg(long)]
        written_referral_deadline: Option<String>,
        /// The centre's internal client id (the only identifying data).
        #[arg(long)]
        centre_client_id: Option<String>,
    },
    /// A change in the case (both directions): moving, closing, security, missing, ...
    StatusUpdate {
        #[command(flatten)]
        compose: Compose,
        /// client-moving, centre-closing, operator-change, security-situation, asylum-status,
        /// hospitalisation, client-missing, representative-change or other.
        #[arg(long)]
        change: Option<String>,
        /// A short description.
        #[arg(long)]
        description: Option<String>,
        /// The new location, only when the recipient needs it.
        #[arg(long)]
        new_location: Option<String>,
    },
    /// Transfer the case to another centre (Assistance System).
    ///
    /// Goes to the old centre (--to or --reply-to) and the receiving centre, which is added to the recipients; after it, the
    /// old centre no longer sends or receives in the case.
    CaseTransfer {
        #[command(flatten)]
        compose: Compose,
        /// The receiving centre, centre/<id>.
        #[arg(long)]
        receiving_centre: Option<String>,
        /// Effective date (YYYY-MM-DD).
        #[arg(long)]
        effective_date: Option<String>,
        /// The minimum data set handed over.
        #[arg(long)]
        handover: Option<String>,
        /// The client was informed.
        #[arg(long)]
        client_informed: bool,
        /// The client consented.
        #[arg(long)]
        client_consented: bool,
        /// The old centre's access is revoked.
        #[arg(long)]
        old_access_revoked: bool,
    },
    /// The person withdrew consent or narrowed its scope (both directions).
    ///
    /// Sent by whichever side received the withdrawal. While consent is withdrawn the relay
    /// refuses messages on legal basis consent in the case, until a new consent record.
    ConsentWithdrawal {
        #[command(flatten)]
        compose: Compose,
        /// Date of the withdrawal (YYYY-MM-DD, not after today).
        #[arg(long)]
        date: Option<String>,
        /// whole_referral, or a description of the sharing scope withdrawn.
        #[arg(long)]
        withdrawn: Option<String>,
        /// How it was received: oral or written.
        #[arg(long)]
        received_how: Option<String>,
        /// An action required (stop processing, delete the pending referral); repeat.
        #[arg(long = "action")]
        actions: Vec<String>,
    },
    /// The client relationship ends (Assistance System): reason and date only.
    ///
    /// The grounds and the appeal route go to the client, not through Silta.
    ExitNotice {
        #[command(flatten)]
        compose: Compose,
        /// left-voluntarily or removed-by-decision.
        #[arg(long)]
        reason: Option<String>,
        /// Effective date (YYYY-MM-DD).
        #[arg(long)]
        effective_date: Option<String>,
        /// What the centre should stop or continue doing; repeat for several.
        #[arg(long = "centre-action")]
        centre_actions: Vec<String>,
    },
    /// Answer a version of the service agreement (centre): accept or counter-draft.
    ///
    /// --accept, or --counter-draft with the agreement flags for the centre's draft (version = answered + 1, status draft,
    /// supersedes = the version answered). --reply-to names the version answered.
    AgreementAnswer(AgreementAnswer),
}

// The flags of `silta assessment` (no doc comment: the variant's is the help text).
#[derive(clap::Args)]
pub(crate) struct Assessment {
    #[command(flatten)]
    pub(crate) compose: Compose,
    /// Meeting date (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) meeting_date: Option<String>,
    /// Overall situation.
    #[arg(long)]
    pub(crate) overall: Option<String>,
    /// Security threat: none, low, moderate, high.
    #[arg(long)]
    pub(crate) threat: Option<String>,
    /// Safety measures.
    #[arg(long)]
    pub(crate) measures: Option<String>,
    /// Criminal case: none, report-filed, pre-trial-investigation, court.
    #[arg(long)]
    pub(crate) criminal_case: Option<String>,
    /// Support person in criminal proceedings needed: yes, no, arranged.
    #[arg(long)]
    pub(crate) support_person: Option<String>,
    /// The client's own view of the help they need.
    #[arg(long)]
    pub(crate) client_view: Option<String>,
}

// The flags of `silta agreement`.
#[derive(clap::Args)]
pub(crate) struct Agreement {
    #[command(flatten)]
    pub(crate) compose: Compose,
    /// SERVICE=RESPONSIBLE[:CONTACT ROLE], responsible one of assistance-system, centre,
    /// municipality, other; repeat for several.
    #[arg(long = "service")]
    pub(crate) services: Vec<String>,
    /// Agreed procedures (contact routines, crisis, escalation).
    #[arg(long)]
    pub(crate) procedures: Option<String>,
    /// Review date (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) review_date: Option<String>,
    /// draft, agreed or superseded.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Version number (default: the latest version of the case known here + 1, or 1).
    #[arg(long)]
    pub(crate) version: Option<u32>,
    /// The version this one supersedes (message id or prefix; default: the latest version of
    /// the case known here, an agreement or a counter-draft).
    #[arg(long)]
    pub(crate) supersedes: Option<String>,
}

// The flags of `silta agreement-answer`.
#[derive(clap::Args)]
pub(crate) struct AgreementAnswer {
    #[command(flatten)]
    pub(crate) compose: Compose,
    /// Accept the version answered.
    #[arg(long, conflicts_with = "counter_draft")]
    pub(crate) accept: bool,
    /// Propose changes: the draft is made of --service, --procedures and --review-date.
    #[arg(long)]
    pub(crate) counter_draft: bool,
    /// SERVICE=RESPONSIBLE[:CONTACT ROLE] for the counter-draft; repeat for several.
    #[arg(long = "service")]
    pub(crate) services: Vec<String>,
    /// Procedures for the counter-draft.
    #[arg(long)]
    pub(crate) procedures: Option<String>,
    /// Review date for the counter-draft (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) review_date: Option<String>,
    /// A note.
    #[arg(long)]
    pub(crate) note: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the whole delivery log against the relay's signed checkpoint and what was verified
    /// before; names the first bad index if anything was rewritten, removed, reordered or forked.
    /// Every acknowledgement's signature is checked against the recipient's key bundles, verified
    /// with the configured CA.
    Verify {
        /// The log's verifier key (`silta-relay log-key` prints it). Repeat it while the
        /// relay's log key is rotated: a checkpoint signed by any of them is good.
        #[arg(long, required = true)]
        log_key: Vec<String>,
        /// Why the log is read, recorded in the log: a purpose code, optionally with a short
        /// note (`CODE` or `"CODE: note"`; never personal data). Codes: supervision,
        /// data-subject-request, incident, delivery-check, log-verification, reporting,
        /// legal-request.
        #[arg(long)]
        purpose: silta_client::audit::Purpose,
        /// Where the last verified checkpoint and leaf hashes are kept (default STATE_DIR/audit).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Also check receipts a party holds against the verified log: the daemon's
        /// sent/*.status.json, `inbox show --json` output, or a folder of them (repeatable).
        #[arg(long, num_args = 1..)]
        receipts: Vec<PathBuf>,
    },
    /// Write offline evidence for a message: its events, inclusion proofs and a checkpoint.
    Prove {
        /// The message id (UUID).
        message_id: String,
        /// Why the log is read: a purpose code, optionally with a short note (see `audit
        /// verify --help`).
        #[arg(long)]
        purpose: silta_client::audit::Purpose,
        /// The evidence file to write (default <message-id>.evidence.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check an evidence file offline, with no relay.
    CheckEvidence {
        /// The evidence file.
        file: PathBuf,
        /// The log's verifier key; repeatable (a checkpoint signed by any of them is good).
        #[arg(long, required = true)]
        log_key: Vec<String>,
        /// Require the evidence to be about this message (UUID).
        #[arg(long)]
        message_id: Option<String>,
        /// The CA certificate (PEM) acknowledgement signatures are checked against (default:
        /// the `ca` of the configuration, if there is one).
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Summary report per month: messages accepted, delivered, acknowledged, rejected, expired,
    /// and the time from acceptance to acknowledgement (median, p90, max), per kind and urgency.
    Report {
        /// Why the log is read: a purpose code, optionally with a short note (see `audit
        /// verify --help`).
        #[arg(long)]
        purpose: silta_client::audit::Purpose,
        /// First month, YYYY-MM (default: the first in the log).
        #[arg(long)]
        from: Option<String>,
        /// Last month, YYYY-MM (default: the last in the log).
        #[arg(long)]
        to: Option<String>,
        /// How to print it.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write a plot of the acceptance-to-acknowledgement times (SVG) here.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Query the delivery log.
    Query {
        /// Why the log is read: a purpose code, optionally with a short note (see `audit
        /// verify --help`).
        #[arg(long)]
        purpose: silta_client::audit::Purpose,
        /// Only this message (UUID).
        #[arg(long)]
        message_id: Option<String>,
        /// Only this case (32 hex digits).
        #[arg(long)]
        case: Option<String>,
        /// Only events involving this principal.
        #[arg(long)]
        principal: Option<String>,
        /// How to print it.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

const ADMIN_EXAMPLES: &str = "\
The configuration is an ordinary one (relay, ca, cert, key, state_dir) with an admin
certificate (`silta-certs issue --principal admin/<id> ...`); no device keys are needed.

Examples:
  silta admin principals --role centre
  silta admin expiring --days 14
  silta admin disable centre/espoo-1 --reason \"operator contract ended\"
  silta admin retire-devices centre/espoo-1 --reason \"operator handover\"
  silta admin enable centre/espoo-1 --reason \"new operator enrolled\"

A reason is at most 120 bytes on one line and stays in the log for ever: never personal data.";

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// List the principals the relay knows: first and last seen, certificate, devices, pending
    /// messages and quota use.
    Principals {
        /// Only this role: centre, assistance, auditor or admin.
        #[arg(long)]
        role: Option<String>,
        /// Why you look (recorded in the log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List the certificates (principals', the relay's, the CA) and CRLs that expire soon.
    Expiring {
        /// Within this many days (default: the relay's tls.expiry_warning_days).
        #[arg(long, default_value_t = 0)]
        days: u32,
        /// Why you look (recorded in the log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Disable a principal: its requests are refused, its open streams end, sends to it are
    /// refused, and its pending messages are reported to their senders as undeliverable.
    Disable {
        /// The principal, <role>/<id>.
        principal: String,
        /// Why (required; recorded in the log).
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled principal again (messages already reported undeliverable stay so).
    Enable {
        /// The principal, <role>/<id>.
        principal: String,
        /// Why (required; recorded in the log).
        #[arg(long)]
        reason: String,
    },
    /// Retire devices of a principal (an operator handover, a lost machine): their keys leave
    /// the directory, and pending messages nobody left can read are reported undeliverable.
    /// The principal stays enabled: a new certificate can enrol and publish keys.
    RetireDevices {
        /// The principal, <role>/<id>.
        principal: String,
        /// Device ids; none retires every current device.
        devices: Vec<String>,
        /// Why (required; recorded in the log).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create this device's keys (age identity and Ed25519 key, mode 0600; never overwritten).
    Init {
        /// Device name within the principal, e.g. server-1.
        #[arg(long, default_value = "default")]
        device: String,
    },
    /// Print this device's public keys and the fingerprint to compare by phone.
    Show,
    /// Make new keys for this device and publish them under the same device id. The old
    /// identity is kept (STATE_DIR/keys/retired/, 0600) so messages sealed to it still open,
    /// and deleted by the retention sweep after retention.retired_key_days. Safe to run again
    /// after a failure: it goes on where it stopped. Stop the daemon first.
    Rotate,
    /// Publish this device's key bundle to the relay's directory.
    Publish,
    /// Print the verified keys of a principal (<role>/<id>).
    Get {
        /// Whose keys.
        principal: String,
    },
}

/// What every reply command takes.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Compose {
    /// Answer this message (id or a unique prefix): recipient, case and urgency come from it.
    #[arg(long)]
    pub(crate) reply_to: Option<String>,
    /// Recipient principal (<role>/<id>); repeat for several.
    #[arg(long = "to")]
    pub(crate) to: Vec<String>,
    /// Case reference (32 hex digits), or "none" before a case exists.
    #[arg(long)]
    pub(crate) case: Option<String>,
    /// normal, urgent or emergency (default: that of the message answered, else normal).
    #[arg(long)]
    pub(crate) urgency: Option<String>,
    /// consent, statutory-information-right, child-welfare-duty, acute-danger or
    /// no-personal-data; default: the kind's (see README, "Legal basis per kind").
    #[arg(long)]
    pub(crate) legal_basis: Option<String>,
    /// A form file (TOML, or JSON if it ends in .json) with the fields; flags override it.
    #[arg(long)]
    pub(crate) form: Option<PathBuf>,
    /// Why you send it, recorded in the access log (also $SILTA_PURPOSE); default: what the
    /// kind is for ("referring the person to the Assistance System", ...).
    #[arg(long, env = "SILTA_PURPOSE")]
    pub(crate) purpose: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum InboxCommand {
    /// Fetch, open and verify what is waiting (kept unacknowledged until `inbox ack`).
    Sync {
        /// Stop after this many seconds without a new item.
        #[arg(long, default_value_t = 2)]
        wait: u64,
    },
    /// Received messages: case, kind, from, urgency, received, state; most urgent first.
    List {
        /// Only messages not acknowledged yet.
        #[arg(long)]
        new: bool,
        /// Do not fetch first.
        #[arg(long)]
        offline: bool,
        /// Seconds to wait for new items when fetching.
        #[arg(long, default_value_t = 1)]
        wait: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a message (id or a unique prefix of at least 8 characters).
    Show {
        /// The message.
        id: String,
        /// JSON output.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// A page to read or print: text, or html (one self-contained file with a print
        /// stylesheet). Default: the terminal view.
        #[arg(long, value_enum)]
        format: Option<ShowFormat>,
    },
    /// A case's messages in order, both directions.
    Thread {
        /// The case reference.
        case: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge messages: the sender sees that the Assistance System took them in.
    Ack {
        /// Message ids (or unique prefixes).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// What is due: deadlines from the messages, and urgent messages waiting too long.
    ///
    /// Information requests not answered yet (their deadline), the written referral after an emergency confirmation, the review date
    /// of each case's agreed service agreement, confirmed meetings, and urgent or emergency
    /// messages not acknowledged within `[inbox] urgent_unacked_minutes` (default 30). Soonest
    /// first; overdue ones are marked. Shows kinds, cases, ids and times, never content.
    Due {
        /// Do not fetch first.
        #[arg(long)]
        offline: bool,
        /// Seconds to wait for new items when fetching.
        #[arg(long, default_value_t = 1)]
        wait: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Who opened a case's messages, when, and why (from this installation's access log).
    AccessReport {
        /// The case reference.
        case: String,
        /// What the data subject is owed (GDPR Art. 15; 906/2019 s. 17): dates, purposes and
        /// desks of every access to the case's data, merged across every desk that shared its
        /// access log (this desk shares its latest entries first).
        #[arg(long)]
        data_subject: bool,
        /// With --data-subject: also name the staff (the controller's internal use; recorded in
        /// the access log).
        #[arg(long, requires = "data_subject")]
        with_staff: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `inbox show --format`: a page to read or print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ShowFormat {
    /// Plain text.
    Text,
    /// A self-contained HTML5 page with a print stylesheet.
    Html,
}

#[derive(Subcommand)]
pub(crate) enum CaseCommand {
    /// Issue a new case reference (random, never derived from a name or number).
    New {
        /// A label for your own list (kept locally, never sent).
        #[arg(long)]
        label: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The case references issued here, or learned from a message (when, and from whom), with
    /// who holds each.
    List,
    /// Take a case: every desk sees that you handle it (a case claim to your own organisation's
    /// desks, end to end encrypted).
    Claim {
        /// The case reference (32 hex digits).
        case: String,
        /// A short note (no client data), e.g. "calling the centre today".
        #[arg(long)]
        note: Option<String>,
        /// Take it even though a colleague holds it (said in the claim's note and the access log).
        #[arg(long)]
        force: bool,
    },
    /// Hand a case you hold to a colleague (their OS user name).
    Handover {
        /// The case reference (32 hex digits).
        case: String,
        /// The colleague's user name (as the access log names them).
        #[arg(long)]
        to: String,
        /// A short note (no client data), e.g. "on leave from Monday".
        #[arg(long)]
        note: Option<String>,
        /// Hand it over although you do not hold it (said in the note and the access log).
        #[arg(long)]
        force: bool,
    },
    /// Let a case you hold go: nobody holds it afterwards.
    Release {
        /// The case reference (32 hex digits).
        case: String,
        /// A short note (no client data).
        #[arg(long)]
        note: Option<String>,
        /// Release it although you do not hold it (said in the note and the access log).
        #[arg(long)]
        force: bool,
    },
    /// Who holds a case, and every claim, handover and release of it (as synced here).
    Show {
        /// The case reference (32 hex digits).
        case: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Close a case here: its messages (plaintext, kept sealed copies) are deleted from this
    /// installation after `[retention] closed_case_days` (see README, Retention). Logged.
    Close {
        /// The case reference (32 hex digits).
        case: String,
        /// Why (recorded in the access log; no personal data). Default: "case closed".
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reopen a case closed by mistake; messages already deleted stay deleted. Logged.
    Reopen {
        /// The case reference (32 hex digits).
        case: String,
        /// Why (recorded in the access log; no personal data). Default: "case reopened".
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum MeetingCommand {
    /// Propose meeting slots.
    Propose {
        #[command(flatten)]
        compose: Compose,
        /// A slot: START[/MINUTES], START as 2026-12-01T10:00:00Z; repeat for several.
        #[arg(long = "slot")]
        slots: Vec<String>,
        /// Where (or use --remote-link).
        #[arg(long)]
        place: Option<String>,
        /// A remote meeting link.
        #[arg(long)]
        remote_link: Option<String>,
        /// The client attends.
        #[arg(long)]
        client_attends: bool,
        /// Interpreter language, if one is needed.
        #[arg(long)]
        interpreter: Option<String>,
        /// Safety precautions for the venue.
        #[arg(long)]
        safety: Option<String>,
    },
    /// Confirm a slot.
    Confirm {
        #[command(flatten)]
        compose: Compose,
        /// The slot: START[/MINUTES].
        #[arg(long)]
        slot: Option<String>,
        /// Where.
        #[arg(long)]
        place: Option<String>,
        /// The client attends.
        #[arg(long)]
        client_attends: bool,
        /// Interpreter language.
        #[arg(long)]
        interpreter: Option<String>,
    },
    /// Cancel a meeting.
    Cancel {
        #[command(flatten)]
        compose: Compose,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Answer a proposal: accept a slot, decline, or counter-propose.
    Reply {
        #[command(flatten)]
        compose: Compose,
        /// accept, decline or counter-proposal.
        #[arg(long)]
        answer: Option<String>,
        /// The accepted slot: START[/MINUTES].
        #[arg(long)]
        slot: Option<String>,
        /// A note.
        #[arg(long)]
        note: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_flag_is_found_before_parsing() {
        let args = |a: &[&str]| -> Vec<std::ffi::OsString> { a.iter().map(Into::into).collect() };
        assert_eq!(
            lang_in_args(&args(&["silta", "inbox", "list", "--lang", "fi"])),
            Some(Lang::Fi)
        );
        assert_eq!(
            lang_in_args(&args(&["silta", "--lang=sv", "--help"])),
            Some(Lang::Sv)
        );
        assert_eq!(lang_in_args(&args(&["silta", "--lang", "de"])), None);
        assert_eq!(lang_in_args(&args(&["silta", "--lang"])), None);
        assert_eq!(lang_in_args(&args(&["silta", "inbox", "list"])), None);
    }

    #[test]
    fn every_command_has_its_about_line_in_every_language() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for s in c.get_subcommands() {
                let p = if path.is_empty() {
                    s.get_name().to_owned()
                } else {
                    format!("{path}-{}", s.get_name())
                };
                for lang in Lang::ALL {
                    if !i18n::has(lang, &format!("help-cmd-{p}")) {
                        missing.push(format!("{}: help-cmd-{p}", lang.code()));
                    }
                }
                walk(s, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), "", &mut missing);
        assert!(missing.is_empty(), "{missing:?}");
        // Every translated flag help names a flag that exists (a typo would go unnoticed).
        fn flags(c: &clap::Command, path: &str, out: &mut Vec<String>) {
            for s in c.get_subcommands() {
                let p = if path.is_empty() {
                    s.get_name().to_owned()
                } else {
                    format!("{path}-{}", s.get_name())
                };
                for a in s.get_arguments() {
                    out.push(format!("help-arg-{p}-{}", a.get_id()));
                }
                flags(s, &p, out);
            }
        }
        let mut known = vec![
            "help-arg-config".to_owned(),
            "help-arg-lang".to_owned(),
            "help-arg-help".to_owned(),
            "help-arg-version".to_owned(),
        ];
        flags(&<Cli as clap::CommandFactory>::command(), "", &mut known);
        let en = i18n::RESOURCES[0].1;
        let translated: Vec<&str> = en
            .lines()
            .filter_map(|l| l.split(" = ").next())
            .filter(|id| id.starts_with("help-arg-"))
            .collect();
        assert!(translated.len() > 15, "{translated:?}");
        for id in translated {
            assert!(known.iter().any(|k| k == id), "{id} names no flag");
        }
        // And the localised command is still a valid one (clap checks it when it is built).
        for lang in Lang::ALL {
            localised(<Cli as clap::CommandFactory>::command(), lang).debug_assert();
        }
    }
}
