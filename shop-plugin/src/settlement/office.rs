//! The clearing office as the plugin talks to it (`schema/clearing-office.openapi.yaml`):
//! one upload of one batch and what its answer means. A batch is delivered only when the
//! answer is the office's decision on that very batch (JSON, its SAM and close_seq);
//! anything else (a captive portal's 200 page, a 5xx, a timeout) is a failed try.

use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::outbound::Outbound;

/// Where and as whom batches go.
#[derive(Clone)]
pub struct OfficeLink {
    /// The office's base URL (no final `/`).
    pub url: String,
    /// Each SAM's upload credential (`<sam_id>.<64 hex>`), never logged.
    pub credentials: Vec<Zeroizing<String>>,
    /// Tries per batch and run, and the first delay between them (doubling).
    pub attempts: u32,
    pub first_delay: Duration,
}

/// A problem the office names (`Problem` in its OpenAPI document).
pub use purse::clearing::WireProblem as Problem;

/// The office's decision on a batch (the fields the plugin uses; the whole answer is
/// stored as it came).
#[derive(Clone, Debug, Deserialize)]
pub struct Decision {
    pub sam_id: String,
    pub close_seq: u32,
    pub decision: String,
    #[serde(default)]
    pub problem_count: u64,
    #[serde(default)]
    pub problems: Vec<Problem>,
    #[serde(default)]
    pub payout: Option<serde_json::Value>,
}

impl Decision {
    pub fn accepted(&self) -> bool {
        self.decision == "accepted"
    }

    /// The SAM_TxSeqs of the records the office refused, when every problem names a
    /// record (a correction can only leave records out); `None` otherwise.
    pub fn refused_records(&self) -> Option<Vec<u32>> {
        if self.problems.is_empty() || self.problem_count != self.problems.len() as u64 {
            return None;
        }
        let mut seqs: Vec<u32> = self
            .problems
            .iter()
            .map(|p| p.sam_tx_seq)
            .collect::<Option<_>>()?;
        seqs.sort_unstable();
        seqs.dedup();
        Some(seqs)
    }

    /// The problems on one line each: `E_TAC record 3 (card …, NT 7): message`.
    pub fn why(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| match (p.sam_tx_seq, &p.card_id, p.nt) {
                (Some(s), Some(c), Some(nt)) => {
                    format!(
                        "{} SAM_TxSeq {s} (card {c}, NT {nt}): {}",
                        p.code, p.message
                    )
                }
                _ => format!("{}: {}", p.code, p.message),
            })
            .collect()
    }
}

/// What one try brought.
#[derive(Debug)]
pub enum Outcome {
    /// The office decided; the raw answer to store.
    Decided(Decision, String),
    /// No decision; trying again may help (network, 5xx, 408/429, not the office's JSON).
    Retry(String),
    /// No decision, and trying again the same way will not help (401, 403, 409, 400,
    /// 413): the operator must act.
    Refused(String),
}

impl OfficeLink {
    /// Uploads one batch (`POST /v1/batches`) and classifies the answer.
    pub async fn upload(
        &self,
        client: &Outbound,
        sam_id: &str,
        close_seq: u32,
        body: Bytes,
    ) -> Outcome {
        let url = format!("{}/v1/batches", self.url);
        let prefix = format!("{sam_id}.");
        let Some(credential) = self.credentials.iter().find(|c| c.starts_with(&prefix)) else {
            return Outcome::Refused(format!(
                "no upload credential for SAM {sam_id} (the clearing office issues one when it \
                 registers the SAM; add it to settlement.clearing_credential_file)"
            ));
        };
        let auth = [("authorization", format!("Bearer {}", credential.as_str()))];
        let answer = match client.exchange(Method::POST, &url, Some(body), &auth).await {
            Ok(a) => a,
            Err(e) if e.permanent => return Outcome::Refused(e.message),
            Err(e) => return Outcome::Retry(e.message),
        };
        match answer.status {
            200 => {}
            408 | 429 | 500..=599 => {
                return Outcome::Retry(format!("HTTP {}{}", answer.status, error(&answer.body)))
            }
            s => return Outcome::Refused(format!("HTTP {s}{}", error(&answer.body))),
        }
        let json = answer
            .content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        let decision = json
            .then(|| serde_json::from_slice::<Decision>(&answer.body).ok())
            .flatten()
            .filter(|d| {
                d.sam_id == sam_id
                    && d.close_seq == close_seq
                    && matches!(d.decision.as_str(), "accepted" | "rejected")
            });
        match decision {
            Some(d) => Outcome::Decided(d, String::from_utf8_lossy(&answer.body).into_owned()),
            None => Outcome::Retry(format!(
                "HTTP 200 but not the office's decision on this batch (content type {:?}: \
                 a captive portal or a proxy?)",
                answer.content_type
            )),
        }
    }
}

/// The longest part of the office's error message kept (it is stored and shown).
const MAX_MESSAGE: usize = 300;

/// ` code: message` of the office's error body (`{"error": {"code", "message"}}`), on one
/// line and bounded; empty when the body is not that.
fn error(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(code) = v["error"]["code"].as_str() else {
        return String::new();
    };
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_MESSAGE)
            .collect()
    };
    match v["error"]["message"].as_str() {
        Some(m) => format!(" {}: {}", clean(code), clean(m)),
        None => format!(" {}", clean(code)),
    }
}
