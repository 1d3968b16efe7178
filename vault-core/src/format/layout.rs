//! Where each segment lies, and random access by plaintext range.

use std::io;
use std::ops::Range;

use super::context::StreamContext;
use super::header::{HEADER_LEN, SegmentSize};
use super::open::Opener;
use crate::aead::{Backend, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::secret::DataKey;

/// Most segments a stream may have (the nonce holds a 32-bit index).
pub const MAX_SEGMENTS: u64 = 1 << 32;

/// The geometry of a stream of known total length: how many segments, where
/// each lies, and how long the plaintext is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    segment_size: u64,
    segments: u64,
    plaintext_len: u64,
    ciphertext_len: u64,
}

impl Layout {
    /// The layout of a stream whose total length (header included) is
    /// `ciphertext_len`.
    ///
    /// Fails with [`FormatError::HeaderTruncated`] below the header length,
    /// [`FormatError::TooLong`] past [`MAX_SEGMENTS`], and
    /// [`Error::Authentication`] for a body that no writer produces: shorter
    /// than one tag, or a final segment that holds only a tag after a
    /// non-empty one (the signs of a truncated or extended stream).
    pub fn from_ciphertext_len(segment_size: SegmentSize, ciphertext_len: u64) -> Result<Self> {
        let s = u64::from(segment_size.get());
        let full = s + TAG_LEN as u64;
        let body = ciphertext_len
            .checked_sub(HEADER_LEN as u64)
            .ok_or(FormatError::HeaderTruncated)?;
        if body < TAG_LEN as u64 {
            return Err(Error::Authentication);
        }
        let segments = body.div_ceil(full);
        if segments > MAX_SEGMENTS {
            return Err(FormatError::TooLong.into());
        }
        let last_ct = body - (segments - 1) * full;
        if last_ct == TAG_LEN as u64 && segments > 1 || last_ct < TAG_LEN as u64 {
            return Err(Error::Authentication);
        }
        Ok(Self {
            segment_size: s,
            segments,
            plaintext_len: body - segments * TAG_LEN as u64,
            ciphertext_len,
        })
    }

    /// The layout a plaintext of `plaintext_len` bytes will have.
    pub fn for_plaintext_len(segment_size: SegmentSize, plaintext_len: u64) -> Result<Self> {
        let s = u64::from(segment_size.get());
        let segments = plaintext_len.div_ceil(s).max(1);
        if segments > MAX_SEGMENTS {
            return Err(FormatError::TooLong.into());
        }
        Ok(Self {
            segment_size: s,
            segments,
            plaintext_len,
            ciphertext_len: HEADER_LEN as u64 + plaintext_len + segments * TAG_LEN as u64,
        })
    }

    /// Number of segments (at least 1).
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Plaintext length in bytes.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Total stream length in bytes, header included.
    pub fn ciphertext_len(&self) -> u64 {
        self.ciphertext_len
    }

    /// Byte range of segment `index` (ciphertext and tag) in the stream;
    /// `index` must be below [`Layout::segments`].
    pub(crate) fn segment_ciphertext_range(&self, index: u64) -> Range<u64> {
        debug_assert!(index < self.segments);
        let full = self.segment_size + TAG_LEN as u64;
        let start = HEADER_LEN as u64 + index * full;
        start..(start + full).min(self.ciphertext_len)
    }

    /// What to fetch and open to serve plaintext bytes `range`: the segments
    /// that cover it, and nothing else.
    pub fn plan(&self, range: Range<u64>) -> Result<RangePlan> {
        if range.start > range.end || range.end > self.plaintext_len {
            return Err(Error::RangeOutOfBounds);
        }
        // An empty range is covered by the segment holding its start (the
        // final segment when it starts at the end), so every read opens at
        // least one segment and a read ending at the end of the plaintext
        // always authenticates the final segment, and with it the length.
        let first = (range.start / self.segment_size).min(self.segments - 1);
        let last = if range.is_empty() {
            first
        } else {
            (range.end - 1) / self.segment_size
        };
        let ciphertext =
            self.segment_ciphertext_range(first).start..self.segment_ciphertext_range(last).end;
        Ok(RangePlan {
            layout: *self,
            segments: first..last + 1,
            ciphertext,
            skip: range.start - first * self.segment_size,
            len: range.end - range.start,
        })
    }
}

/// The segments covering a plaintext range, and where they lie. Made only by
/// [`Layout::plan`], so its fields always agree with its layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangePlan {
    layout: Layout,
    segments: Range<u64>,
    ciphertext: Range<u64>,
    skip: u64,
    len: u64,
}

impl RangePlan {
    /// Byte range of the covering segments in the stream: the only bytes to
    /// fetch.
    pub fn ciphertext(&self) -> Range<u64> {
        self.ciphertext.clone()
    }

    /// Indices of the covering segments.
    pub fn segments(&self) -> Range<u64> {
        self.segments.clone()
    }

    /// Number of plaintext bytes the plan yields.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plan yields no plaintext (it still opens one segment).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Plaintext bytes to skip at the start of the first segment.
    pub(crate) fn skip(&self) -> u64 {
        self.skip
    }

    /// The layout the plan was made from.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Opens the fetched `ciphertext` (exactly the bytes of
    /// [`RangePlan::ciphertext`]) and returns the requested plaintext.
    pub fn open(&self, opener: &Opener, ciphertext: &mut [u8]) -> Result<Vec<u8>> {
        if ciphertext.len() as u64 != self.ciphertext.end - self.ciphertext.start
            || u64::from(opener.header().segment_size().get()) != self.layout.segment_size
        {
            return Err(Error::InvalidArgument(
                "ciphertext does not match the range plan",
            ));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(self.len as usize)
            .map_err(|_| Error::InvalidArgument("range too large for memory"))?;
        let mut offset = 0usize;
        let mut skip = self.skip as usize;
        for i in self.segments.clone() {
            let r = self.layout.segment_ciphertext_range(i);
            let n = (r.end - r.start) as usize;
            let seg = &mut ciphertext[offset..offset + n];
            let index = u32::try_from(i).map_err(|_| FormatError::TooLong)?;
            let plen = opener.open_segment(index, i + 1 == self.layout.segments(), seg)?;
            let want = (self.len as usize - out.len()).min(plen.saturating_sub(skip));
            out.extend_from_slice(&seg[skip..skip + want]);
            skip = 0;
            offset += n;
        }
        Ok(out)
    }
}

/// A source of ciphertext bytes by position (a file, a buffer, an object
/// store's ranged GET behind a blocking adapter).
pub trait ReadAt {
    /// Total length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; a short source is an error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> io::Result<u64> {
        self.as_slice().size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl ReadAt for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

/// Random access to a stream: opening it reads the header and checks the
/// key commitment; each range read fetches and opens only the segments
/// covering the range.
pub struct SeekableOpener<R: ReadAt> {
    source: R,
    opener: Opener,
    layout: Layout,
}

impl<R: ReadAt> std::fmt::Debug for SeekableOpener<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekableOpener")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<R: ReadAt> SeekableOpener<R> {
    /// Reads the header of `source` and checks it against `key` and
    /// `context`.
    pub fn new(
        source: R,
        key: &DataKey,
        context: &StreamContext,
        backend: Backend,
    ) -> Result<Self> {
        let size = source.size().map_err(Error::from)?;
        if size < HEADER_LEN as u64 {
            return Err(FormatError::HeaderTruncated.into());
        }
        let mut header = [0u8; HEADER_LEN];
        source.read_exact_at(&mut header, 0).map_err(Error::from)?;
        let opener = Opener::new(key, context, &header, backend)?;
        let layout = Layout::from_ciphertext_len(opener.header().segment_size(), size)?;
        Ok(Self {
            source,
            opener,
            layout,
        })
    }

    /// The stream's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The plaintext length, computed from the stream's length. It is
    /// authenticated by any read that reaches the end of the plaintext (which
    /// opens the final segment); a read that stops earlier proves only its
    /// own bytes, and a stream cut short fails at its new final segment.
    pub fn plaintext_len(&self) -> u64 {
        self.layout.plaintext_len()
    }

    /// The opener, for the document's metadata cipher.
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// Plaintext bytes `range` (`start..end`, end exclusive).
    pub fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>> {
        let plan = self.layout.plan(range)?;
        let n = usize::try_from(plan.ciphertext.end - plan.ciphertext.start)
            .map_err(|_| Error::InvalidArgument("range too large for memory"))?;
        // The length comes from the source and is not yet authenticated:
        // never let it abort the process through a failed allocation.
        let mut ct = Vec::new();
        ct.try_reserve_exact(n)
            .map_err(|_| Error::InvalidArgument("range too large for memory"))?;
        ct.resize(n, 0);
        self.source
            .read_exact_at(&mut ct, plan.ciphertext.start)
            .map_err(Error::from)?;
        plan.open(&self.opener, &mut ct)
    }
}
