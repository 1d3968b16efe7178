//! Sealing one stream on several threads while reading it: runs of
//! segments handed out in order, sealed anywhere, written in order.
//!
//! [`Sealer::push`] seals segment after segment on the caller's thread, and
//! [`Sealer::seal_into`] seals in parallel but needs the whole plaintext in
//! memory. [`Sealer::into_runs`] splits a fresh sealer in two:
//!
//! - [`RunIssuer`] (`&mut`, one owner) numbers the stream: each
//!   [`SegmentRun`] it issues covers the next segment indexes, and the one
//!   issued with `last` set ends the stream;
//! - [`RunSealer`] (`Sync`, shared by reference) seals a run's plaintext into
//!   its ciphertext on whichever thread holds the run.
//!
//! The ciphertext of the runs, concatenated in issue order after the header,
//! is byte for byte the stream [`Sealer::seal_into`] would have made from the
//! same plaintext with the same salt.
//!
//! Invariant: no segment index is sealed twice under one stream's key (in
//! GCM a repeated nonce gives away the authentication key). The issuer hands
//! out each index once; a [`SegmentRun`] is neither `Clone` nor `Copy` and
//! [`RunSealer::seal`] consumes it; a run carries its stream's salt, so it
//! cannot be sealed under another stream's key.
//!
//! ```
//! # use vault_core::format::{SealParams, Sealer, StreamContext};
//! # use vault_core::secret::DataKey;
//! # let key = DataKey::from_slice(&[1; 32])?;
//! # let ctx = StreamContext::new(b"t", b"a", b"d", b"other")?;
//! let (mut issuer, sealer) = Sealer::new(&key, &ctx, SealParams::default())?.into_runs()?;
//! let run = issuer.next_run(5, true)?;
//! let mut out = vec![0u8; run.ciphertext_len()];
//! sealer.seal(run, b"hello", &mut out)?;
//! # Ok::<(), vault_core::Error>(())
//! ```
//!
//! The same with the run sealed a second time, or copied first, does not
//! compile:
//!
//! ```compile_fail,E0382
//! # use vault_core::format::{SealParams, Sealer, StreamContext};
//! # use vault_core::secret::DataKey;
//! # let key = DataKey::from_slice(&[1; 32])?;
//! # let ctx = StreamContext::new(b"t", b"a", b"d", b"other")?;
//! let (mut issuer, sealer) = Sealer::new(&key, &ctx, SealParams::default())?.into_runs()?;
//! let run = issuer.next_run(5, true)?;
//! let mut out = vec![0u8; run.ciphertext_len()];
//! sealer.seal(run, b"hello", &mut out)?;
//! sealer.seal(run, b"other", &mut out)?;
//! # Ok::<(), vault_core::Error>(())
//! ```
//!
//! ```compile_fail,E0599
//! # use vault_core::format::{SealParams, Sealer, StreamContext};
//! # use vault_core::secret::DataKey;
//! # let key = DataKey::from_slice(&[1; 32])?;
//! # let ctx = StreamContext::new(b"t", b"a", b"d", b"other")?;
//! let (mut issuer, sealer) = Sealer::new(&key, &ctx, SealParams::default())?.into_runs()?;
//! let run = issuer.next_run(5, true)?;
//! let copy = run.clone();
//! # Ok::<(), vault_core::Error>(())
//! ```

use super::header::{HEADER_LEN, SALT_AT, SALT_LEN};
use super::layout::MAX_SEGMENTS;
use super::seal::Sealer;
use crate::aead::TAG_LEN;
use crate::error::{Error, FormatError, Result};

/// Segment indexes `first..first + segments` of one stream, to be sealed
/// once by [`RunSealer::seal`].
#[derive(Debug)]
#[must_use = "a run that is never sealed leaves a hole and the stream will not open"]
pub struct SegmentRun {
    salt: [u8; SALT_LEN],
    first: u64,
    segments: u64,
    plaintext_len: usize,
    last: bool,
}

impl SegmentRun {
    /// Plaintext bytes this run seals.
    pub fn plaintext_len(&self) -> usize {
        self.plaintext_len
    }

    /// Ciphertext bytes it produces: the plaintext and one tag per segment.
    pub fn ciphertext_len(&self) -> usize {
        self.plaintext_len + self.segments as usize * TAG_LEN
    }

    /// Whether this run ends the stream.
    pub fn is_last(&self) -> bool {
        self.last
    }
}

/// Hands out the segment indexes of one stream, in order, each once.
#[derive(Debug)]
pub struct RunIssuer {
    salt: [u8; SALT_LEN],
    segment_size: usize,
    next: u64,
    ended: bool,
}

impl RunIssuer {
    /// The next run: `plaintext_len` bytes of plaintext, ending the stream
    /// if `last`.
    ///
    /// A run that does not end the stream must hold whole segments (a
    /// non-zero multiple of the segment size). The last run holds at least
    /// one byte, unless it is the stream's only run (an empty stream).
    /// After the last run, or past 2^32 segments, there are no more.
    pub fn next_run(&mut self, plaintext_len: usize, last: bool) -> Result<SegmentRun> {
        if self.ended {
            return Err(Error::InvalidArgument("the stream's last run was issued"));
        }
        let s = self.segment_size;
        if !last && (plaintext_len == 0 || plaintext_len % s != 0) {
            return Err(Error::InvalidArgument(
                "a run before the last must hold whole segments",
            ));
        }
        if last && plaintext_len == 0 && self.next != 0 {
            return Err(Error::InvalidArgument(
                "only an empty stream ends with an empty run",
            ));
        }
        let segments = plaintext_len.div_ceil(s).max(1) as u64;
        if self.next + segments > MAX_SEGMENTS {
            return Err(FormatError::TooLong.into());
        }
        let run = SegmentRun {
            salt: self.salt,
            first: self.next,
            segments,
            plaintext_len,
            last,
        };
        self.next += segments;
        self.ended = last;
        Ok(run)
    }

    /// Whether the last run has been issued.
    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

/// Seals runs of one stream; share it between threads by reference.
#[derive(Debug)]
pub struct RunSealer {
    sealer: Sealer,
}

impl RunSealer {
    /// The stream's header bytes, to be written before the first run.
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        self.sealer.header()
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.sealer.segment_len()
    }

    /// The cipher for the document's metadata fields.
    pub fn metadata(&self) -> &super::MetadataCipher {
        self.sealer.metadata()
    }

    /// Seals `plaintext` as `run` into `out`, which must be exactly
    /// `run.ciphertext_len()` bytes. Fails, sealing
    /// nothing, if the run belongs to another stream or a length differs;
    /// the run is used up either way.
    pub fn seal(&self, run: SegmentRun, plaintext: &[u8], out: &mut [u8]) -> Result<()> {
        if run.salt[..] != self.sealer.header()[SALT_AT] {
            return Err(Error::InvalidArgument("the run belongs to another stream"));
        }
        if plaintext.len() != run.plaintext_len {
            return Err(Error::InvalidArgument(
                "the plaintext's length differs from the run's",
            ));
        }
        self.sealer
            .seal_segments(run.first, run.last, plaintext, out, 1)
    }
}

impl Sealer {
    /// Splits a fresh sealer (nothing pushed) into the issuer and the sealer
    /// of runs; see the [module documentation](self).
    pub fn into_runs(self) -> Result<(RunIssuer, RunSealer)> {
        if !self.is_fresh() {
            return Err(Error::InvalidArgument("into_runs needs a fresh sealer"));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&self.header()[SALT_AT]);
        let issuer = RunIssuer {
            salt,
            segment_size: self.segment_len(),
            next: 0,
            ended: false,
        };
        Ok((issuer, RunSealer { sealer: self }))
    }
}
