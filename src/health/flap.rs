//! The anti-flap state machine, as in gdnsd: `rise` consecutive passes bring a
//! member up, `fall` consecutive failures take it down. The very first result sets
//! the state directly, so that a member is never answered on unknown health and a
//! dead member found at start-up is never answered at all.

/// Health of one probe stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flap {
    /// `None` until the first result.
    pub up: Option<bool>,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl Flap {
    /// Up, with no failure counted: a pass changes nothing.
    pub fn settled_up(&self) -> bool {
        self.up == Some(true) && self.streak == 0
    }

    /// Records a probe result; returns true when the state changed.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        match self.up {
            None => {
                self.up = Some(ok);
                self.streak = 0;
                true
            }
            Some(current) if current == ok => {
                self.streak = 0;
                false
            }
            Some(current) => {
                self.streak += 1;
                let needed = if current { fall } else { rise };
                if self.streak >= needed.max(1) {
                    self.up = Some(ok);
                    self.streak = 0;
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sequence of results, returns the state after each.
    fn run(seq: &str, rise: u32, fall: u32) -> String {
        let mut f = Flap::default();
        seq.chars()
            .map(|c| {
                f.record(c == '+', rise, fall);
                match f.up {
                    Some(true) => 'U',
                    Some(false) => 'D',
                    None => '?',
                }
            })
            .collect()
    }

    #[test]
    fn first_result_decides() {
        assert_eq!(run("+", 2, 2), "U");
        assert_eq!(run("-", 2, 2), "D");
    }

    #[test]
    fn fall_consecutive_failures_take_it_down() {
        assert_eq!(run("+-+-+-", 2, 2), "UUUUUU", "alternating never flaps");
        assert_eq!(run("+--", 2, 2), "UUD");
        assert_eq!(run("+---", 3, 3), "UUUD");
    }

    #[test]
    fn rise_consecutive_passes_bring_it_up() {
        assert_eq!(run("-++", 2, 2), "DDU");
        assert_eq!(run("-+-++", 2, 2), "DDDDU");
        assert_eq!(run("-+++-", 3, 1), "DDDUD");
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_result() {
        assert_eq!(run("+-+-", 1, 1), "UDUD");
    }
}
