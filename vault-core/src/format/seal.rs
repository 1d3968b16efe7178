//! Sealing: the sans-I/O [`Sealer`] and its adapters.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::context::StreamContext;
use super::derive::StreamKdf;
use super::header::{HEADER_LEN, Header, SALT_LEN, SegmentSize};
use super::layout::{Layout, MAX_SEGMENTS};
use super::metadata::MetadataCipher;
use super::nonce::segment_nonce;
use crate::aead::{Aead, Backend, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::secret::DataKey;

/// Choices a writer makes for a new stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealParams {
    /// Plaintext bytes per segment (recorded in the header).
    pub segment_size: SegmentSize,
    /// The AES-256-GCM implementation.
    pub backend: Backend,
}

/// Seals a stream segment by segment, without doing any I/O itself.
///
/// Feed plaintext with [`Sealer::push`]; each completed segment's ciphertext
/// is handed to the `emit` callback. A full segment is sealed only once more
/// plaintext arrives (until then it may still be the last one), so at most
/// one segment (`segment_size + 16` bytes) is buffered. The stream is valid
/// only after [`Sealer::finish`] has sealed the final segment with the last
/// flag set: output of a sealer dropped unfinished fails to authenticate.
/// The header ([`Sealer::header`]) must be written before the first segment.
pub struct Sealer {
    aead: Box<dyn Aead>,
    metadata: MetadataCipher,
    header: [u8; HEADER_LEN],
    segment_size: usize,
    /// Plaintext of the current, not yet sealed, segment.
    buf: Vec<u8>,
    /// Ciphertext of the segment being emitted.
    out: Vec<u8>,
    next_index: u32,
    /// Set once segment `u32::MAX` has been sealed as not-last: no further
    /// segment can be numbered.
    exhausted: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("segment_size", &self.segment_size)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Starts a stream under `key` bound to `context`, with a fresh random
    /// salt.
    pub fn new(key: &DataKey, context: &StreamContext, params: SealParams) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
        Self::with_salt(key, context, params, salt)
    }

    /// Starts a stream with a given salt. Crate-private: a salt must be
    /// random, and only the test-vector generator fixes it.
    pub(crate) fn with_salt(
        key: &DataKey,
        context: &StreamContext,
        params: SealParams,
        salt: [u8; SALT_LEN],
    ) -> Result<Self> {
        let prefix = Header::prefix(params.segment_size, &salt);
        let kdf = StreamKdf::new(key, &salt, &prefix, context);
        let header = Header::new(params.segment_size, salt, kdf.commitment()).to_bytes();
        let segment_size = params.segment_size.usize();
        Ok(Self {
            aead: kdf.segment_cipher(params.backend)?,
            metadata: MetadataCipher::new(kdf.metadata_cipher(params.backend)?),
            header,
            segment_size,
            buf: Vec::with_capacity(segment_size),
            out: vec![0u8; segment_size + TAG_LEN],
            next_index: 0,
            exhausted: false,
        })
    }

    /// The stream's header bytes.
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// The cipher for this document's metadata fields (its file name).
    pub fn metadata(&self) -> &MetadataCipher {
        &self.metadata
    }

    /// Adds plaintext; `emit` receives each segment completed by it.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let s = self.segment_size;
        while !data.is_empty() {
            if self.buf.len() == s {
                let pending = std::mem::take(&mut self.buf);
                let r = self.seal_segment(&pending, false, &mut emit);
                self.buf = pending;
                self.buf.clear();
                r?;
            }
            if self.buf.is_empty() && data.len() > s {
                // A whole segment with more after it: seal straight from the
                // caller's bytes, without buffering.
                self.seal_segment(&data[..s], false, &mut emit)?;
                data = &data[s..];
                continue;
            }
            let take = (s - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the final segment (possibly empty, if the whole stream is) with
    /// the last flag set and hands it to `emit`.
    pub fn finish(mut self, mut emit: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut pending = std::mem::take(&mut self.buf);
        let r = self.seal_segment(&pending, true, &mut emit);
        zeroize::Zeroize::zeroize(&mut pending);
        r
    }

    /// Seals the whole of `plaintext` into `out`, header included, using up to
    /// `threads` threads (segments are independent, so they can be sealed in
    /// parallel). `out` must be exactly
    /// `Layout::for_plaintext_len(segment_size, plaintext.len()).ciphertext_len()`
    /// bytes. The sealer must be fresh (nothing pushed yet).
    pub fn seal_into(self, plaintext: &[u8], out: &mut [u8], threads: usize) -> Result<()> {
        if !self.is_fresh() {
            return Err(Error::InvalidArgument("seal_into needs a fresh sealer"));
        }
        let seg = SegmentSize::new(self.segment_size as u32)?;
        let layout = Layout::for_plaintext_len(seg, plaintext.len() as u64)?;
        if out.len() as u64 != layout.ciphertext_len() {
            return Err(Error::InvalidArgument("output buffer has the wrong length"));
        }
        let (header, body) = out.split_at_mut(HEADER_LEN);
        header.copy_from_slice(&self.header);
        self.seal_segments(0, true, plaintext, body, threads)
    }

    /// Whether nothing has been pushed yet.
    pub(super) fn is_fresh(&self) -> bool {
        self.next_index == 0 && self.buf.is_empty()
    }

    /// Plaintext bytes per segment.
    pub(super) fn segment_len(&self) -> usize {
        self.segment_size
    }

    /// Seals `plaintext` as the segments numbered from `first` into `out`
    /// (exactly `plaintext.len()` plus one tag per segment), using up to
    /// `threads` threads. `plaintext` is cut into full segments; the final
    /// one may be shorter, or empty only if the whole of `plaintext` is. If
    /// `ends_stream`, the final segment gets the last flag.
    ///
    /// The caller guarantees that no segment index is sealed twice under
    /// this sealer's key: [`Sealer::seal_into`] seals each once, and
    /// [`super::runs`] hands out each index in exactly one run.
    pub(super) fn seal_segments(
        &self,
        first: u64,
        ends_stream: bool,
        plaintext: &[u8],
        out: &mut [u8],
        threads: usize,
    ) -> Result<()> {
        let s = self.segment_size;
        let n = plaintext.len().div_ceil(s).max(1) as u64;
        if out.len() as u64 != plaintext.len() as u64 + n * TAG_LEN as u64 {
            return Err(Error::InvalidArgument("output buffer has the wrong length"));
        }
        if first + n > MAX_SEGMENTS {
            return Err(FormatError::TooLong.into());
        }
        let aead = &*self.aead;
        for_each_segment_parallel(out, s + TAG_LEN, n, threads, |i, ct| {
            let start = (i as usize) * s;
            let pt = &plaintext[start..(start + s).min(plaintext.len())];
            let index = u32::try_from(first + i).map_err(|_| FormatError::TooLong)?;
            aead.seal_to(
                &segment_nonce(index, ends_stream && i + 1 == n),
                &[],
                pt,
                ct,
            )
        })
    }

    fn seal_segment(
        &mut self,
        pt: &[u8],
        last: bool,
        emit: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if self.exhausted {
            return Err(FormatError::TooLong.into());
        }
        let index = self.next_index;
        let ct = &mut self.out[..pt.len() + TAG_LEN];
        self.aead
            .seal_to(&segment_nonce(index, last), &[], pt, ct)?;
        match index.checked_add(1) {
            Some(next) => self.next_index = next,
            None => self.exhausted = true,
        }
        emit(ct)
    }
}

/// Runs `f(segment_index, segment_bytes)` for every index in
/// `0..segments`, where segment `i` is `body[i * full ..]` cut to at most
/// `full` bytes (so the final one may be shorter, or empty for an empty
/// plaintext: it is still visited). Uses up to `threads` scoped threads, each
/// taking a contiguous run of segments, and returns the first error.
pub(crate) fn for_each_segment_parallel<F>(
    body: &mut [u8],
    full: usize,
    segments: u64,
    threads: usize,
    f: F,
) -> Result<()>
where
    F: Fn(u64, &mut [u8]) -> Result<()> + Sync,
{
    let run = |first: u64, count: u64, mut rest: &mut [u8]| -> Result<()> {
        for j in 0..count {
            let take = full.min(rest.len());
            let (seg, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            f(first + j, seg)?;
        }
        Ok(())
    };
    let threads = threads.clamp(1, segments.max(1) as usize) as u64;
    if threads == 1 {
        return run(0, segments, body);
    }
    let per_thread = segments.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut rest = body;
        let mut first = 0u64;
        while first < segments {
            let count = per_thread.min(segments - first);
            let take = (count as usize * full).min(rest.len());
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            let run = &run;
            handles.push(scope.spawn(move || run(first, count, chunk)));
            first += count;
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(Error::InvalidArgument("sealing thread panicked")))
            })
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // The buffered segment is plaintext.
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

/// Seals a whole in-memory plaintext into a new buffer.
pub fn seal_to_vec(
    key: &DataKey,
    context: &StreamContext,
    params: SealParams,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let sealer = Sealer::new(key, context, params)?;
    let layout = Layout::for_plaintext_len(params.segment_size, plaintext.len() as u64)?;
    let len = usize::try_from(layout.ciphertext_len())
        .map_err(|_| Error::InvalidArgument("stream too large for memory"))?;
    let mut out = vec![0u8; len];
    sealer.seal_into(plaintext, &mut out, 1)?;
    Ok(out)
}

/// Seals through the streaming path ([`Sealer::push`] and
/// [`Sealer::finish`]); used by tests to cross-check [`Sealer::seal_into`].
#[cfg(test)]
pub(crate) fn seal_all(mut sealer: Sealer, plaintext: &[u8]) -> Result<Vec<u8>> {
    let segments = plaintext.len().div_ceil(sealer.segment_size).max(1);
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + segments * TAG_LEN);
    out.extend_from_slice(sealer.header());
    sealer.push(plaintext, |ct| {
        out.extend_from_slice(ct);
        Ok(())
    })?;
    sealer.finish(|ct| {
        out.extend_from_slice(ct);
        Ok(())
    })?;
    Ok(out)
}

/// A `std::io::Write` that seals everything written to it into `inner`.
///
/// The header is written on construction. The output is a valid stream only
/// after [`SealingWriter::finish`]; if the writer is dropped unfinished, or a
/// write to `inner` fails, what reached `inner` does not authenticate. After
/// a failed write every later call returns [`Error::Poisoned`].
pub struct SealingWriter<W: Write> {
    sealer: Sealer,
    inner: W,
    poisoned: bool,
}

impl<W: Write> std::fmt::Debug for SealingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingWriter")
            .field("sealer", &self.sealer)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<W: Write> SealingWriter<W> {
    /// Starts a stream into `inner` and writes its header.
    pub fn new(
        mut inner: W,
        key: &DataKey,
        context: &StreamContext,
        params: SealParams,
    ) -> Result<Self> {
        let sealer = Sealer::new(key, context, params)?;
        inner.write_all(sealer.header()).map_err(Error::from)?;
        Ok(Self {
            sealer,
            inner,
            poisoned: false,
        })
    }

    /// The cipher for this document's metadata fields.
    pub fn metadata(&self) -> &MetadataCipher {
        self.sealer.metadata()
    }

    /// The inner writer (what has been written to it so far is not yet a
    /// valid stream).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Seals the final segment, flushes, and returns the inner writer.
    pub fn finish(self) -> Result<W> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let SealingWriter {
            sealer, mut inner, ..
        } = self;
        sealer.finish(|ct| inner.write_all(ct).map_err(Error::from))?;
        inner.flush().map_err(Error::from)?;
        Ok(inner)
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(Error::Poisoned.into_io());
        }
        let inner = &mut self.inner;
        let r = self
            .sealer
            .push(data, |ct| inner.write_all(ct).map_err(Error::from));
        match r {
            Ok(()) => Ok(data.len()),
            Err(e) => {
                self.poisoned = true;
                Err(e.into_io())
            }
        }
    }

    /// Flushes `inner`. Buffered plaintext of the current segment stays
    /// buffered: a segment is sealed only when it is complete.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Seals an async stream of plaintext chunks into a stream of ciphertext
/// chunks: first the header, then one item per sealed segment. The output
/// ends with the final segment only if `input` ends without error; an error
/// from `input` is passed on and ends the output, which then does not
/// authenticate.
pub fn seal_stream<S>(sealer: Sealer, input: S) -> impl Stream<Item = Result<Bytes>> + Send
where
    S: Stream<Item = Result<Bytes>> + Unpin + Send,
{
    let mut queue = VecDeque::new();
    queue.push_back(Bytes::copy_from_slice(sealer.header()));
    SealStream {
        input,
        sealer: Some(sealer),
        queue,
    }
}

struct SealStream<S> {
    input: S,
    sealer: Option<Sealer>,
    queue: VecDeque<Bytes>,
}

impl<S> Stream for SealStream<S>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            let Some(sealer) = this.sealer.as_mut() else {
                return Poll::Ready(None);
            };
            let queue = &mut this.queue;
            let emit = |ct: &[u8]| {
                queue.push_back(Bytes::copy_from_slice(ct));
                Ok(())
            };
            match Pin::new(&mut this.input).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    if let Err(e) = sealer.push(&data, emit) {
                        this.sealer = None;
                        this.queue.clear();
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.sealer = None;
                    this.queue.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    if let Some(sealer) = this.sealer.take() {
                        if let Err(e) = sealer.finish(emit) {
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
            }
        }
    }
}
