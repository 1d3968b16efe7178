//! Benchmark driver: the stream format on its own, file to file, as a user
//! would run `age`, `gpg` or `openssl enc` (used by `benches/run.py`).
//!
//! - `seal_file seal KEYFILE IN OUT`: reads IN and writes the sealed stream
//!   to OUT (`/dev/null` for a discarding sink).
//! - `seal_file open KEYFILE IN OUT`: opens the sealed stream IN (checking
//!   every segment's tag) and writes the plaintext to OUT.
//! - `seal-1t` and `open-1t`: the same on one thread.
//!
//! `seal` and `open` read IN on a second thread, 1 MiB at a time and at
//! most four buffers ahead (recycled, so memory stays bounded), so copying
//! the input out of the page cache overlaps the AEAD work instead of
//! adding to it; the `-1t` modes read with plain 1 MiB `read` calls in
//! line. KEYFILE holds a 256-bit data key as 64 hex digits. The default
//! AEAD backend, the default segment size and a fixed stream context.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use vault_core::aead::Backend;
use vault_core::format::{OpeningReader, SealParams, SealingWriter, SegmentSize, StreamContext};
use vault_core::secret::DataKey;

const BUF: usize = 1 << 20;
const AHEAD: usize = 4;

/// The input, read on its own thread into recycled 1 MiB buffers.
struct ReadAhead {
    full: Receiver<std::io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    /// The buffer being consumed by `Read::read`, and how far.
    cur: Vec<u8>,
    pos: usize,
}

impl ReadAhead {
    fn new(mut file: File) -> Self {
        let (full_tx, full) = sync_channel::<std::io::Result<Vec<u8>>>(AHEAD);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
        for _ in 0..AHEAD + 2 {
            let _ = empty.send(vec![0u8; BUF]);
        }
        std::thread::spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                buf.resize(BUF, 0);
                let mut n = 0;
                let res = loop {
                    match file.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == BUF {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let done = n == 0 || res.is_err();
                if full_tx.send(res.map(|()| buf)).is_err() || done {
                    return;
                }
            }
        });
        ReadAhead {
            full,
            empty,
            cur: Vec::new(),
            pos: 0,
        }
    }

    /// The next filled buffer; an empty one at the end of the file.
    fn next(&mut self) -> std::io::Result<Vec<u8>> {
        self.full.recv().unwrap_or_else(|_| Ok(Vec::new()))
    }

    fn recycle(&self, buf: Vec<u8>) {
        let _ = self.empty.send(buf);
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.cur.len() {
            let next = self.next()?;
            let old = std::mem::replace(&mut self.cur, next);
            self.recycle(old);
            self.pos = 0;
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, keyfile, input, output] = args.as_slice() else {
        return Err("usage: seal_file seal|open|seal-1t|open-1t KEYFILE IN OUT".into());
    };
    let s = |e: std::io::Error| e.to_string();
    let v = |e: vault_core::Error| e.to_string();
    let hexkey = std::fs::read_to_string(keyfile).map_err(s)?;
    let bytes = zeroize::Zeroizing::new(hex::decode(hexkey.trim()).map_err(|e| e.to_string())?);
    let key = DataKey::from_slice(&bytes).map_err(v)?;
    let ctx = StreamContext::new(b"bench", b"applicant", b"document", b"other").map_err(v)?;
    let params = SealParams {
        segment_size: SegmentSize::DEFAULT,
        backend: Backend::default(),
    };
    let inp = File::open(input).map_err(s)?;
    let out = File::create(output).map_err(s)?;
    match mode.as_str() {
        "seal" => {
            let mut ahead = ReadAhead::new(inp);
            let mut w = SealingWriter::new(out, &key, &ctx, params).map_err(v)?;
            loop {
                let buf = ahead.next().map_err(s)?;
                if buf.is_empty() {
                    break;
                }
                w.write_all(&buf).map_err(s)?;
                ahead.recycle(buf);
            }
            w.finish().map_err(v)?.flush().map_err(s)?;
        }
        "seal-1t" => {
            let mut inp = inp;
            let mut buf = vec![0u8; BUF];
            let mut w = SealingWriter::new(out, &key, &ctx, params).map_err(v)?;
            loop {
                let n = inp.read(&mut buf).map_err(s)?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n]).map_err(s)?;
            }
            w.finish().map_err(v)?.flush().map_err(s)?;
        }
        "open" => copy_out(
            OpeningReader::new(ReadAhead::new(inp), &key, &ctx, params.backend).map_err(v)?,
            out,
        )?,
        "open-1t" => copy_out(
            OpeningReader::new(
                BufReader::with_capacity(BUF, inp),
                &key,
                &ctx,
                params.backend,
            )
            .map_err(v)?,
            out,
        )?,
        _ => return Err("mode must be seal, open, seal-1t or open-1t".into()),
    }
    Ok(())
}

fn copy_out(mut r: impl Read, mut out: File) -> Result<(), String> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seal_file: {e}");
        std::process::exit(1);
    }
}
