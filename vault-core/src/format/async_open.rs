//! Opening a stream that arrives as async chunks (an object store's GET).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use super::layout::RangePlan;
use super::open::Opener;
use crate::error::{Error, FormatError, Result};

/// Opens the ciphertext of `plan` (exactly the stream bytes
/// [`RangePlan::ciphertext`], arriving in chunks of any size) and yields the
/// requested plaintext, one item per segment, each only after that
/// segment's tag verified.
///
/// Input that ends early, or carries bytes beyond the plan, ends the output
/// with [`Error::Authentication`]; an input error is passed on. After an
/// error the stream ends. Memory is one segment plus one input chunk.
pub fn open_stream<S>(
    opener: Opener,
    plan: RangePlan,
    input: S,
) -> impl Stream<Item = Result<Bytes>> + Send
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin,
{
    let next = plan.segments().start;
    let skip = plan.skip();
    let remaining = plan.len();
    OpenStream {
        opener,
        plan,
        input,
        buf: BytesMut::new(),
        next,
        skip,
        remaining,
        finished: false,
    }
}

struct OpenStream<S> {
    opener: Opener,
    plan: RangePlan,
    input: S,
    buf: BytesMut,
    next: u64,
    skip: u64,
    remaining: u64,
    finished: bool,
}

impl<S> OpenStream<S> {
    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes>>> {
        self.finished = true;
        zeroize::Zeroize::zeroize(&mut self.buf[..]);
        self.buf.clear();
        Poll::Ready(Some(Err(e)))
    }
}

impl<S> Stream for OpenStream<S>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            let layout = *this.plan.layout();
            if this.next == this.plan.segments().end {
                // Every covering segment is out: the input must end here.
                if !this.buf.is_empty() {
                    return this.fail(Error::Authentication);
                }
                match Pin::new(&mut this.input).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        this.finished = true;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Ok(c))) if c.is_empty() => continue,
                    Poll::Ready(Some(Ok(_))) => return this.fail(Error::Authentication),
                    Poll::Ready(Some(Err(e))) => return this.fail(e),
                }
            }
            let r = layout.segment_ciphertext_range(this.next);
            let need = (r.end - r.start) as usize;
            if this.buf.len() >= need {
                let mut seg = this.buf.split_to(need);
                let index = match u32::try_from(this.next) {
                    Ok(i) => i,
                    Err(_) => return this.fail(FormatError::TooLong.into()),
                };
                let last = this.next + 1 == layout.segments();
                let plen = match this.opener.open_segment(index, last, &mut seg) {
                    Ok(n) => n,
                    Err(e) => return this.fail(e),
                };
                let skip = this.skip as usize;
                let want = (this.remaining as usize).min(plen.saturating_sub(skip));
                this.next += 1;
                this.skip = 0;
                this.remaining -= want as u64;
                if want > 0 {
                    return Poll::Ready(Some(Ok(seg.freeze().slice(skip..skip + want))));
                }
                continue;
            }
            match Pin::new(&mut this.input).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.buf.is_empty() {
                        // Take the chunk's buffer when we hold its only
                        // reference (segments are then opened in place in
                        // it, without a copy).
                        this.buf = chunk
                            .try_into_mut()
                            .unwrap_or_else(|c| BytesMut::from(&c[..]));
                    } else {
                        this.buf.extend_from_slice(&chunk);
                    }
                }
                Poll::Ready(Some(Err(e))) => return this.fail(e),
                Poll::Ready(None) => return this.fail(Error::Authentication),
            }
        }
    }
}
