//! Benchmark driver: the stream format on its own, file to file, as a user
//! would run `age`, `gpg` or `openssl enc` (used by `benches/run.py`).
//!
//! - `seal_file seal KEYFILE IN OUT`: reads IN and writes the sealed stream
//!   to OUT (`/dev/null` for a discarding sink).
//! - `seal_file open KEYFILE IN OUT`: opens the sealed stream IN (checking
//!   every segment's tag) and writes the plaintext to OUT.
//! - `seal-1t` and `open-1t`: the same on one thread.
//!
//! `seal` runs one worker per core. Each reads its 1 MiB chunks of IN with
//! positioned reads and seals them as runs of segments
//! ([`Sealer::into_runs`]); the main thread writes the chunks in order.
//! Copying the input out of the page cache, which costs more than sealing
//! it, is thus spread over the cores too. At most four chunks are in flight,
//! in recycled buffers, so memory stays bounded. IN must not change while
//! it is sealed (the length is checked before and after).
//!
//! `open` reads IN on a second thread, 1 MiB at a time and at most four
//! buffers ahead, so the read overlaps the opening. The `-1t` modes read
//! with plain 1 MiB `read` calls in line. KEYFILE holds a 256-bit data key
//! as 64 hex digits. The default AEAD backend, the default segment size and
//! a fixed stream context.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use vault_core::aead::Backend;
use vault_core::format::{
    OpeningReader, SealParams, Sealer, SealingWriter, SegmentRun, SegmentSize, StreamContext,
};
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
        "seal" => seal_parallel(inp, out, Sealer::new(&key, &ctx, params).map_err(v)?)?,
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

/// Seals `inp` into `out` on one worker per core (see the module
/// documentation).
fn seal_parallel(inp: File, mut out: File, sealer: Sealer) -> Result<(), String> {
    let s = |e: std::io::Error| e.to_string();
    let v = |e: vault_core::Error| e.to_string();
    let len = inp.metadata().map_err(s)?.len();
    let chunks = len.div_ceil(BUF as u64).max(1);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut issuer, runs) = sealer.into_runs().map_err(v)?;
    out.write_all(runs.header()).map_err(s)?;
    let (inp, runs) = (&inp, &runs);
    std::thread::scope(|scope| {
        let mut work = Vec::new();
        let mut done = Vec::new();
        for _ in 0..workers {
            let (work_tx, work_rx) = sync_channel::<(u64, SegmentRun, Vec<u8>)>(AHEAD);
            let (done_tx, done_rx) = sync_channel::<Result<Vec<u8>, String>>(AHEAD);
            work.push(work_tx);
            done.push(done_rx);
            scope.spawn(move || {
                let mut pt = zeroize::Zeroizing::new(Vec::new());
                for (offset, run, mut ct) in work_rx {
                    pt.resize(run.plaintext_len(), 0);
                    ct.resize(run.ciphertext_len(), 0);
                    let r = inp
                        .read_exact_at(&mut pt, offset)
                        .map_err(|e| format!("input changed while sealing: {e}"))
                        .and_then(|()| runs.seal(run, &pt, &mut ct).map_err(v));
                    let failed = r.is_err();
                    if done_tx.send(r.map(|()| ct)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        // Chunk k goes to worker k % workers, whose results come back in
        // order; at most AHEAD chunks are out at once. Returning drops the
        // work senders, which ends the workers.
        let mut free: Vec<Vec<u8>> = (0..AHEAD).map(|_| Vec::new()).collect();
        let mut issued = 0u64;
        for k in 0..chunks {
            while issued < chunks {
                let Some(buf) = free.pop() else { break };
                let offset = issued * BUF as u64;
                let n = (len - offset).min(BUF as u64) as usize;
                let run = issuer.next_run(n, issued + 1 == chunks).map_err(v)?;
                issued += 1;
                // A worker stops only after sending its error, which the
                // in-order receive below reports.
                if work[((issued - 1) % workers as u64) as usize]
                    .send((offset, run, buf))
                    .is_err()
                {
                    break;
                }
            }
            let ct = done[(k % workers as u64) as usize]
                .recv()
                .map_err(|_| "a sealing worker stopped".to_string())??;
            out.write_all(&ct).map_err(s)?;
            free.push(ct);
        }
        Ok::<(), String>(())
    })?;
    if inp.metadata().map_err(s)?.len() != len {
        return Err("input changed while sealing".into());
    }
    out.flush().map_err(s)
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
