//! The launch queue as `/v2/queue` shows it (spec §4 `GET /v2/queue`, §7 "Backoff / launch queue").
//!
//! Requested instances (state `Scheduled`) are the queue; the edge drains them as offers fit and
//! reports offer statistics back so the queue can say why an app is waiting: backed off
//! (`delay.overdue == false`) or offers not matching (reject reasons).

use crate::types::AppId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Offer-processing statistics the edge reports per app (`processedOffersSummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferStats {
    pub processed_offers: u64,
    pub unused_offers: u64,
    pub last_unused_offer_at_ms: Option<u64>,
    pub last_used_offer_at_ms: Option<u64>,
    /// Reject reasons of recent unused offers, counted by reason (`rejectSummaryLastOffers`).
    pub reject_reasons: BTreeMap<String, u64>,
}

/// Bound on distinct reject reasons kept per app.
pub const REJECT_REASONS_MAX: usize = 32;

impl OfferStats {
    pub fn record(&mut self, used: bool, reasons: &[String], now_ms: u64) {
        self.processed_offers = self.processed_offers.saturating_add(1);
        if used {
            self.last_used_offer_at_ms = Some(now_ms);
        } else {
            self.unused_offers = self.unused_offers.saturating_add(1);
            self.last_unused_offer_at_ms = Some(now_ms);
            for reason in reasons {
                if self.reject_reasons.len() < REJECT_REASONS_MAX
                    || self.reject_reasons.contains_key(reason)
                {
                    let n = self.reject_reasons.entry(reason.clone()).or_insert(0);
                    *n = n.saturating_add(1);
                }
            }
        }
    }
}

/// `delay` of a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueueDelay {
    pub time_left_seconds: f64,
    /// `false` = backed off (still waiting for the delay).
    pub overdue: bool,
}

/// One element of `/v2/queue` (the caller adds the `app` JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub app_id: AppId,
    /// Instances requested but not launched yet.
    pub count: u32,
    pub delay: QueueDelay,
    /// When the oldest waiting request was made (ms).
    pub since_ms: u64,
    pub offers: OfferStats,
}
