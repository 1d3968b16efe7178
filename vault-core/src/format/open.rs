//! Opening: the sans-I/O [`Opener`] and the streaming [`OpeningReader`].

use std::io::{self, Read};

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::context::StreamContext;
use super::derive::StreamKdf;
use super::header::{HEADER_LEN, Header};
use super::layout::Layout;
use super::metadata::MetadataCipher;
use super::nonce::segment_nonce;
use super::seal::for_each_segment_parallel;
use crate::aead::{Aead, Backend, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::secret::DataKey;

/// Opens the segments of one stream after its header has been checked.
///
/// Constructing an `Opener` parses the header and verifies the key
/// commitment in constant time; no segment key exists before that check
/// passes. Every failure of authentication is [`Error::Authentication`].
pub struct Opener {
    aead: Box<dyn Aead>,
    metadata: MetadataCipher,
    header: Header,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("segment_size", &self.header.segment_size())
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Parses `header` (its first [`HEADER_LEN`] bytes), derives the stream
    /// keys for `key` and `context`, and checks the key commitment.
    pub fn new(
        key: &DataKey,
        context: &StreamContext,
        header: &[u8],
        backend: Backend,
    ) -> Result<Self> {
        let header = Header::parse(header)?;
        let prefix = Header::prefix(header.segment_size(), header.salt());
        let kdf = StreamKdf::new(key, header.salt(), &prefix, context);
        kdf.verify_commitment(header.commitment())?;
        Ok(Self {
            aead: kdf.segment_cipher(backend)?,
            metadata: MetadataCipher::new(kdf.metadata_cipher(backend)?),
            header,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The cipher for this document's metadata fields (its file name).
    pub fn metadata(&self) -> &MetadataCipher {
        &self.metadata
    }

    /// Opens segment `index` in place. `ct_and_tag` is the segment's
    /// ciphertext followed by its tag; on success its first `n` bytes are the
    /// plaintext and `n` is returned. On failure the buffer is zeroed.
    ///
    /// Rejected without decrypting: a segment shorter than a tag, longer than
    /// a full segment, a non-final segment that is not full, and an empty
    /// final segment anywhere but at index 0 (writers never produce one).
    pub(crate) fn open_segment(
        &self,
        index: u32,
        last: bool,
        ct_and_tag: &mut [u8],
    ) -> Result<usize> {
        let len = ct_and_tag.len();
        if !self.segment_well_formed(index, last, len) {
            ct_and_tag.fill(0);
            return Err(Error::Authentication);
        }
        let (ct, tag) = ct_and_tag.split_at_mut(len - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        self.aead
            .open_in_place(&segment_nonce(index, last), &[], ct, &t)?;
        Ok(len - TAG_LEN)
    }
}

/// Opens a whole in-memory stream into a new buffer.
pub fn open_to_vec(
    key: &DataKey,
    context: &StreamContext,
    stream: &[u8],
    backend: Backend,
) -> Result<Vec<u8>> {
    let opener = Opener::new(key, context, stream, backend)?;
    let layout = Layout::from_ciphertext_len(opener.header().segment_size(), stream.len() as u64)?;
    let plen = usize::try_from(layout.plaintext_len())
        .map_err(|_| Error::InvalidArgument("stream too large for memory"))?;
    let mut out = vec![0u8; plen];
    opener.open_into(stream, &mut out, 1)?;
    Ok(out)
}

impl Opener {
    /// Opens the whole `stream` (header included, as given to
    /// [`Opener::new`]) into `out`, which must be exactly as long as the
    /// plaintext, using up to `threads` threads. On any failure `out` is
    /// zeroed entirely, so no plaintext of a stream that fails is left behind.
    pub fn open_into(&self, stream: &[u8], out: &mut [u8], threads: usize) -> Result<()> {
        let same_header: bool = stream
            .get(..HEADER_LEN)
            .is_some_and(|h| h.ct_eq(&self.header.to_bytes()).into());
        if !same_header {
            out.fill(0);
            return Err(Error::Authentication);
        }
        let layout = Layout::from_ciphertext_len(self.header.segment_size(), stream.len() as u64)?;
        if out.len() as u64 != layout.plaintext_len() {
            return Err(Error::InvalidArgument("output buffer has the wrong length"));
        }
        let s = self.header.segment_size().usize();
        let n = layout.segments();
        let r = for_each_segment_parallel(out, s, n, threads, |i, pt| {
            let r = layout.segment_ciphertext_range(i);
            let ct = &stream[r.start as usize..r.end as usize];
            let index = u32::try_from(i).map_err(|_| FormatError::TooLong)?;
            self.open_segment_to(index, i + 1 == n, ct, pt)
        });
        if r.is_err() {
            out.fill(0);
        }
        r
    }

    /// Out-of-place variant of [`Opener::open_segment`].
    pub(crate) fn open_segment_to(
        &self,
        index: u32,
        last: bool,
        ct_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        if !self.segment_well_formed(index, last, ct_and_tag.len())
            || out.len() + TAG_LEN != ct_and_tag.len()
        {
            out.fill(0);
            return Err(Error::Authentication);
        }
        self.aead
            .open_to(&segment_nonce(index, last), &[], ct_and_tag, out)
    }

    fn segment_well_formed(&self, index: u32, last: bool, len: usize) -> bool {
        let full = self.header.segment_size().usize() + TAG_LEN;
        if last {
            (TAG_LEN..=full).contains(&len) && (len > TAG_LEN || index == 0)
        } else {
            len == full
        }
    }
}

/// A `std::io::Read` that opens a stream read from `inner`.
///
/// It releases a segment's plaintext only after that segment's tag has
/// verified. A segment is known to be the last one only when `inner` reports
/// end of file right after it, so the reader looks one byte ahead: a stream
/// cut at any point, including exactly at a segment boundary, ends in an
/// [`Error::Authentication`], never in a clean end of file, and appended
/// bytes are detected the same way. Memory use is one segment plus one byte.
/// Errors travel through `std::io::Error`; `vault_core::Error::from` recovers
/// them. After an error every later read fails with [`Error::Poisoned`].
pub struct OpeningReader<R: Read> {
    inner: R,
    opener: Opener,
    buf: Vec<u8>,
    /// Plaintext of the current segment still to be returned: `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// The byte read ahead of the current segment, if any.
    carry: Option<u8>,
    next_index: u64,
    done: bool,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for OpeningReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningReader")
            .field("next_index", &self.next_index)
            .field("done", &self.done)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<R: Read> OpeningReader<R> {
    /// Reads and checks the header from `inner`.
    pub fn new(
        mut inner: R,
        key: &DataKey,
        context: &StreamContext,
        backend: Backend,
    ) -> Result<Self> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut header)?;
        if got < HEADER_LEN {
            return Err(FormatError::HeaderTruncated.into());
        }
        let opener = Opener::new(key, context, &header, backend)?;
        let full = opener.header().segment_size().usize() + TAG_LEN;
        Ok(Self {
            inner,
            opener,
            buf: vec![0u8; full + 1],
            pos: 0,
            end: 0,
            carry: None,
            next_index: 0,
            done: false,
            failed: false,
        })
    }

    /// The opener, for the document's metadata cipher.
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// Reads the next segment's ciphertext into `buf`; returns its length,
    /// whether it is the final segment, and its index.
    fn fetch_segment(&mut self) -> Result<(usize, bool, u32)> {
        let full = self.opener.header().segment_size().usize() + TAG_LEN;
        let mut filled = 0;
        if let Some(b) = self.carry.take() {
            self.buf[0] = b;
            filled = 1;
        }
        filled += read_full(&mut self.inner, &mut self.buf[filled..=full])?;
        let last = filled <= full;
        if !last {
            self.carry = Some(self.buf[full]);
            filled = full;
        }
        // A body that ends exactly after a non-final segment (or has no
        // segment at all) is truncated.
        if filled == 0 {
            return Err(Error::Authentication);
        }
        let index = u32::try_from(self.next_index).map_err(|_| FormatError::TooLong)?;
        Ok((filled, last, index))
    }

    /// Fetches and opens the next segment, straight into `out` when it has
    /// room for the whole segment (returning the count), else into `buf`
    /// (returning 0 with the plaintext in `buf[pos..end]`).
    fn next_segment(&mut self, out: &mut [u8]) -> Result<usize> {
        let (len, last, index) = self.fetch_segment()?;
        let plen = len.checked_sub(TAG_LEN).ok_or(Error::Authentication)?;
        let direct = out.len() >= plen;
        if direct {
            self.opener
                .open_segment_to(index, last, &self.buf[..len], &mut out[..plen])?;
        } else {
            self.opener
                .open_segment(index, last, &mut self.buf[..len])?;
            self.pos = 0;
            self.end = plen;
        }
        self.next_index += 1;
        self.done = last;
        Ok(if direct { plen } else { 0 })
    }
}

impl<R: Read> Drop for OpeningReader<R> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(Error::Poisoned.into_io());
        }
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.end && !self.done {
            match self.next_segment(out) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e) => {
                    self.failed = true;
                    self.buf.fill(0);
                    return Err(e.into_io());
                }
            }
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or `r` reports end of file; returns the count.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from(e)),
        }
    }
    Ok(filled)
}
