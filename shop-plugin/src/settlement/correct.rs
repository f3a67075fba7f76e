//! Correcting a rejected batch, as spec 7 foresees: the SAM closes the same period again
//! under the same close_seq without the records the clearing office refused, whose
//! payments end `failed` with `clearing_refused`; the corrected batch goes out next.

use serde::{Deserialize, Serialize};

use super::{batches, load, stored_decision, Report, SettleError, Settler};
use crate::engine::Engine;

/// A corrected batch: the SAM_TxSeqs left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corrected {
    pub sam_id: String,
    pub close_seq: u32,
    pub excluded: Vec<u32>,
}

impl Corrected {
    /// The operator's line.
    pub fn line(&self) -> String {
        format!(
            "corrected batch {} of SAM {}: closed again without SAM_TxSeq {:?} (their \
             payments failed: clearing_refused)",
            self.close_seq, self.sam_id, self.excluded
        )
    }
}

/// What `batches correct` did: the correction, then the settlement run that uploads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub corrected: Corrected,
    pub report: Report,
}

impl Correction {
    /// The report for the operator, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![self.corrected.line()];
        out.extend(self.report.lines());
        out
    }
}

impl Settler {
    /// Corrects rejected batch `close_seq`: the SAM closes its period again under the
    /// same close_seq without the records the office refused (every problem must name a
    /// record), whose payments end `failed` with `clearing_refused`; the new batch
    /// replaces the rejected one as not yet sent (the next upload sends it).
    /// With several SAMs, `sam_id` names the one whose batch it is (it may be left out
    /// when only one SAM has a batch `close_seq`).
    pub async fn correct(
        &self,
        engine: &Engine,
        sam_id: Option<&str>,
        close_seq: u32,
    ) -> Result<Corrected, SettleError> {
        let rows = engine.store().read(batches::list).await?;
        let not = |why: &str| SettleError::NotCorrectable {
            close_seq,
            why: why.to_string(),
        };
        let mut found = rows
            .iter()
            .filter(|r| r.close_seq == close_seq && sam_id.is_none_or(|s| r.sam_id == s));
        let row = found.next().ok_or_else(|| not("no such batch"))?;
        if found.next().is_some() {
            return Err(not(
                "several SAMs have a batch of this close_seq: name one (--sam <SAM_ID>)",
            ));
        }
        let sam_id = row.sam_id.as_str();
        if row.decision.as_deref() != Some("rejected") {
            return Err(not("the clearing office has not rejected it"));
        }
        let excluded = stored_decision(row)
            .and_then(|d| d.refused_records())
            .ok_or_else(|| {
                not("the office's problems do not all name a record (only records can be left out)")
            })?;
        let (old, _) = load(row)?;
        let batch = engine
            .correct_period(&old, &excluded)
            .await
            .map_err(|e| not(&e.to_string()))?;
        std::fs::create_dir_all(&self.outbox).map_err(|source| SettleError::Outbox {
            path: self.outbox.clone(),
            source,
        })?;
        let path = self.outbox.join(batches::file_name(&batch));
        let rows = engine.store().read(batches::list).await?;
        if let Some(row) = rows
            .iter()
            .find(|r| r.sam_id == sam_id && r.close_seq == close_seq)
        {
            let (_, bytes) = load(row)?;
            self.ensure_file(engine.store(), row, &bytes, &path).await?;
        }
        Ok(Corrected {
            sam_id: sam_id.to_string(),
            close_seq,
            excluded,
        })
    }

    /// `batches correct`: [`Settler::correct`], then a settlement run that uploads the
    /// corrected batch.
    pub async fn correct_and_run(
        &self,
        engine: &Engine,
        sam_id: Option<&str>,
        close_seq: u32,
    ) -> Result<Correction, SettleError> {
        let corrected = self.correct(engine, sam_id, close_seq).await?;
        let report = self.run(engine, false).await?;
        Ok(Correction { corrected, report })
    }
}
