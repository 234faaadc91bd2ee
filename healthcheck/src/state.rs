//! The per-check health threshold machine, free of I/O and time: it turns a stream of probe
//! outcomes into Unknown/Healthy/Unhealthy and says when the state changed.
//!
//! Rules (Seesaw's `rise`/`retries` semantics):
//! - every check starts Unknown;
//! - from Unknown or Unhealthy, `rise` (at least 1) consecutive successes make it Healthy;
//! - from Healthy, it takes more than `retries` consecutive failures to become Unhealthy;
//! - from Unknown, a single failure makes it Unhealthy at once (there is no good state to protect).

/// What the process currently believes about one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No verdict yet: the check has not risen nor failed.
    Unknown,
    /// The check passed `rise` times in a row and has not failed more than `retries` times since.
    Healthy,
    /// The check failed (see the module rules).
    Unhealthy,
}

/// The thresholds of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive successes needed to become Healthy; 0 is treated as 1.
    pub rise: u32,
    /// Consecutive failures tolerated while Healthy; one more makes the check Unhealthy.
    pub retries: u32,
}

/// The threshold machine of one check. Counters survive configuration changes on purpose: a check
/// whose thresholds change keeps its verdict and its streak.
#[derive(Debug, Clone)]
pub struct CheckState {
    health: Health,
    /// Consecutive successes while not Healthy.
    successes: u32,
    /// Consecutive failures while Healthy.
    failures: u32,
}

// === impl CheckState ===

impl Default for CheckState {
    fn default() -> Self {
        Self::new()
    }
}

impl CheckState {
    /// A check nothing is known about yet.
    pub fn new() -> Self {
        Self {
            health: Health::Unknown,
            successes: 0,
            failures: 0,
        }
    }

    /// The current verdict.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Feeds one probe outcome. Returns the new state if it changed (Unknown → X counts).
    pub fn observe(&mut self, success: bool, t: Thresholds) -> Option<Health> {
        let before = self.health;
        match (self.health, success) {
            (Health::Healthy, true) => self.failures = 0,
            (Health::Healthy, false) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures > t.retries {
                    self.health = Health::Unhealthy;
                    self.failures = 0;
                    self.successes = 0;
                }
            }
            (Health::Unknown | Health::Unhealthy, true) => {
                self.successes = self.successes.saturating_add(1);
                if self.successes >= t.rise.max(1) {
                    self.health = Health::Healthy;
                    self.successes = 0;
                    self.failures = 0;
                }
            }
            (Health::Unknown | Health::Unhealthy, false) => {
                self.health = Health::Unhealthy;
                self.successes = 0;
            }
        }
        self.check_invariants();
        (self.health != before).then_some(self.health)
    }

    fn check_invariants(&self) {
        // Only one streak counts at a time: failures while Healthy, successes otherwise.
        debug_assert!(self.health == Health::Healthy || self.failures == 0);
        debug_assert!(self.health != Health::Healthy || self.successes == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rise: u32, retries: u32) -> Thresholds {
        Thresholds { rise, retries }
    }

    /// Feeds `outcomes` ('+' success, '-' failure) and returns the transitions as a string of
    /// H/U per step, '.' when nothing changed.
    fn run(th: Thresholds, outcomes: &str) -> String {
        let mut s = CheckState::new();
        outcomes
            .chars()
            .map(|c| match s.observe(c == '+', th) {
                Some(Health::Healthy) => 'H',
                Some(Health::Unhealthy) => 'U',
                Some(Health::Unknown) => '?',
                None => '.',
            })
            .collect()
    }

    #[test]
    fn starts_unknown() {
        assert_eq!(CheckState::new().health(), Health::Unknown);
    }

    #[test]
    fn rise_needs_consecutive_successes() {
        assert_eq!(run(t(1, 0), "+"), "H");
        assert_eq!(run(t(3, 0), "+++"), "..H");
        // Rise 0 means 1.
        assert_eq!(run(t(0, 0), "+"), "H");
        // A failure while rising from Unknown is an immediate verdict and restarts the streak.
        assert_eq!(run(t(3, 0), "++-+++"), "..U..H");
    }

    #[test]
    fn failure_from_unknown_is_immediate() {
        assert_eq!(run(t(2, 5), "-"), "U");
        assert_eq!(run(t(2, 5), "--"), "U.");
    }

    #[test]
    fn retries_tolerate_failures_while_healthy() {
        // retries 2: the third consecutive failure flips.
        assert_eq!(run(t(1, 2), "+---"), "H..U");
        // A success in between resets the failure count.
        assert_eq!(run(t(1, 2), "+--+--+---"), "H........U");
        assert_eq!(run(t(1, 0), "+-"), "HU");
    }

    #[test]
    fn flapping_reports_every_change_and_nothing_else() {
        assert_eq!(run(t(1, 0), "+-+-+-"), "HUHUHU");
        // With rise 2 and retries 1, single blips are absorbed.
        assert_eq!(run(t(2, 1), "++-+-+-+"), ".H......");
        assert_eq!(run(t(2, 1), "++--+-++"), ".H.U...H");
    }

    #[test]
    fn changed_thresholds_keep_state_and_streak() {
        let mut s = CheckState::new();
        assert_eq!(s.observe(true, t(3, 0)), None);
        assert_eq!(s.observe(true, t(3, 0)), None);
        // Lowering rise to 2 counts the streak already built.
        assert_eq!(s.observe(true, t(2, 0)), Some(Health::Healthy));
        assert_eq!(s.observe(false, t(2, 1)), None);
        assert_eq!(s.observe(false, t(2, 1)), Some(Health::Unhealthy));
    }
}
