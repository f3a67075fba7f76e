//! The CPU side of an upload, on a blocking thread: the records streamed from the spool
//! file in chunks, each chunk's TACs verified on all cores (`std::thread::scope`), the
//! sequential checks (order, amounts, in-batch duplicates, journal) in order, and each
//! chunk handed to the database side through a bounded channel, so memory stays bounded
//! whatever the batch's size.

use std::fs::File;
use std::io::BufReader;
use std::num::NonZeroUsize;
use std::path::Path;

use purse::clearing::{BatchHead, Problem, StreamVerifier};
use purse::keys::IssuerKeys;
use purse::settlement::BatchTx;
use purse::CloseSeq;
use tokio::sync::mpsc;

/// Records per chunk: large enough to spread over the cores and fill many INSERTs.
pub const CHUNK: usize = 8192;

/// Records of the batch and the problems the verifier found in them (the first chunk
/// carries the problems of the batch as a whole and no records).
pub struct Chunk {
    pub first_index: usize,
    pub records: Vec<BatchTx>,
    pub problems: Vec<Problem>,
}

/// Why the records could not be read to the end.
#[derive(Debug)]
pub enum Stop {
    /// The batch is not well-formed JSON of the format.
    Parse(String),
    /// The database side went away (it failed, and says why).
    Closed,
}

/// Streams the records of the batch at `path`; returns the problems of the journal and
/// the totals, found after the last record.
pub fn run(
    path: &Path,
    head: &BatchHead,
    keys: &IssuerKeys,
    last_close_seq: CloseSeq,
    out: mpsc::Sender<Chunk>,
) -> Result<Vec<Problem>, Stop> {
    let (mut verifier, problems) = StreamVerifier::new(head, keys, last_close_seq);
    send(
        &out,
        Chunk {
            first_index: 0,
            records: Vec::new(),
            problems,
        },
    )?;
    let file = File::open(path).map_err(|e| Stop::Parse(format!("reading the upload: {e}")))?;
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut pending: Vec<BatchTx> = Vec::with_capacity(CHUNK);
    let mut closed = false;
    let flush = |verifier: &mut StreamVerifier, records: Vec<BatchTx>| -> Result<(), Stop> {
        let chunk = check(verifier, records, threads);
        send(&out, chunk)
    };
    let read =
        crate::intake::parse::stream_records(BufReader::with_capacity(1 << 16, file), |tx| {
            pending.push(tx);
            if pending.len() == CHUNK {
                let records = std::mem::replace(&mut pending, Vec::with_capacity(CHUNK));
                if flush(&mut verifier, records).is_err() {
                    closed = true;
                    return Err("the database side stopped".into());
                }
            }
            Ok(())
        });
    if closed {
        return Err(Stop::Closed);
    }
    read.map_err(Stop::Parse)?;
    if !pending.is_empty() {
        flush(&mut verifier, pending)?;
    }
    let mut finish = Vec::new();
    verifier.finish(&mut finish);
    Ok(finish)
}

fn send(out: &mpsc::Sender<Chunk>, chunk: Chunk) -> Result<(), Stop> {
    out.blocking_send(chunk).map_err(|_| Stop::Closed)
}

/// The checks of one chunk: TACs in parallel, then the rest in order; each record's
/// problems stay together, in record order.
fn check(v: &mut StreamVerifier, records: Vec<BatchTx>, threads: usize) -> Chunk {
    let first_index = v.next_index();
    let per = records.len().div_ceil(threads).max(1);
    let shared: &StreamVerifier = v;
    let tacs: Vec<Option<Problem>> = std::thread::scope(|s| {
        let parts: Vec<_> = records
            .chunks(per)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, tx)| shared.check_tac(first_index + c * per + i, tx))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| {
                // A check that panicked must not pass for a verified TAC.
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    let mut problems = Vec::new();
    for (i, tx) in records.iter().enumerate() {
        if let Some(Some(p)) = tacs.get(i) {
            problems.push(p.clone());
        }
        v.push(tx, &mut problems);
    }
    Chunk {
        first_index,
        records,
        problems,
    }
}
