//! Closing a period, streamed (spec 6): CLOSE BEGIN freezes the period's totals, CLOSE
//! RECORD checks each record's tag and chains `J`, CLOSE END compares and signs
//! `TR || TRMAC` with `K_SAM`. Only records the SAM counted (and tagged) can be signed.

use super::command::{sw, CloseStep, CLOSE_ENTRY_LEN};
use super::{Answer, SamApplet, SamStore, Totals};
use crate::apdu::StatusWord;
use crate::commands::{Reader, TxRecord};
use crate::crypto::cmac;
use crate::settlement::{journal_key, TotalsRecord};
use crate::types::{CloseSeq, Journal, Mac8, SamTxSeq, Sum};

/// The close being streamed (RAM only, one at a time).
#[derive(Clone, Debug)]
pub(super) struct CloseStream {
    close_seq: CloseSeq,
    /// Count and sum must equal the frozen totals (a first close), or only be a subset
    /// of the records the SAM tagged (a stream again, or a correction).
    exact: bool,
    journal: [u8; 16],
    seen: Totals,
    first: Option<SamTxSeq>,
    last: Option<SamTxSeq>,
}

impl SamApplet {
    pub(super) fn close(
        &mut self,
        step: CloseStep,
        data: &[u8],
        store: &mut dyn SamStore,
    ) -> Answer {
        match step {
            CloseStep::BeginNew | CloseStep::BeginAgain => {
                self.volatile.close = None;
                self.close_begin(step == CloseStep::BeginNew, data, store)
            }
            CloseStep::Record => {
                let stream = self
                    .volatile
                    .close
                    .take()
                    .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
                // A failed record drops the stream: the host starts again.
                let stream = self.close_records(stream, data)?;
                self.volatile.close = Some(stream);
                Ok(Vec::new())
            }
            CloseStep::End => {
                let stream = self
                    .volatile
                    .close
                    .take()
                    .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
                self.close_end(&stream)
            }
        }
    }

    fn close_begin(&mut self, new: bool, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let close_seq = CloseSeq(Reader::new(data).u32());
        let totals = if new {
            if close_seq != self.state.open_period() {
                return Err(StatusWord::WRONG_DATA);
            }
            let mut next = self.state.clone();
            next.last_close_seq = close_seq;
            next.closed = next.period;
            next.period = Totals::default();
            self.commit(next, store)?;
            self.state.closed
        } else {
            if close_seq != self.state.last_close_seq || close_seq.0 == 0 {
                return Err(StatusWord::WRONG_DATA);
            }
            self.state.closed
        };
        self.volatile.close = Some(CloseStream {
            close_seq,
            exact: new,
            journal: [0; 16],
            seen: Totals::default(),
            first: None,
            last: None,
        });
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&close_seq.0.to_be_bytes());
        v.extend_from_slice(&totals.count.to_be_bytes());
        v.extend_from_slice(&totals.sum.0.to_be_bytes());
        Ok(v)
    }

    fn close_records(&self, mut s: CloseStream, data: &[u8]) -> Result<CloseStream, StatusWord> {
        let sam_id = self.state.keys.sam_id;
        let kj = journal_key(&self.state.keys.k_sam, sam_id);
        for entry in data.chunks(CLOSE_ENTRY_LEN) {
            let (rec, tag) = entry.split_at(60);
            if !self
                .seal
                .tag(s.close_seq, rec)
                .verify(&Mac8(Reader::new(tag).array()))
            {
                return Err(sw::BAD_CONTEXT);
            }
            let r = TxRecord::parse(&rec[9..]).map_err(|_| StatusWord::WRONG_DATA)?;
            if s.last.is_some_and(|last| r.sam_tx_seq <= last) {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            if r.sam_id != sam_id {
                return Err(StatusWord::WRONG_DATA);
            }
            let mut input = Vec::with_capacity(76);
            input.extend_from_slice(&s.journal);
            input.extend_from_slice(rec);
            s.journal = cmac(&kj, &input);
            s.seen.count = s.seen.count.checked_add(1).ok_or(StatusWord::WRONG_DATA)?;
            s.seen.sum = Sum(s
                .seen
                .sum
                .0
                .checked_add(u64::from(r.total.0))
                .ok_or(StatusWord::WRONG_DATA)?);
            s.first = s.first.or(Some(r.sam_tx_seq));
            s.last = Some(r.sam_tx_seq);
        }
        Ok(s)
    }

    fn close_end(&self, s: &CloseStream) -> Answer {
        let frozen = self.state.closed;
        let complete = if s.exact {
            s.seen == frozen
        } else {
            s.seen.count <= frozen.count && s.seen.sum <= frozen.sum
        };
        // A correction may only ever follow the period the SAM froze last.
        if !complete || s.close_seq != self.state.last_close_seq {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let keys = &self.state.keys;
        let tr = TotalsRecord {
            sam_id: keys.sam_id,
            close_seq: s.close_seq,
            first_tx_seq: s.first.unwrap_or_default(),
            last_tx_seq: s.last.unwrap_or_default(),
            count: s.seen.count,
            sum: s.seen.sum,
            currency: keys.currency,
            journal: Journal(s.journal),
        };
        let mut v = tr.encode();
        v.extend_from_slice(&tr.mac(&keys.k_sam).0);
        Ok(v)
    }
}
