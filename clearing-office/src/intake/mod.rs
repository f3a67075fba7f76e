//! Receiving a batch: the upload spooled ([`spool`]), its head read ([`parse`]), the
//! idempotency rules on (SAM_ID, close_seq) and the body's SHA-256, then the records
//! streamed through the spec-7 checks ([`verify`]) into ONE database transaction that
//! either accepts the batch with every record or is rolled back, the rejection being
//! recorded on its own ([`decision`]).

pub mod decision;
pub mod parse;
pub mod spool;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use purse::clearing::{Problem, TxRef};
use purse::keys::IssuerKeys;
use purse::settlement::rfc3339;
use tokio::sync::mpsc;

use crate::clones;
use crate::db::batches::{self, BatchRow};
use crate::db::registry::SamRow;
use crate::db::{now, Backend, Db};
use decision::{currency_code, Decision, PayoutLine, ProblemOut, Problems};
use spool::Spooled;

/// Why an upload got no decision.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the batch is not a purse-settlement/1 document: {0}")]
    Invalid(String),
    #[error("this credential belongs to SAM {credential}, the batch to SAM {batch}")]
    OtherSam { credential: String, batch: String },
    #[error(
        "close_seq {0} of this SAM was accepted with another content; a batch accepted is final"
    )]
    Conflict(u32),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub struct Intake {
    pub db: Arc<Db>,
    pub keys: Arc<IssuerKeys>,
}

impl Intake {
    /// Decides on the spooled batch `up` uploaded with `sam`'s credential.
    pub async fn upload(&self, sam: &SamRow, up: &Spooled) -> Result<Decision, IntakeError> {
        let path = up.path().to_path_buf();
        let head = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&path)?;
            Ok::<_, std::io::Error>(parse::read_head(std::io::BufReader::new(f)))
        })
        .await
        .map_err(|e| anyhow!("reading the batch head: {e}"))?
        .context("reading the spooled upload")?
        .map_err(IntakeError::Invalid)?;
        let h = &head.head;
        if h.sam_id != sam.sam_id {
            return Err(IntakeError::OtherSam {
                credential: sam.sam_id.to_hex(),
                batch: h.sam_id.to_hex(),
            });
        }
        // One batch at a time: its duplicate checks see every batch decided before it.
        let _w = self.db.write_lock().await;
        let recorded = self.db.recorded(h.sam_id, h.close_seq).await?;
        if let Some(acc) = recorded.iter().find(|r| r.decision == "accepted") {
            if acc.body_sha256 != up.sha256 {
                return Err(IntakeError::Conflict(h.close_seq.0));
            }
            return Ok(stored(&acc.response)?);
        }
        if let Some(same) = recorded.iter().find(|r| r.body_sha256 == up.sha256) {
            return Ok(stored(&same.response)?);
        }
        let last = self.db.last_close_seq(h.sam_id).await?;
        let received_at = now();
        let mut row = BatchRow {
            sam_id: h.sam_id,
            close_seq: h.close_seq,
            body_sha256: up.sha256.clone(),
            decision: "pending",
            merchant_id: sam.merchant_id.clone(),
            currency: h.currency.numeric(),
            tx_count: 0,
            gross: 0,
            problem_count: 0,
            received_at,
            day: rfc3339(received_at.max(0) as u64)[..10].to_string(),
        };
        let mut problems = Problems::default();
        for p in registration_problems(sam, &head) {
            problems.push(p);
        }
        let started = std::time::Instant::now();
        let mut txn = self.db.begin().await?;
        let batch_id = batches::insert_batch(&mut txn, &row).await?;
        let mut db_time = std::time::Duration::ZERO;

        let (tx_chunks, mut rx) = mpsc::channel::<verify::Chunk>(2);
        let keys = self.keys.clone();
        let path = up.path().to_path_buf();
        let vhead = h.clone();
        let worker =
            tokio::task::spawn_blocking(move || verify::run(&path, &vhead, &keys, last, tx_chunks));
        let mut clone_claims = Vec::new();
        let mut db_failure = None;
        while let Some(chunk) = rx.recv().await {
            row.tx_count += chunk.records.len() as i64;
            row.gross += chunk
                .records
                .iter()
                .map(|t| i64::from(t.total.0))
                .sum::<i64>();
            problems.extend(&chunk.problems);
            if chunk.records.is_empty() {
                continue;
            }
            let t = std::time::Instant::now();
            let step = records_step(
                &mut txn,
                self.db.backend,
                batch_id,
                sam,
                &chunk,
                problems.is_empty(),
            )
            .await;
            db_time += t.elapsed();
            match step {
                Ok(found) => {
                    for (p, claim) in found {
                        problems.push((&p).into());
                        clone_claims.extend(claim);
                    }
                }
                Err(e) => {
                    db_failure = Some(e);
                    break;
                }
            }
        }
        drop(rx);
        let finish = worker
            .await
            .map_err(|e| anyhow!("the verifier failed: {e}"))?;
        if let Some(e) = db_failure {
            return Err(e.into());
        }
        let finish = match finish {
            Ok(f) => f,
            Err(verify::Stop::Parse(m)) => return Err(IntakeError::Invalid(m)),
            Err(verify::Stop::Closed) => return Err(anyhow!("the verifier stopped early").into()),
        };
        problems.extend(&finish);
        let mut d = Decision {
            batch_id,
            sam_id: h.sam_id.to_hex(),
            close_seq: h.close_seq.0,
            decision: String::new(),
            body_sha256: up.sha256.clone(),
            received_at: rfc3339(received_at.max(0) as u64),
            transaction_count: row.tx_count as u64,
            gross: row.gross as u64,
            currency: currency_code(h.currency),
            unresolved_count: head.unresolved.len() as u64,
            problem_count: problems.count,
            problems: Vec::new(),
            payout: None,
        };
        if problems.is_empty() {
            row.decision = "accepted";
            d.decision = "accepted".into();
            d.payout = Some(PayoutLine {
                merchant_id: sam.merchant_id.clone(),
                currency: d.currency.clone(),
                gross: d.gross,
                fee: 0,
                net: d.gross,
            });
            let t = std::time::Instant::now();
            batches::note_unresolved(&mut txn, batch_id, h.sam_id, &head.unresolved).await?;
            clones::check_balances(&mut txn, batch_id).await?;
            let balances = t.elapsed();
            let json = serde_json::to_string(&d).context("encoding the decision")?;
            batches::set_response(&mut txn, batch_id, &row, &json).await?;
            txn.commit()
                .await
                .context("committing the accepted batch")?;
            tracing::info!(
                "SAM {} close_seq {}: accepted {} records in {:.3?} (inserts {:.3?}, shadow balances {:.3?}, commit {:.3?})",
                h.sam_id,
                h.close_seq,
                row.tx_count,
                started.elapsed(),
                db_time,
                balances,
                t.elapsed() - balances
            );
            return Ok(d);
        }
        // Rejected: nothing of the records stays; the decision is recorded on its own.
        txn.rollback()
            .await
            .context("rolling back a rejected batch")?;
        row.decision = "rejected";
        row.problem_count = problems.count as i64;
        d.decision = "rejected".into();
        d.problems = problems.listed;
        let mut txn = self.db.begin().await?;
        let id = batches::insert_batch(&mut txn, &row).await?;
        d.batch_id = id;
        clones::flag_claims(&mut txn, id, &clone_claims).await?;
        let json = serde_json::to_string(&d).context("encoding the decision")?;
        batches::set_response(&mut txn, id, &row, &json).await?;
        txn.commit().await.context("recording the rejection")?;
        Ok(d)
    }
}

fn stored(response: &str) -> anyhow::Result<Decision> {
    serde_json::from_str(response).context("a stored decision does not parse")
}

/// The office's own checks of a batch against the SAM's registration.
fn registration_problems(sam: &SamRow, head: &parse::Head) -> Vec<ProblemOut> {
    let mut out = Vec::new();
    if head.head.currency != sam.currency {
        out.push(ProblemOut::office(
            "E_SAM_CURRENCY",
            format!(
                "the batch is in currency {}, SAM {} is registered for {}",
                head.head.currency.numeric(),
                sam.sam_id,
                sam.currency.numeric()
            ),
        ));
    }
    if head.head.key_version != sam.key_version {
        out.push(ProblemOut::office(
            "E_SAM_KEY_VERSION",
            format!(
                "the batch's key_version is {}, SAM {} is registered with key version {}",
                head.head.key_version, sam.sam_id, sam.key_version
            ),
        ));
    }
    out
}

/// One chunk's records against the database: inserted while the batch is still clean
/// (a record an earlier batch holds is skipped by the primary key and then looked up),
/// only looked up once it is not. Returns the `E_DUPLICATE` problems, each with the
/// claim that makes it a suspected clone when another SAM made it.
async fn records_step(
    txn: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    batch_id: i64,
    sam: &SamRow,
    chunk: &verify::Chunk,
    clean: bool,
) -> anyhow::Result<Vec<(Problem, Option<clones::Claim>)>> {
    if clean {
        let n = batches::insert_records(
            txn,
            backend,
            batch_id,
            sam.sam_id,
            chunk.first_index,
            &chunk.records,
        )
        .await?;
        if n == chunk.records.len() as u64 {
            return Ok(Vec::new());
        }
    }
    let found = batches::conflicts(txn, backend, batch_id, &chunk.records).await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let at: HashMap<_, _> = chunk
        .records
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.card_id, t.nt), i))
        .collect();
    let mut out = Vec::new();
    for c in found {
        let Some(&i) = at.get(&(c.card_id, c.nt)) else {
            continue;
        };
        let tx = TxRef::of(chunk.first_index + i, &chunk.records[i]);
        let claim = (c.sam_id != sam.sam_id && c.sam_id.0 != [0; 8]).then_some(clones::Claim {
            card_id: c.card_id,
            nt: c.nt,
            first_sam: c.sam_id,
            first_batch: c.batch_id,
            second_sam: sam.sam_id,
        });
        out.push((Problem::AlreadyAccepted { tx }, claim));
    }
    Ok(out)
}
