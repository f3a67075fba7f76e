//! Fetching the clearing office's hotlist (`GET {clearing_url}/v1/hotlist`): checked with
//! the office's public key from the configuration ([`purse::hotlist`]), taken by the
//! engine only when signed and no older than the one held ([`Engine::take_hotlist`]),
//! which keeps it in the database. `serve` fetches at start and every
//! `hotlist_refresh_secs`; `settle` at each run. A failed fetch keeps the last good list.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use purse::hotlist::Verified;

use crate::config::Config;
use crate::engine::{Engine, HotlistTake};
use crate::outbound::Outbound;

/// Where the hotlist comes from and who must have signed it.
#[derive(Clone)]
pub struct Source {
    url: String,
    public: [u8; 32],
    client: Outbound,
    pub every: Duration,
}

/// What one fetch brought.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetching the hotlist: {0}")]
    Fetch(String),
    #[error("the hotlist was refused, the last good one kept: {0}")]
    Refused(#[from] HotlistTake),
}

impl Source {
    /// The configured source; `None` without `settlement.hotlist_public_key`.
    pub fn from_config(config: &Config, client: Outbound) -> anyhow::Result<Option<Source>> {
        let s = &config.settlement;
        let (Some(key), Some(url)) = (&s.hotlist_public_key, &s.clearing_url) else {
            return Ok(None);
        };
        let mut public = [0u8; 32];
        hex::decode_to_slice(key.trim(), &mut public).map_err(|_| {
            anyhow::anyhow!("settlement.hotlist_public_key is not 64 hex digits (an Ed25519 key)")
        })?;
        Ok(Some(Source {
            url: format!("{}/v1/hotlist", url.trim_end_matches('/')),
            public,
            client,
            every: Duration::from_secs(s.hotlist_refresh_secs),
        }))
    }

    /// Fetches, checks and hands the list to the engine; returns the cards now held.
    pub async fn refresh(&self, engine: &Engine) -> Result<usize, FetchError> {
        let answer = self
            .client
            .exchange(Method::GET, &self.url, None, &[])
            .await
            .map_err(|e| FetchError::Fetch(e.message))?;
        if answer.status != 200 {
            return Err(FetchError::Fetch(format!("HTTP {}", answer.status)));
        }
        let list = Verified::from_json(&self.public, &answer.body)
            .map_err(|e| FetchError::Refused(e.into()))?;
        let cards = list.cards.len();
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        engine.take_hotlist(list, body).await?;
        Ok(cards)
    }

    /// [`Source::refresh`] now and then every [`Source::every`], logging the outcome.
    pub fn spawn(self, app: Arc<crate::http::App>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(self.every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match self.refresh(&app.engine).await {
                    Ok(n) => tracing::info!("hotlist taken: {n} card(s)"),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        })
    }
}
