//! Sealing and opening: sign-then-encrypt with a signed header that binds the message to its
//! envelope (DESIGN §6).
//!
//! Sealing: validate the payload, wrap it in a [`SignedPayload`] (version, message id, case,
//! kind, sender and signing device, sorted recipients, time, urgency, legal basis, reply-to,
//! payload, padding), sign a context and a digest of its bytes with the device's Ed25519 key,
//! and encrypt the `SealedMessage` (the bytes, then the signature) with age to every given
//! recipient key. The signature covers the exact bytes sent, so there is no canonicalisation to
//! get wrong: the receiver verifies the bytes, then decodes them.
//!
//! Two formats, told apart by `SignedPayload.version`, each with its own signing context:
//! format 1 signs `context::SIGNED_PAYLOAD || SHA-512(bytes)`, format 2
//! `context::SIGNED_PAYLOAD_SHA256 || SHA-256(bytes)` (SHA-256 runs in hardware on current CPUs,
//! SHA-512 mostly does not: on this project's machines about 23 ms against 7 ms for 11 MiB).
//! Every client opens both. A device announces the newest format it opens in its key bundle;
//! a message is sealed in the oldest format any device it is encrypted to announces
//! ([`version_for`]), so an older client is never sent a format it cannot verify.
//!
//! Speed (`bench-seal`): the content is copied once into a plaintext buffer of exactly its
//! final size. A large message (from 256 KiB) is sealed on two threads: age encrypts on the
//! calling one, writing straight into the output, while the second fills the padding, takes
//! the signed digest, and then the SHA-256 of each piece of ciphertext age has written.
//! Opening one, age decrypts straight into the plaintext
//! buffer while the second thread digests the ciphertext in steps and, in between, the signed
//! bytes as they are decrypted, with the digest of the version they start with (used only if
//! they are the bytes the message's last field 1 holds, as prost decodes it, and that is the
//! version they decode to; else digested again). Large buffers are mapped memory advised for
//! huge pages ([`Buffer`]); the payload is moved out of the decoded message, not copied. Every
//! check is the same in both formats, in the same order.

//! Opening checks, in order, each with its own rejection reason: the ciphertext matches its
//! digest; it decrypts with this device's key; it decodes; the signing device's key verifies
//! against the CA; the signature verifies (strict); the signed sender is the sender the relay
//! authenticated; this principal is among the signed recipients; the signed message id is the
//! delivered one; case, kind, urgency, legal basis, recipients and reply-to match the envelope;
//! the payload fits its kind.

use std::io::{Read as _, Write as _};

use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message as _;
use silta_certs::Principal;
use silta_proto::{
    context,
    pb::{
        self, LegalBasis, MessageKind, RejectionReason, Urgency,
        payload::{Payload, SignedPayload},
    },
};

use crate::{
    bundle::VerifiedBundle,
    keys::DeviceKeys,
    payload::{check_known_languages, validate_on},
};

/// A message to seal.
#[derive(Debug, Clone)]
pub struct Draft {
    /// 16 bytes; a fresh UUIDv7 by [`Draft::new`].
    pub message_id: [u8; 16],
    /// 16 bytes; zero before a case exists.
    pub case_ref: [u8; 16],
    /// The kind.
    pub kind: MessageKind,
    /// Urgency.
    pub urgency: Urgency,
    /// Legal basis of the disclosure.
    pub legal_basis: LegalBasis,
    /// Recipient principals.
    pub recipients: Vec<Principal>,
    /// The message this one answers.
    pub in_reply_to: Option<[u8; 16]>,
    /// The content.
    pub payload: Payload,
}

impl Draft {
    /// A draft with a fresh UUIDv7 message id and the default legal basis of its kind
    /// (`silta_proto::policy::default_basis`).
    pub fn new(
        kind: MessageKind,
        case_ref: [u8; 16],
        recipients: Vec<Principal>,
        payload: Payload,
    ) -> Self {
        Draft {
            message_id: *uuid::Uuid::now_v7().as_bytes(),
            case_ref,
            kind,
            urgency: Urgency::Normal,
            legal_basis: silta_proto::policy::default_basis(kind),
            recipients,
            in_reply_to: None,
            payload,
        }
    }
}

/// Why a message could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The payload breaks a rule of its kind.
    #[error("{0}")]
    Invalid(#[from] crate::payload::PayloadError),
    /// No key to encrypt to for a recipient.
    #[error(
        "{0} has no valid published keys (none published, or none that verify against the CA and its CRL); ask them to run `silta keys publish`"
    )]
    NoKeys(String),
    /// age failed.
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// Checks that `draft`'s legal basis is one its kind may name, and that it has a case
/// reference if its kind needs one (`silta_proto::policy::check_basis`, `check_case`): the
/// relay refuses the others. Done before anything is looked up or sealed.
pub fn check_basis(draft: &Draft) -> Result<(), SealError> {
    silta_proto::policy::check_basis(draft.kind, draft.legal_basis)
        .and_then(|()| silta_proto::policy::check_case(draft.kind, &draft.case_ref))
        .map_err(|e| SealError::Invalid(crate::payload::PayloadError(e)))
}

/// The sizes ciphertexts are padded up to: powers of two from 1 KiB to 1 MiB, then whole MiB.
pub fn bucket(len: usize) -> usize {
    const MIB: usize = 1 << 20;
    if len <= 1024 {
        1024
    } else if len <= MIB {
        len.next_power_of_two()
    } else {
        len.div_ceil(MIB) * MIB
    }
}

/// Seals `draft` from `sender` (signing with `keys`) to the age recipients `encrypt_to` (every
/// device of every recipient and of the sender), in the newest format ([`seal_at`]). Returns
/// the envelope to send.
pub fn seal(
    draft: &Draft,
    sender: &Principal,
    keys: &DeviceKeys,
    encrypt_to: &[String],
) -> Result<pb::Envelope, SealError> {
    seal_at(
        draft,
        sender,
        keys,
        encrypt_to,
        std::time::SystemTime::now(),
    )
}

/// The newest sealed-message format (`SignedPayload.version`) this client seals and opens:
/// 2, whose signature covers SHA-256 of the signed bytes (1: SHA-512). Announced in this
/// device's key bundle (`KeyBundleContent.opens_version`).
pub const NEWEST_VERSION: u32 = 2;

/// [`seal`] as of `now` (the sender's clock: the signed `created_at`, and the day the payload's
/// dates are judged by), in the newest format whatever the recipients' devices announce: a
/// client sealing for others uses [`seal_version_at`] with [`version_for`] (as
/// `Client::seal_to` does).
pub fn seal_at(
    draft: &Draft,
    sender: &Principal,
    keys: &DeviceKeys,
    encrypt_to: &[String],
    now: std::time::SystemTime,
) -> Result<pb::Envelope, SealError> {
    seal_version_at(draft, sender, keys, encrypt_to, now, NEWEST_VERSION)
}

/// The format a message to devices announcing `opens` (their bundles'
/// [`VerifiedBundle::opens_version`]) is sealed in: the oldest of them, and never newer than
/// this client's. A device whose bundle predates format 2 gets format 1.
pub fn version_for(opens: impl IntoIterator<Item = u32>) -> u32 {
    opens
        .into_iter()
        .fold(NEWEST_VERSION, |v, o| v.min(o.max(1)))
}

/// [`seal_at`] in format `version` (1 or 2; see [`version_for`]).
pub fn seal_version_at(
    draft: &Draft,
    sender: &Principal,
    keys: &DeviceKeys,
    encrypt_to: &[String],
    now: std::time::SystemTime,
    version: u32,
) -> Result<pb::Envelope, SealError> {
    if !(1..=NEWEST_VERSION).contains(&version) {
        return Err(SealError::Encrypt(format!(
            "unknown sealed-message format {version}"
        )));
    }
    check_basis(draft)?;
    validate_on(
        draft.kind,
        draft.urgency,
        &draft.payload,
        sender,
        &draft.recipients,
        time::OffsetDateTime::from(now).date(),
    )?;
    let mut recipients: Vec<String> = draft.recipients.iter().map(|r| r.to_string()).collect();
    recipients.sort();
    recipients.dedup();
    let created_at = prost_types::Timestamp::from(now);
    // Everything but the payload (12) and the padding (13), the last two fields: these are
    // encoded after it, straight from the draft, so the content is copied once (into the
    // plaintext) and never cloned. The bytes are those `SignedPayload::encode` gives for the
    // whole message (prost writes fields in number order; a test holds them equal).
    let head = SignedPayload {
        version,
        message_id: draft.message_id.to_vec(),
        case_ref: draft.case_ref.to_vec(),
        kind: draft.kind.into(),
        sender: sender.to_string(),
        sender_device: keys.device_id().to_owned(),
        recipients: recipients.clone(),
        created_at: Some(created_at),
        urgency: draft.urgency.into(),
        legal_basis: draft.legal_basis.into(),
        in_reply_to: draft.in_reply_to.map(|r| r.to_vec()).unwrap_or_default(),
        payload: None,
        padding: Vec::new(),
    };
    let (mut plaintext, signed) = signed_plaintext(&head, &draft.payload)?;
    if !crate::i18n::languages_all_known(&plaintext[signed.payload.clone()]) {
        check_known_languages(&draft.payload)?;
    }

    let parsed: Vec<age::x25519::Recipient> = encrypt_to
        .iter()
        .map(|r| {
            r.parse()
                .map_err(|e| SealError::Encrypt(format!("recipient {r}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // One pass over the message: the signed bytes go to age while their digest is taken, the
    // signature follows them into the same age stream, and SHA-256 digests each encrypted
    // chunk. A large message is split over two cores (see `seal_on_two_threads`).
    let scheme = Scheme::of(version);
    let sign = |digest: &[u8]| signature_field(&keys.sign(scheme.context, digest));
    // A large message's padding is filled by the second thread while this one encrypts.
    let (ciphertext, ciphertext_sha256) = if signed.bytes.len() >= PARALLEL_FROM {
        seal_on_two_threads(&parsed, &mut plaintext, &signed, scheme, sign)?
    } else {
        fill_random(&mut plaintext[signed.padding.clone()])?;
        let tail = sign(scheme.digest(&plaintext[signed.bytes.clone()]).as_ref());
        let mut writer = encrypt_stream(
            &parsed,
            HashingWriter::sized(plaintext.len() + tail.len(), parsed.len()),
        )?;
        write_age(&mut writer, &plaintext)?;
        write_age(&mut writer, &tail)?;
        finish_age(writer)?.finish()
    };
    let ciphertext_sha256: [u8; 32] = ciphertext_sha256.as_ref().try_into().unwrap_or([0; 32]);
    Ok(pb::Envelope {
        message_id: draft.message_id.to_vec(),
        case_ref: draft.case_ref.to_vec(),
        kind: draft.kind.into(),
        urgency: draft.urgency.into(),
        legal_basis: draft.legal_basis.into(),
        recipients,
        created_at: Some(created_at),
        ciphertext_sha256: ciphertext_sha256.to_vec(),
        ciphertext,
        in_reply_to: draft.in_reply_to.map(|r| r.to_vec()).unwrap_or_default(),
        attachment_sha256: Vec::new(),
        resend_of: Vec::new(),
    })
}

/// How a sealed message of one format is signed: the context, then the digest of the signed
/// bytes (`SealedMessage.signature` in payload.proto).
#[derive(Clone, Copy)]
struct Scheme {
    context: &'static [u8],
    algorithm: &'static aws_lc_rs::digest::Algorithm,
}

impl Scheme {
    /// Format 2's (SHA-256); every other version's is format 1's (SHA-512). (Opening refuses an
    /// unknown version before any signature is checked.)
    fn of(version: u32) -> Scheme {
        if version == 2 {
            Scheme {
                context: context::SIGNED_PAYLOAD_SHA256,
                algorithm: &aws_lc_rs::digest::SHA256,
            }
        } else {
            Scheme {
                context: context::SIGNED_PAYLOAD,
                algorithm: &aws_lc_rs::digest::SHA512,
            }
        }
    }

    fn digest(self, bytes: &[u8]) -> aws_lc_rs::digest::Digest {
        aws_lc_rs::digest::digest(self.algorithm, bytes)
    }

    /// The message the signature covers, given the digest.
    fn message(self, digest: &[u8]) -> Vec<u8> {
        [self.context, digest].concat()
    }
}

/// From this many bytes of signed payload (or ciphertext), the digest runs on a second thread
/// alongside encryption (or decryption); below it a thread costs more than it saves.
const PARALLEL_FROM: usize = 256 * 1024;

/// A message-sized buffer. From [`PARALLEL_FROM`] bytes it is anonymous memory the kernel is
/// asked to back with 2 MiB pages (transparent huge pages, `madvise`): a fresh 11 MiB buffer
/// then faults in about six pages instead of 2800, which on the project's machines cost about
/// 4 µs each, more than encrypting them. Where the kernel has no huge pages to give, it is
/// ordinary memory; where mapping fails, a `Vec`. Zeroed either way.
pub(crate) enum Buffer {
    Heap(Vec<u8>),
    Mapped(memmap2::MmapMut),
}

impl Buffer {
    pub(crate) fn zeroed(len: usize) -> Buffer {
        Self::mapped(len).unwrap_or_else(|| Buffer::Heap(vec![0; len]))
    }

    /// An empty buffer for up to `capacity` bytes, appended to with [`HashingWriter::absorb`].
    fn for_output(capacity: usize) -> Buffer {
        Self::mapped(capacity).unwrap_or_else(|| Buffer::Heap(Vec::with_capacity(capacity)))
    }

    /// Mapped memory from [`PARALLEL_FROM`] bytes, if the map succeeds.
    fn mapped(len: usize) -> Option<Buffer> {
        if len < PARALLEL_FROM {
            return None;
        }
        let map = memmap2::MmapMut::map_anon(len).ok()?;
        // Advice only: without huge pages the buffer is ordinary memory.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Some(Buffer::Mapped(map))
    }

    /// The first `len` bytes as `Bytes`, without a copy.
    fn into_bytes(self, len: usize) -> prost::bytes::Bytes {
        match self {
            Buffer::Heap(mut v) => {
                v.truncate(len);
                v.into()
            }
            Buffer::Mapped(map) => prost::bytes::Bytes::from_owner(map).slice(..len),
        }
    }
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Mapped(m) => m,
        }
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Mapped(m) => m,
        }
    }
}

/// Where the parts lie in the plaintext [`signed_plaintext`] builds.
struct Layout {
    /// The encoded `SignedPayload`, the bytes the signature covers.
    bytes: std::ops::Range<usize>,
    /// The encoded `Payload` inside it.
    payload: std::ops::Range<usize>,
    /// The padding's bytes, the end of the signed bytes (left zero by [`signed_plaintext`]).
    padding: std::ops::Range<usize>,
}

/// The plaintext of a sealed message up to its signature: `SealedMessage` field 1 (the signed
/// payload: `head`, `payload` as field 12, random padding as field 13 so that the whole sealed
/// message lands on a [`bucket`] size); [`signature_field`] completes it. Built in one buffer of
/// exactly the final size; the padding's bytes are left zero, for the caller to fill with
/// [`fill_random`] ([`Layout::padding`]).
fn signed_plaintext(
    head: &SignedPayload,
    payload: &Payload,
) -> Result<(Buffer, Layout), SealError> {
    use prost::encoding::{
        WireType, encode_key, encode_varint, encoded_len_varint, key_len, message,
    };
    let base = head.encoded_len() + message::encoded_len(12, payload);
    let signed_len = |pad: usize| {
        base + if pad == 0 {
            0
        } else {
            key_len(13) + encoded_len_varint(pad as u64) + pad
        }
    };
    // The signature is always 64 bytes.
    let sealed_len = |pad: usize| {
        let s = signed_len(pad);
        key_len(1) + encoded_len_varint(s as u64) + s + signature_field(&[0; 64]).len()
    };
    // Pad so the sealed message lands on a bucket size (the padding's own length prefix may
    // grow with it, hence a few rounds).
    let target = bucket(sealed_len(0) + 8);
    let mut pad = 0;
    for _ in 0..4 {
        let len = sealed_len(pad);
        if len == target {
            break;
        }
        pad = (pad + target).saturating_sub(len);
    }
    let total = signed_len(pad);
    let len = sealed_len(pad) - signature_field(&[0; 64]).len();
    let mut buffer = Buffer::zeroed(len);
    // Encoded straight into the buffer; `out` is what is left of it.
    let mut out: &mut [u8] = &mut buffer;
    let at = |out: &[u8]| len - out.len();
    let encoding = |e: prost::EncodeError| SealError::Encrypt(e.to_string());
    encode_key(1, WireType::LengthDelimited, &mut out);
    encode_varint(total as u64, &mut out);
    let start = at(out);
    head.encode(&mut out).map_err(encoding)?;
    encode_key(12, WireType::LengthDelimited, &mut out);
    encode_varint(payload.encoded_len() as u64, &mut out);
    let payload_start = at(out);
    payload.encode(&mut out).map_err(encoding)?;
    let payload_end = at(out);
    if pad > 0 {
        encode_key(13, WireType::LengthDelimited, &mut out);
        encode_varint(pad as u64, &mut out);
        if out.len() != pad {
            return Err(length_mismatch());
        }
        out = &mut [];
    }
    // Everything encoded to the length computed above, to the byte.
    if !out.is_empty() || len - start != total {
        return Err(length_mismatch());
    }
    Ok((
        buffer,
        Layout {
            bytes: start..len,
            payload: payload_start..payload_end,
            padding: len - pad..len,
        },
    ))
}

fn length_mismatch() -> SealError {
    SealError::Encrypt("signed payload length mismatch".into())
}

/// Random bytes for a message's padding: a ChaCha20 keystream under a fresh 256-bit key from
/// the OS (the construction the kernel's own generator uses). Reading a large message's megabyte
/// of padding from getrandom(2) took 8% of a 10 MiB seal; aws-lc's generator seeds itself per
/// thread with jitter entropy, tens of milliseconds on a thread's first use. Drawing the key is
/// the only part that can fail; [`Padding::fill`] cannot.
struct Padding([u8; 32]);

impl Padding {
    fn new() -> Result<Padding, SealError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| SealError::Encrypt(format!("randomness: {e}")))?;
        Ok(Padding(key))
    }

    /// Fills `buf` with the keystream. One key per message, so the zero nonce is never reused.
    fn fill(self, buf: &mut [u8]) {
        use chacha20::cipher::{KeyIvInit as _, StreamCipher as _};
        buf.fill(0);
        chacha20::ChaCha20::new(&self.0.into(), &[0u8; 12].into()).apply_keystream(buf);
    }
}

/// Fills `buf` with random bytes ([`Padding`]).
fn fill_random(buf: &mut [u8]) -> Result<(), SealError> {
    Padding::new()?.fill(buf);
    Ok(())
}

/// `SealedMessage` field 2: the signature, the end of the plaintext.
fn signature_field(signature: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 64);
    prost::encoding::bytes::encode(2, &signature.to_vec(), &mut out);
    out
}

/// Encrypts `plaintext` (laid out as `layout` says, its padding not filled yet) and then the
/// signature `sign` makes of the signed bytes' digest, with age on this thread, while a second
/// thread fills the padding, takes the signed digest and, as age writes them, the SHA-256 of the
/// ciphertext's pieces. age writes straight into the output buffer ([`SliceSender`]): each
/// piece is lent, read-only, to the second thread, so the ciphertext is copied once, by age.
/// Each core does about half: age's ChaCha20-Poly1305 here; the padding's keystream and two
/// SHA-256 passes (in hardware on current CPUs) there.
fn seal_on_two_threads(
    recipients: &[age::x25519::Recipient],
    plaintext: &mut [u8],
    layout: &Layout,
    scheme: Scheme,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<(prost::bytes::Bytes, aws_lc_rs::digest::Digest), SealError> {
    const STEP: usize = 256 * 1024;
    // The padding is the end of the signed bytes, and the plaintext ends with it.
    if layout.padding.end != plaintext.len() || layout.padding.start < layout.bytes.start {
        return Err(length_mismatch());
    }
    let random = Padding::new()?;
    let mut output = Buffer::zeroed(HashingWriter::capacity(
        plaintext.len() + 66,
        recipients.len(),
    ));
    let (front, padding) = plaintext.split_at_mut(layout.padding.start);
    let front: &[u8] = front;
    let signed_front = &front[layout.bytes.start..];
    // The pieces age wrote: one for each of its writes (a 64 KiB chunk and its tag), lent.
    let (pieces, pieces_rx) = std::sync::mpsc::sync_channel::<Piece<'_>>(1024);
    let (padding_tx, padding_rx) = std::sync::mpsc::sync_channel(1);
    let (digest_tx, digest_rx) = std::sync::mpsc::sync_channel(1);
    let (written, overflow, ciphertext_sha256) = std::thread::scope(|s| {
        let second = s.spawn(move || {
            let mut sha256 = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            let mut take = |piece: Piece<'_>| sha256.update(piece.bytes());
            random.fill(padding);
            let padding = &*padding;
            // The receivers are gone only if sealing failed: nothing waits for these then.
            let _ = padding_tx.send(padding);
            let mut digest = aws_lc_rs::digest::Context::new(scheme.algorithm);
            for step in signed_front.chunks(STEP).chain(padding.chunks(STEP)) {
                digest.update(step);
                while let Ok(piece) = pieces_rx.try_recv() {
                    take(piece);
                }
            }
            let _ = digest_tx.send(digest.finish());
            for piece in pieces_rx {
                take(piece);
            }
            sha256.finish()
        });
        let sender = SliceSender {
            rest: &mut output,
            written: 0,
            overflow: Vec::new(),
            pieces,
        };
        let mut writer = encrypt_stream(recipients, sender)?;
        write_age(&mut writer, front)?;
        // Gone only if the second thread panicked: so does this one, at the join.
        let padding = padding_rx.recv().map_err(|_| second_thread_gone())?;
        write_age(&mut writer, padding)?;
        let digest = digest_rx.recv().map_err(|_| second_thread_gone())?;
        write_age(&mut writer, &sign(digest.as_ref()))?;
        let sender = finish_age(writer)?;
        let (written, overflow) = (sender.written, sender.overflow);
        // Closes the channel: the second thread ends with the last piece.
        drop(sender.pieces);
        Ok::<_, SealError>((written, overflow, join(second)))
    })?;
    let ciphertext = if overflow.is_empty() {
        output.into_bytes(written)
    } else {
        // age wrote more than the output was sized for: one copy.
        [&output[..written], overflow.as_slice()].concat().into()
    };
    Ok((ciphertext, ciphertext_sha256))
}

fn second_thread_gone() -> SealError {
    SealError::Encrypt("the digesting thread ended early".into())
}

/// What age wrote, for the second thread of [`seal_on_two_threads`] to digest: a piece of the
/// output buffer, or (past its end) a copy.
enum Piece<'a> {
    Lent(&'a [u8]),
    Owned(Vec<u8>),
}

impl Piece<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Lent(b) => b,
            Piece::Owned(v) => v,
        }
    }
}

/// Writes what age writes into `rest`, the output buffer not yet written, and lends each
/// written piece to the second thread of [`seal_on_two_threads`]. Past the buffer's end (age
/// wrote more than estimated) the bytes go to `overflow`, and a copy of them to the thread.
struct SliceSender<'a> {
    rest: &'a mut [u8],
    written: usize,
    overflow: Vec<u8>,
    pieces: std::sync::mpsc::SyncSender<Piece<'a>>,
}

impl std::io::Write for SliceSender<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let piece = if self.overflow.is_empty() && buf.len() <= self.rest.len() {
            let (piece, rest) = std::mem::take(&mut self.rest).split_at_mut(buf.len());
            piece.copy_from_slice(buf);
            self.rest = rest;
            self.written += buf.len();
            Piece::Lent(piece)
        } else {
            self.overflow.extend_from_slice(buf);
            Piece::Owned(buf.to_vec())
        };
        // Fails only if the second thread ended (it panicked: so will the caller).
        self.pieces
            .send(piece)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Collects what age writes, digesting it with SHA-256 as it comes (each chunk while it is
/// still in the cache).
struct HashingWriter {
    out: Buffer,
    len: usize,
    sha256: aws_lc_rs::digest::Context,
}

impl HashingWriter {
    /// For the age file of about `plaintext_len` bytes to `recipients` recipients: the header
    /// (about 200 bytes a recipient, and grease), the 16-byte nonce, a 16-byte tag per 64 KiB
    /// chunk; one allocation, no regrowth copies (should age write more, the output moves to
    /// a `Vec` that grows).
    fn sized(plaintext_len: usize, recipients: usize) -> HashingWriter {
        HashingWriter {
            out: Buffer::for_output(Self::capacity(plaintext_len, recipients)),
            len: 0,
            sha256: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        }
    }

    /// The size of an age file of `plaintext_len` bytes to `recipients` recipients, about.
    fn capacity(plaintext_len: usize, recipients: usize) -> usize {
        plaintext_len + 1024 + 256 * recipients + 16 * (plaintext_len / 65536 + 2)
    }

    fn absorb(&mut self, buf: &[u8]) {
        self.sha256.update(buf);
        let end = self.len + buf.len();
        match &mut self.out {
            // Written so far: `len` bytes (whatever the Vec held beyond them is not output).
            Buffer::Heap(v) => {
                v.truncate(self.len);
                v.extend_from_slice(buf);
            }
            Buffer::Mapped(m) if end <= m.len() => m[self.len..end].copy_from_slice(buf),
            Buffer::Mapped(m) => {
                let mut v = Vec::with_capacity(end.saturating_mul(2));
                v.extend_from_slice(&m[..self.len]);
                v.extend_from_slice(buf);
                self.out = Buffer::Heap(v);
            }
        }
        self.len = end;
    }

    /// What was written, and its SHA-256.
    fn finish(self) -> (prost::bytes::Bytes, aws_lc_rs::digest::Digest) {
        (self.out.into_bytes(self.len), self.sha256.finish())
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.absorb(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// age's stream writer to `recipients`, writing into `out`.
fn encrypt_stream<W: std::io::Write>(
    recipients: &[age::x25519::Recipient],
    out: W,
) -> Result<age::stream::StreamWriter<W>, SealError> {
    if recipients.is_empty() {
        return Err(SealError::Encrypt("no recipient keys".into()));
    }
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
    encryptor
        .wrap_output(out)
        .map_err(|e| SealError::Encrypt(e.to_string()))
}

fn write_age<W: std::io::Write>(
    w: &mut age::stream::StreamWriter<W>,
    data: &[u8],
) -> Result<(), SealError> {
    w.write_all(data)
        .map_err(|e| SealError::Encrypt(e.to_string()))
}

/// Ends the age stream (its last chunk); the writer it wrote into.
fn finish_age<W: std::io::Write>(w: age::stream::StreamWriter<W>) -> Result<W, SealError> {
    w.finish().map_err(|e| SealError::Encrypt(e.to_string()))
}

/// The result of a scoped thread (a digest, which does not panic; if it did, so does the caller).
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Encrypts `plaintext` with age (binary format) to `recipients`.
pub fn encrypt(
    recipients: &[age::x25519::Recipient],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut writer = encrypt_stream(
        recipients,
        Vec::with_capacity(HashingWriter::capacity(plaintext.len(), recipients.len())),
    )?;
    write_age(&mut writer, plaintext)?;
    finish_age(writer)
}

/// Decrypts an age file (binary or armored) with `identity`.
pub fn decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Result<Vec<u8>, Rejected> {
    decrypt_any(std::iter::once(identity), ciphertext)
}

/// Decrypts an age file (binary or armored) with whichever of `identities` it was sealed to
/// (this device's current identity and those kept from before a rotation).
pub fn decrypt_any<'a>(
    identities: impl Iterator<Item = &'a age::x25519::Identity>,
    ciphertext: &[u8],
) -> Result<Vec<u8>, Rejected> {
    let mut stream = decrypt_stream(identities, ciphertext)?;
    // At most the ciphertext's length: one allocation, no regrowth copies.
    let mut plaintext = Vec::with_capacity(ciphertext.len());
    // age authenticates chunk by chunk; nothing is used until the whole stream verified.
    stream.read_to_end(&mut plaintext).map_err(tampered)?;
    Ok(plaintext)
}

fn tampered(e: impl std::fmt::Display) -> Rejected {
    Rejected::new(
        RejectionReason::CannotDecrypt,
        format!("damaged or tampered: {e}"),
    )
}

/// age's decrypting reader over `ciphertext` (binary or armored) for whichever of `identities`
/// it was sealed to.
fn decrypt_stream<'a, 'c>(
    identities: impl Iterator<Item = &'a age::x25519::Identity>,
    ciphertext: &'c [u8],
) -> Result<
    age::stream::StreamReader<age::armor::ArmoredReader<std::io::BufReader<&'c [u8]>>>,
    Rejected,
> {
    let reader = age::armor::ArmoredReader::new(ciphertext);
    let decryptor = age::Decryptor::new(reader).map_err(|e| {
        Rejected::new(
            RejectionReason::CannotDecrypt,
            format!("not a valid age file: {e}"),
        )
    })?;
    decryptor
        .decrypt(identities.map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Rejected::new(
                RejectionReason::CannotDecrypt,
                "not encrypted to this device's key",
            ),
            other => Rejected::new(
                RejectionReason::CannotDecrypt,
                format!("damaged or tampered: {other}"),
            ),
        })
}

/// What the second thread of [`decrypt_digesting`] digested: the range of the plaintext, the
/// format version whose scheme it used, the digest.
type Digested = (std::ops::Range<usize>, u32, aws_lc_rs::digest::Digest);

/// Decrypts a large `ciphertext` while a second thread digests, as they are decrypted, the
/// bytes a sealed message's first field announces (its signed bytes, where it starts with them
/// as every sealed message does), with the digest of the format version they start with.
/// Returns the plaintext and, if it could, the range it digested, that version and the digest:
/// the caller uses it only if that range is the signed bytes the message holds and the version
/// is the one they decode to. And, in every case, the ciphertext's SHA-256 (taken by the second
/// thread too, in steps between the blocks), which the caller judges first.
#[allow(clippy::type_complexity)]
fn decrypt_digesting<'a>(
    identities: impl Iterator<Item = &'a age::x25519::Identity>,
    ciphertext: &[u8],
) -> (Result<(Plaintext, Option<Digested>), Rejected>, [u8; 32]) {
    let mut stream = match decrypt_stream(identities, ciphertext) {
        Ok(stream) => stream,
        Err(e) => return (Err(e), sha256(ciphertext)),
    };
    // The plaintext is at most as long as the ciphertext: age decrypts straight into it, block
    // by block, and each filled block is lent (read-only) to the digesting thread, so nothing
    // is copied twice. Zeroed memory comes from the allocator as fresh pages, unwritten. The
    // digesting thread takes the ciphertext's SHA-256 in steps, digesting in between the
    // blocks decrypted so far: each core does about half.
    let mut plaintext = Buffer::zeroed(ciphertext.len());
    let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(8);
    let (read, (ciphertext_sha256, digest)) = std::thread::scope(|s| {
        let digester = s.spawn(move || {
            const STEP: usize = 256 * 1024;
            let mut signed = SignedDigest::default();
            let mut sha256 = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            for step in ciphertext.chunks(STEP) {
                sha256.update(step);
                while let Ok(block) = rx.try_recv() {
                    signed.add(block);
                }
            }
            for block in rx {
                signed.add(block);
            }
            let sha256 = sha256.finish();
            (
                sha256.as_ref().try_into().unwrap_or([0; 32]),
                signed.finish(),
            )
        });
        // age authenticates chunk by chunk; nothing is used until the whole stream verified.
        let read = decrypt_into(&mut stream, &mut plaintext, &tx);
        drop(tx);
        (read, join(digester))
    });
    let decrypted = read.map(|len| {
        (
            Plaintext {
                buffer: plaintext,
                len,
            },
            digest,
        )
    });
    (decrypted, ciphertext_sha256)
}

/// A decrypted message: the first `len` bytes of `buffer`.
struct Plaintext {
    buffer: Buffer,
    len: usize,
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

/// The digest of a sealed message's signed bytes (the first field 1, where the plaintext
/// starts with it) as its blocks come, by the scheme of the version they start with.
#[derive(Default)]
struct SignedDigest {
    digest: Option<(std::ops::Range<usize>, u32, aws_lc_rs::digest::Context)>,
    /// Plaintext bytes seen, and the end of those digested.
    at: usize,
    done: usize,
}

impl SignedDigest {
    fn add(&mut self, block: &[u8]) {
        if self.at == 0 {
            // The version is read only where this first block holds its whole field (at most
            // `VERSION_FIELD_MAX` bytes, or all of the range if shorter); else there is no
            // digest to hand back, and `open` digests the signed bytes itself.
            self.digest = first_field_1(block).and_then(|r| {
                let head = r.start..r.end.min(r.start.saturating_add(VERSION_FIELD_MAX));
                let version = leading_version(block.get(head)?);
                let context = aws_lc_rs::digest::Context::new(Scheme::of(version).algorithm);
                Some((r, version, context))
            });
            // Digested so far: nothing past the range's start (so an empty range is whole).
            if let Some((r, _, _)) = &self.digest {
                self.done = r.start;
            }
        }
        let end = self.at + block.len();
        if let Some((r, _, context)) = &mut self.digest {
            let from = self.done.max(r.start);
            let to = end.min(r.end);
            if to > from {
                context.update(&block[from - self.at..to - self.at]);
                self.done = to;
            }
        }
        self.at = end;
    }

    /// The range, version and digest, if the whole range came.
    fn finish(self) -> Option<Digested> {
        let done = self.done;
        self.digest
            .filter(|(r, _, _)| done == r.end)
            .map(|(r, version, context)| (r, version, context.finish()))
    }
}

/// Reads `stream` into `buf` block by block, sending each filled block on `tx`; the plaintext's
/// length. The stream must end within `buf` (the plaintext is never longer than its ciphertext).
fn decrypt_into<'b>(
    stream: &mut impl std::io::Read,
    buf: &'b mut [u8],
    tx: &std::sync::mpsc::SyncSender<&'b [u8]>,
) -> Result<usize, Rejected> {
    const BLOCK: usize = 256 * 1024;
    let mut len = 0;
    for block in buf.chunks_mut(BLOCK) {
        let mut n = 0;
        while n < block.len() {
            match stream.read(&mut block[n..]).map_err(tampered)? {
                0 => break,
                k => n += k,
            }
        }
        len += n;
        let full = n == block.len();
        let block: &'b [u8] = block;
        // A send fails only if the digesting thread ended (it panicked: so will the caller).
        if n == 0 || tx.send(&block[..n]).is_err() || !full {
            return Ok(len);
        }
    }
    match stream.read(&mut [0u8; 1]).map_err(tampered)? {
        0 => Ok(len),
        _ => Err(tampered("longer than its ciphertext")),
    }
}

/// The most bytes a `SignedPayload`'s leading version field takes: its key and its value, each
/// a varint of at most 10 bytes (prost reads non-minimal encodings too, up to that).
const VERSION_FIELD_MAX: usize = 20;

/// The version an encoded `SignedPayload` starts with (its field 1, as prost writes it first),
/// or 0. Only picks the digest to take while decrypting; the decoded version decides.
fn leading_version(mut buf: &[u8]) -> u32 {
    use prost::encoding::{WireType, decode_key, decode_varint};
    match decode_key(&mut buf) {
        Ok((1, WireType::Varint)) => decode_varint(&mut buf)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Where field 1 (length-delimited) of the encoded message at the start of `buf` lies, if it
/// starts with it.
fn first_field_1(mut buf: &[u8]) -> Option<std::ops::Range<usize>> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let all = buf.len();
    match decode_key(&mut buf).ok()? {
        (1, WireType::LengthDelimited) => {}
        _ => return None,
    }
    let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
    let start = all - buf.len();
    Some(start..start.checked_add(len)?)
}

/// A message that passed every check.
#[derive(Debug, Clone)]
pub struct Opened {
    /// What the sender signed, but for its payload, which is moved to [`Opened::payload`]
    /// (`signed.payload` is `None`: a large message's content is not kept twice).
    pub signed: SignedPayload,
    /// The payload (what the sender signed as `SignedPayload.payload`).
    pub payload: Payload,
    /// The key that signed.
    pub sender_key: VerifiedBundle,
}

/// Why a delivered message was refused; sent back to the relay through `Ack`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({detail})", reason.as_str_name())]
pub struct Rejected {
    /// The reason code.
    pub reason: RejectionReason,
    /// A short explanation with no content from the message.
    pub detail: String,
}

impl Rejected {
    /// A rejection.
    pub fn new(reason: RejectionReason, detail: impl Into<String>) -> Self {
        Rejected {
            reason,
            detail: detail.into(),
        }
    }
}

/// Opens a delivered envelope for `me`. `sender_key(principal, device)` returns the signing
/// device's bundle, verified against the CA, or `None`.
pub fn open(
    delivered: &pb::DeliveredEnvelope,
    me: &Principal,
    keys: &DeviceKeys,
    sender_key: impl FnOnce(&str, &str) -> Option<VerifiedBundle>,
) -> Result<Opened, Rejected> {
    open_at(
        delivered,
        me,
        keys,
        sender_key,
        std::time::SystemTime::now(),
    )
}

/// [`open`] with `now` the receiver's clock (see [`open_any_at`]).
pub fn open_at(
    delivered: &pb::DeliveredEnvelope,
    me: &Principal,
    keys: &DeviceKeys,
    sender_key: impl FnOnce(&str, &str) -> Option<VerifiedBundle>,
    now: std::time::SystemTime,
) -> Result<Opened, Rejected> {
    open_any_at(
        delivered,
        me,
        keys,
        |p, d| sender_key(p, d).into_iter().collect(),
        now,
    )
}

/// Like [`open`], where `sender_keys(principal, device)` returns every bundle of the signing
/// device that may have signed (verified against the CA): its current one and, after a
/// rotation, earlier ones. The signature must verify with one of them.
pub fn open_any(
    delivered: &pb::DeliveredEnvelope,
    me: &Principal,
    keys: &DeviceKeys,
    sender_keys: impl FnOnce(&str, &str) -> Vec<VerifiedBundle>,
) -> Result<Opened, Rejected> {
    open_any_at(
        delivered,
        me,
        keys,
        sender_keys,
        std::time::SystemTime::now(),
    )
}

/// The day a received payload's dates are judged by: the day it was written by the sender's
/// signed clock (a birthday between writing and opening does not make it invalid), but never
/// later than a day after the relay accepted it: a sender whose clock runs fast cannot date a
/// decision after the relay had it. The day of slack is for time zones (a decision dated in
/// Finland's today while UTC is still on yesterday). The receiver's own clock (`now`) counts
/// only when the message carries neither time: a receiver whose clock runs slow must not
/// refuse, for good, what was valid when it was written.
pub fn judged_on(
    created_at: Option<prost_types::Timestamp>,
    accepted_at: Option<prost_types::Timestamp>,
    now: std::time::SystemTime,
) -> time::Date {
    let date = |t: prost_types::Timestamp| {
        time::OffsetDateTime::from_unix_timestamp(t.seconds)
            .ok()
            .map(|t| t.date())
    };
    let next = |d: time::Date| d.next_day().unwrap_or(d);
    let local = next(time::OffsetDateTime::from(now).date());
    [
        created_at.and_then(date),
        accepted_at.and_then(date).map(next),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(local)
}

/// [`open_any`] with `now` the receiver's clock: the payload's dates are judged as of
/// [`judged_on`].
pub fn open_any_at(
    delivered: &pb::DeliveredEnvelope,
    me: &Principal,
    keys: &DeviceKeys,
    sender_keys: impl FnOnce(&str, &str) -> Vec<VerifiedBundle>,
    now: std::time::SystemTime,
) -> Result<Opened, Rejected> {
    use RejectionReason as R;
    let env = delivered
        .envelope
        .as_ref()
        .ok_or_else(|| Rejected::new(R::Other, "delivery without envelope"))?;
    let digest_differs =
        || Rejected::new(R::EnvelopeMismatch, "ciphertext does not match its digest");
    // A large ciphertext is digested on a second thread while it decrypts; the digest is judged
    // first all the same, and nothing decrypted is looked at before both are done.
    let (plaintext, digested) = if env.ciphertext.len() >= PARALLEL_FROM {
        let (decrypted, digest) = decrypt_digesting(keys.age_identities(), &env.ciphertext);
        if digest.as_slice() != env.ciphertext_sha256.as_slice() {
            return Err(digest_differs());
        }
        decrypted?
    } else {
        if sha256(&env.ciphertext).as_slice() != env.ciphertext_sha256.as_slice() {
            return Err(digest_differs());
        }
        let plaintext = decrypt_any(keys.age_identities(), &env.ciphertext)?;
        let len = plaintext.len();
        (
            Plaintext {
                buffer: Buffer::Heap(plaintext),
                len,
            },
            None,
        )
    };
    // Anything that is not a sealed message with a 64-byte signature has no valid signature:
    // e.g. a file someone made with `age -r` from our public recipient.
    let no_signature = || {
        Rejected::new(
            R::BadSignature,
            "no valid Silta signature (not a sealed Silta message)",
        )
    };
    let (signed_range, signature) = sealed_parts(&plaintext).ok_or_else(no_signature)?;
    let (signed_bytes, signature) = (&plaintext[signed_range.clone()], &plaintext[signature]);
    if signature.len() != 64 || signed_bytes.is_empty() {
        return Err(no_signature());
    }
    let signed = SignedPayload::decode(signed_bytes);
    let signed = signed.map_err(|_| no_signature())?;
    // A version this client does not know has a scheme it does not know either: said as such,
    // not as a bad signature.
    if !(1..=NEWEST_VERSION).contains(&signed.version) {
        return Err(Rejected::new(
            R::MalformedPayload,
            format!("unsupported version {}", signed.version),
        ));
    }
    // The digest of the signed bytes that the signature covers, by the scheme of the version
    // they decode to: taken while they were decrypted if those were these bytes and that
    // scheme, else now.
    let scheme = Scheme::of(signed.version);
    let signed_digest = match digested {
        Some((range, version, digest))
            if range == signed_range && Scheme::of(version).context == scheme.context =>
        {
            digest
        }
        _ => scheme.digest(signed_bytes),
    };
    let candidates = sender_keys(&signed.sender, &signed.sender_device);
    if candidates.is_empty() {
        return Err(Rejected::new(
            R::UntrustedSenderKey,
            format!(
                "no valid key for {} device {}",
                clip(&signed.sender),
                clip(&signed.sender_device)
            ),
        ));
    }
    let candidates: Vec<VerifiedBundle> = candidates
        .into_iter()
        .filter(|b| b.principal.to_string() == signed.sender && b.device_id == signed.sender_device)
        .collect();
    if candidates.is_empty() {
        return Err(Rejected::new(
            R::UntrustedSenderKey,
            "key belongs to another device",
        ));
    }
    let sig: [u8; 64] = signature.try_into().map_err(|_| no_signature())?;
    let message = scheme.message(signed_digest.as_ref());
    let bundle = candidates
        .into_iter()
        .find(|b| {
            VerifyingKey::from_bytes(&b.ed25519).is_ok_and(|vk| {
                vk.verify_strict(&message, &Signature::from_bytes(&sig))
                    .is_ok()
            })
        })
        .ok_or_else(|| {
            Rejected::new(
                R::BadSignature,
                format!(
                    "signature does not verify with {} device {}",
                    signed.sender, signed.sender_device
                ),
            )
        })?;

    // What the sender signed must be what the relay delivered.
    if signed.sender != delivered.sender {
        return Err(Rejected::new(
            R::EnvelopeMismatch,
            format!(
                "signed by {} but sent by {}",
                signed.sender,
                clip(&delivered.sender)
            ),
        ));
    }
    let me_s = me.to_string();
    if !signed.recipients.contains(&me_s) {
        return Err(Rejected::new(
            R::Misrouted,
            format!("not addressed to {me_s}"),
        ));
    }
    if signed.message_id != env.message_id {
        return Err(Rejected::new(R::Replay, "signed for another message id"));
    }
    let mut env_recipients = env.recipients.clone();
    env_recipients.sort();
    let mismatch = [
        ("case reference", signed.case_ref != env.case_ref),
        ("kind", signed.kind != env.kind),
        ("urgency", signed.urgency != env.urgency),
        ("legal basis", signed.legal_basis != env.legal_basis),
        ("recipients", signed.recipients != env_recipients),
        ("in-reply-to", signed.in_reply_to != env.in_reply_to),
    ]
    .into_iter()
    .find(|(_, differs)| *differs);
    if let Some((what, _)) = mismatch {
        return Err(Rejected::new(
            R::EnvelopeMismatch,
            format!("{what} differs from what was signed"),
        ));
    }
    // Moved out, not copied (a large message's content is most of it).
    let mut signed = signed;
    let payload = signed
        .payload
        .take()
        .ok_or_else(|| Rejected::new(R::MalformedPayload, "no payload"))?;
    let kind = MessageKind::try_from(signed.kind).unwrap_or(MessageKind::Unspecified);
    let sender: Principal = signed
        .sender
        .parse()
        .map_err(|_| Rejected::new(R::MalformedPayload, "sender is not a principal"))?;
    let recipients: Vec<Principal> = signed
        .recipients
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    let urgency = Urgency::try_from(signed.urgency).unwrap_or(Urgency::Unspecified);
    // The reason goes to the relay and into its log: say which rule, never what the payload holds
    // (a date of birth, an age, a name quoted back).
    let written = judged_on(signed.created_at, delivered.accepted_at, now);
    crate::payload::validate_on(kind, urgency, &payload, &sender, &recipients, written).map_err(
        |e| {
            tracing::debug!(
                kind = kind.as_str_name(),
                "payload breaks the rules of its kind"
            );
            Rejected::new(R::MalformedPayload, content_free(&e.0))
        },
    )?;
    Ok(Opened {
        signed,
        payload,
        sender_key: bundle,
    })
}

/// The signed payload and the signature of an encoded `SealedMessage`, as slices of it: what
/// `SealedMessage::decode` gives (the last occurrence of a field wins, unknown fields are
/// skipped, a wrong wire type or a short buffer fails), without copying a large message.
/// `None` where decoding fails. Ranges of `buf`.
fn sealed_parts(mut buf: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let all = buf.len();
    let (mut signed, mut signature) = (0..0, 0..0);
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        match tag {
            1 | 2 => {
                if wire_type != WireType::LengthDelimited {
                    return None;
                }
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                if len > buf.len() {
                    return None;
                }
                let start = all - buf.len();
                buf = &buf[len..];
                if tag == 1 {
                    signed = start..start + len;
                } else {
                    signature = start..start + len;
                }
            }
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default()).ok()?,
        }
    }
    Some((signed, signature))
}

/// The signature a recipient puts in its acknowledgement.
pub fn sign_ack(keys: &DeviceKeys, message_id: &[u8], ciphertext_sha256: &[u8]) -> [u8; 64] {
    keys.sign(context::ACK, &[message_id, ciphertext_sha256].concat())
}

/// SHA-256 (aws-lc's assembly implementation: these digests cover whole messages).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    d.as_ref().try_into().unwrap_or([0; 32])
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The part of a rule violation that names the rule and the field (before the first `:` after
/// the field path, or a fixed text), without quoting any value.
fn content_free(detail: &str) -> String {
    // Validation messages start "<kind>: <field> ..." or "<kind>: ..."; keep the kind and the
    // field path only.
    let mut parts = detail.splitn(2, ": ");
    let kind = parts.next().unwrap_or_default();
    let field: String = parts
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        .collect();
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .take(40)
        .collect();
    format!("payload breaks a rule of its kind ({kind}: {field})")
}

#[cfg(test)]
mod tests {
    use super::judged_on;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the plaintext and however it is split into blocks, what the opening
        /// thread hands back is either nothing (then `open` digests again) or exactly: the
        /// range of the first field 1 of the whole plaintext, the version those bytes start
        /// with, and that version's digest of them.
        #[test]
        fn the_signed_digest_taken_block_by_block_is_that_of_the_whole(
            version in 0u32..4,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            header in proptest::prelude::any::<bool>(),
            cut in proptest::prelude::any::<bool>(),
            splits in proptest::collection::vec(1usize..700, 1..12),
        ) {
            use super::*;
            use prost::encoding::{WireType, encode_key, encode_varint};
            // A field 1 holding a message that starts with `version` (or arbitrary bytes),
            // then whatever follows; sometimes cut short.
            let mut inner = Vec::new();
            if header {
                encode_key(1, WireType::Varint, &mut inner);
                encode_varint(u64::from(version), &mut inner);
            }
            inner.extend_from_slice(&body);
            let mut whole = Vec::new();
            encode_key(1, WireType::LengthDelimited, &mut whole);
            encode_varint(inner.len() as u64, &mut whole);
            whole.extend_from_slice(&inner);
            whole.extend_from_slice(&tail);
            if cut {
                whole.truncate(whole.len() / 2);
            }
            let mut digest = SignedDigest::default();
            let mut at = 0;
            for n in splits.iter().cycle() {
                if at >= whole.len() {
                    break;
                }
                let end = (at + n).min(whole.len());
                digest.add(&whole[at..end]);
                at = end;
            }
            if let Some((range, v, d)) = digest.finish() {
                let expected = first_field_1(&whole).unwrap();
                proptest::prop_assert_eq!(range.clone(), expected);
                let signed = &whole[range];
                proptest::prop_assert_eq!(v, leading_version(signed));
                let again = Scheme::of(v).digest(signed);
                proptest::prop_assert_eq!(d.as_ref(), again.as_ref());
            } else {
                // Nothing only where the whole range never came, or the first block did not
                // hold the field's header and the whole version field (or all of a shorter
                // range).
                let complete = first_field_1(&whole).is_some_and(|r| r.end <= whole.len());
                let first = &whole[..splits[0].min(whole.len())];
                let version_in_first = first_field_1(first).is_some_and(|r| {
                    first.len() >= r.end.min(r.start.saturating_add(VERSION_FIELD_MAX))
                });
                proptest::prop_assert!(!complete || !version_in_first);
            }
        }
    }

    /// Opening a large message digests its signed bytes while they are decrypted, by the
    /// scheme of its version: what the digesting thread hands back is the signed range, the
    /// version and that digest, in both formats (which `open` then uses rather than digesting
    /// again).
    #[test]
    fn a_large_message_is_digested_while_it_decrypts_by_its_versions_scheme() {
        use super::*;
        use silta_proto::pb::payload::{Payload, StatusUpdate, payload::Body};
        let keys = DeviceKeys::generate("d").unwrap();
        let payload = Payload {
            body: Some(Body::StatusUpdate(StatusUpdate {
                change: pb::payload::ChangeKind::AsylumStatus.into(),
                description: "x".repeat(700 << 10),
                ..Default::default()
            })),
        };
        let draft = Draft::new(
            MessageKind::StatusUpdate,
            [1; 16],
            vec!["assistance/nas".parse().unwrap()],
            payload,
        );
        let sender: Principal = "centre/a".parse().unwrap();
        for version in [1, 2] {
            let env = seal_version_at(
                &draft,
                &sender,
                &keys,
                &[keys.age_recipient()],
                std::time::SystemTime::now(),
                version,
            )
            .unwrap();
            let (decrypted, ciphertext_sha256) =
                decrypt_digesting(keys.age_identities(), &env.ciphertext);
            assert_eq!(ciphertext_sha256, sha256(&env.ciphertext));
            let (plaintext, digested) = decrypted.unwrap();
            let (signed, _) = sealed_parts(&plaintext).unwrap();
            let (range, digested_as, digest) = digested.expect("digested while decrypting");
            assert_eq!((range.clone(), digested_as), (signed, version));
            assert_eq!(
                digest.as_ref(),
                Scheme::of(version).digest(&plaintext[range]).as_ref()
            );
        }
    }

    /// The zero-copy reading of a sealed message agrees with prost's decoding, including on
    /// repeated fields, unknown fields, groups, wrong wire types and truncation.
    #[test]
    fn sealed_parts_reads_what_prost_decodes() {
        use super::*;
        use silta_proto::pb::payload::SealedMessage;
        let sealed = |signed: &[u8], sig: &[u8]| {
            SealedMessage {
                signed_payload: signed.to_vec(),
                signature: sig.to_vec(),
            }
            .encode_to_vec()
        };
        let mut inputs = vec![
            sealed(b"abc", &[1; 64]),
            sealed(&[7; 300], &[]),
            sealed(&[], &[2; 64]),
            Vec::new(),
            [sealed(b"first", &[1; 64]), sealed(b"second", &[2; 3])].concat(),
            // An unknown varint field (3), an unknown length-delimited field (4), a group (5).
            [
                vec![
                    0x18, 0x96, 0x01, 0x22, 0x02, 0xaa, 0xbb, 0x2b, 0x08, 0x01, 0x2c,
                ],
                sealed(b"x", &[3; 64]),
            ]
            .concat(),
            // Field 1 as a varint: a wrong wire type.
            vec![0x08, 0x01],
            // Truncated: a length past the end.
            vec![0x0a, 0x05, 0x01],
            // A key of tag 0, an end-group without a start, a bad varint.
            vec![0x02, 0x00],
            vec![0x0c],
            vec![
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ];
        let long = sealed(&[9; 70_000], &[4; 64]);
        inputs.extend((0..long.len()).step_by(997).map(|n| long[..n].to_vec()));
        inputs.push(long);
        for input in inputs {
            let prost = SealedMessage::decode(input.as_slice())
                .ok()
                .map(|m| (m.signed_payload, m.signature));
            let ours = sealed_parts(&input).map(|(a, b)| (input[a].to_vec(), input[b].to_vec()));
            assert_eq!(ours, prost, "input {input:02x?}");
        }
    }

    /// The plaintext built in one buffer is, byte for byte, what encoding the whole
    /// `SignedPayload` and then the `SealedMessage` gives (the wire format the signature and
    /// every receiver rely on), and lands on its bucket, for sizes around the bucket edges
    /// (where the padding's own length prefix changes size).
    #[test]
    fn the_one_buffer_plaintext_is_the_encoded_sealed_message() {
        use super::*;
        use silta_proto::pb::payload::SealedMessage;
        use silta_proto::pb::payload::{Payload, StatusUpdate, payload::Body};
        let head = SignedPayload {
            version: 1,
            message_id: vec![7; 16],
            case_ref: vec![9; 16],
            kind: MessageKind::StatusUpdate.into(),
            sender: "centre/a".into(),
            sender_device: "d1".into(),
            recipients: vec!["assistance/nas".into()],
            created_at: Some(prost_types::Timestamp {
                seconds: 1_780_000_000,
                nanos: 5,
            }),
            urgency: Urgency::Urgent.into(),
            legal_basis: LegalBasis::Consent.into(),
            in_reply_to: vec![3; 16],
            payload: None,
            padding: Vec::new(),
        };
        let sizes = (0..3000)
            .step_by(37)
            .chain([700, 800, 900, 950, 1000])
            .chain((1 << 20) - 400..(1 << 20) - 200)
            .chain([(1 << 20) + 5, 3 << 20, (10 << 20) - 300]);
        for size in sizes {
            let payload = Payload {
                body: Some(Body::StatusUpdate(StatusUpdate {
                    change: 5,
                    description: "x".repeat(size),
                    ..Default::default()
                })),
            };
            let (plaintext, layout) = signed_plaintext(&head, &payload).unwrap();
            let signed_bytes = &plaintext[layout.bytes.clone()];
            let whole = SignedPayload::decode(signed_bytes).unwrap();
            assert_eq!(whole.payload.as_ref(), Some(&payload));
            assert_eq!(
                &plaintext[layout.payload.clone()],
                payload.encode_to_vec().as_slice()
            );
            assert_eq!(whole.encode_to_vec(), signed_bytes, "size {size}");
            let signature = [0x5a; 64];
            let sealed = SealedMessage {
                signed_payload: signed_bytes.to_vec(),
                signature: signature.to_vec(),
            }
            .encode_to_vec();
            let mut ours = plaintext.to_vec();
            ours.extend_from_slice(&signature_field(&signature));
            assert_eq!(ours, sealed, "size {size}");
            // The padding is as long as the former way of computing it made it (encoding the
            // whole message again each round).
            let sealed_len = |s: &SignedPayload| {
                SealedMessage {
                    signed_payload: vec![0; s.encoded_len()],
                    signature: vec![0; 64],
                }
                .encoded_len()
            };
            let mut former = SignedPayload {
                payload: Some(payload.clone()),
                ..head.clone()
            };
            let target = bucket(sealed_len(&former) + 8);
            for _ in 0..4 {
                let len = sealed_len(&former);
                if len == target {
                    break;
                }
                former.padding = vec![0; (former.padding.len() + target).saturating_sub(len)];
            }
            assert_eq!(whole.padding.len(), former.padding.len(), "size {size}");
            // The padding's bytes, last, left for the caller to fill.
            assert_eq!(
                layout.padding,
                plaintext.len() - whole.padding.len()..plaintext.len(),
                "size {size}"
            );
            assert!(whole.padding.iter().all(|b| *b == 0), "size {size}");
            // Sized exactly (`ours == sealed` above), and mapped memory from the large size on.
            assert_eq!(
                matches!(plaintext, Buffer::Mapped(_)),
                plaintext.len() >= PARALLEL_FROM,
                "size {size}"
            );
        }
    }

    /// The padding of a sealed message is random and differs between seals, whether the
    /// message is sealed on one thread (small) or two (large, the second thread fills it).
    #[test]
    fn sealed_padding_is_random_on_both_paths() {
        use super::*;
        use silta_proto::pb::payload::{Payload, SealedMessage, StatusUpdate, payload::Body};
        let keys = DeviceKeys::generate("d").unwrap();
        let sender: Principal = "centre/a".parse().unwrap();
        for size in [3000, 700 << 10] {
            let draft = Draft::new(
                MessageKind::StatusUpdate,
                [1; 16],
                vec!["assistance/nas".parse().unwrap()],
                Payload {
                    body: Some(Body::StatusUpdate(StatusUpdate {
                        change: pb::payload::ChangeKind::AsylumStatus.into(),
                        description: "x".repeat(size),
                        ..Default::default()
                    })),
                },
            );
            let padding = || {
                let env = seal(&draft, &sender, &keys, &[keys.age_recipient()]).unwrap();
                let plain = decrypt(keys.age_identity(), &env.ciphertext).unwrap();
                let sealed = SealedMessage::decode(plain.as_slice()).unwrap();
                SignedPayload::decode(sealed.signed_payload.as_slice())
                    .unwrap()
                    .padding
            };
            let (one, two) = (padding(), padding());
            assert!(
                one.len() >= 64,
                "size {size}: {} bytes of padding",
                one.len()
            );
            assert_ne!(one, two, "size {size}");
            let zeros = one.iter().filter(|b| **b == 0).count();
            assert!(zeros < one.len() / 64 + 8, "size {size}: {zeros} zeros");
        }
    }

    /// age's writes go into the output buffer and are lent as they are; past its end they go to
    /// the overflow and are sent as copies; in order, nothing lost.
    #[test]
    fn the_slice_sender_lends_what_fits_and_copies_the_rest() {
        use super::*;
        let mut output = [0u8; 10];
        let (got, written, overflow) = {
            let (tx, rx) = std::sync::mpsc::sync_channel(16);
            let mut sender = SliceSender {
                rest: &mut output,
                written: 0,
                overflow: Vec::new(),
                pieces: tx,
            };
            for piece in [&b"abcd"[..], b"efg", b"hijk", b"l"] {
                sender.write_all(piece).unwrap();
            }
            let SliceSender {
                written,
                overflow,
                pieces,
                ..
            } = sender;
            drop(pieces);
            let got: Vec<(bool, Vec<u8>)> = rx
                .iter()
                .map(|p| (matches!(p, Piece::Lent(_)), p.bytes().to_vec()))
                .collect();
            (got, written, overflow)
        };
        assert_eq!(
            got,
            [
                (true, b"abcd".to_vec()),
                (true, b"efg".to_vec()),
                (false, b"hijk".to_vec()),
                (false, b"l".to_vec()),
            ]
        );
        assert_eq!((written, overflow.as_slice()), (7, &b"hijkl"[..]));
        assert_eq!(&output[..7], b"abcdefg");
    }

    /// The output collects exactly what is written, and its SHA-256, whatever it starts as: a
    /// map (large), a map too small for what comes (it moves to a Vec), a Vec with room, and a
    /// Vec that already holds bytes (as a failed map's zeroed fallback would).
    #[test]
    fn the_output_holds_exactly_what_was_written() {
        use super::*;
        let data: Vec<u8> = (0..(600u32 << 10)).map(|i| (i % 251) as u8).collect();
        let starts = [
            HashingWriter::sized(data.len(), 2).out,
            Buffer::zeroed(PARALLEL_FROM),
            Buffer::Heap(Vec::with_capacity(10)),
            Buffer::Heap(vec![0; 1000]),
            Buffer::Heap(vec![7; data.len() + 5000]),
        ];
        for (i, out) in starts.into_iter().enumerate() {
            let mut w = HashingWriter {
                out,
                len: 0,
                sha256: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            };
            for piece in data.chunks(65_552) {
                w.write_all(piece).unwrap();
            }
            let (bytes, digest) = w.finish();
            assert!(bytes == data, "start {i}");
            assert_eq!(digest.as_ref(), sha256(&data), "start {i}");
        }
    }

    #[test]
    fn a_payload_is_judged_no_later_than_a_day_after_the_relay_had_it() {
        let day = 86_400;
        let t = |s: i64| prost_types::Timestamp {
            seconds: 1_780_000_000 + s,
            nanos: 0,
        };
        let at = |s: i64| {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs((1_780_000_000 + s) as u64)
        };
        let date = |s: i64| {
            time::OffsetDateTime::from_unix_timestamp(1_780_000_000 + s)
                .unwrap()
                .date()
        };
        // Written, accepted and opened the same day: that day.
        assert_eq!(judged_on(Some(t(0)), Some(t(10)), at(20)), date(0));
        // Opened a year later: still the day it was written.
        assert_eq!(judged_on(Some(t(0)), Some(t(10)), at(365 * day)), date(0));
        // The sender's clock five days fast: a day after the relay accepted it.
        assert_eq!(judged_on(Some(t(5 * day)), Some(t(0)), at(0)), date(day));
        // A receiver whose clock runs three days slow: still the day it was written (a slow
        // receiver must not refuse for good what was valid when written).
        assert_eq!(
            judged_on(Some(t(3 * day)), Some(t(3 * day)), at(0)),
            date(3 * day)
        );
        // Nothing dated: the receiver's tomorrow at the latest.
        assert_eq!(judged_on(None, None, at(0)), date(day));
    }
}
