//! Faults the sandbox can inject: scripted ones for exact scenarios, random ones for soak runs.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 5xx before the request is carried out.
    ServerError { status: u16 },
    /// HTTP 429 `ratelimited` with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// The connection is closed before the request is carried out.
    DropBefore,
    /// The request is carried out, then the connection is closed without an answer.
    DropAfter,
    /// The request is carried out, and the answer comes after `millis`.
    SlowAfter { millis: u64 },
    /// HTTP 200 with `ok: false` and this error code, nothing carried out.
    SlackError { code: String },
    /// The request is carried out only after `millis` (a write that lands late), then answered:
    /// a client that timed out before sees nothing for a while, then the write.
    LandLate { millis: u64 },
    /// A history or replies page whose `next_cursor` is the cursor the request sent (a paging
    /// loop): a client must stop rather than walk the same pages for ever.
    RepeatCursor,
}

impl Fault {
    pub fn label(&self) -> String {
        match self {
            Fault::ServerError { status } => format!("http_{status}"),
            Fault::RateLimited { .. } => "http_429".into(),
            Fault::DropBefore => "drop_before".into(),
            Fault::DropAfter => "drop_after".into(),
            Fault::SlowAfter { millis } => format!("slow_{millis}ms"),
            Fault::SlackError { code } => code.clone(),
            Fault::LandLate { millis } => format!("land_late_{millis}ms"),
            Fault::RepeatCursor => "repeat_cursor".into(),
        }
    }
}

/// A fault for the next `times` calls of `method` (and, if set, only thread replies or only
/// top-level posts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedFault {
    pub method: String,
    #[serde(default)]
    pub thread_reply: Option<bool>,
    pub fault: Fault,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FaultPlan {
    #[serde(default)]
    pub scripted: VecDeque<ScriptedFault>,
    /// Probability (0–1) that a call gets one of `random_faults`.
    #[serde(default)]
    pub random_rate: f64,
    #[serde(default)]
    pub random_faults: Vec<Fault>,
    #[serde(default)]
    pub seed: u64,
}

impl FaultPlan {
    pub fn scripted(faults: Vec<ScriptedFault>) -> Self {
        FaultPlan {
            scripted: faults.into(),
            ..Default::default()
        }
    }

    pub fn random(rate: f64, faults: Vec<Fault>, seed: u64) -> Self {
        FaultPlan {
            random_rate: rate,
            random_faults: faults,
            seed: seed.max(1),
            ..Default::default()
        }
    }

    /// The fault for this call, if any.
    pub fn pick(&mut self, method: &str, thread_reply: bool) -> Option<Fault> {
        if let Some(index) = self.scripted.iter().position(|s| {
            s.method == method && s.thread_reply.is_none_or(|t| t == thread_reply) && s.times > 0
        }) {
            let entry = &mut self.scripted[index];
            entry.times -= 1;
            let fault = entry.fault.clone();
            if entry.times == 0 {
                self.scripted.remove(index);
            }
            return Some(fault);
        }
        if self.random_rate <= 0.0 || self.random_faults.is_empty() || method == "auth.test" {
            return None;
        }
        if self.next_unit() >= self.random_rate {
            return None;
        }
        let index = (self.next_u64() % self.random_faults.len() as u64) as usize;
        Some(self.random_faults[index].clone())
    }

    /// xorshift64*: deterministic for a seed, good enough to pick faults.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.seed.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_faults_are_used_up_in_order() {
        let mut plan = FaultPlan::scripted(vec![ScriptedFault {
            method: "chat.postMessage".into(),
            thread_reply: Some(true),
            fault: Fault::DropAfter,
            times: 2,
        }]);
        assert_eq!(plan.pick("chat.postMessage", false), None);
        assert_eq!(plan.pick("chat.postMessage", true), Some(Fault::DropAfter));
        assert_eq!(plan.pick("chat.postMessage", true), Some(Fault::DropAfter));
        assert_eq!(plan.pick("chat.postMessage", true), None);
    }

    #[test]
    fn random_rate_is_roughly_kept() {
        let mut plan = FaultPlan::random(0.3, vec![Fault::DropBefore], 7);
        let hits = (0..10_000)
            .filter(|_| plan.pick("chat.postMessage", false).is_some())
            .count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
