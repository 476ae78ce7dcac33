//! Choosing the leading tab over the BroadcastChannel alone, for browsers without Web Locks (an
//! older browser, or a page on plain HTTP away from localhost: Web Locks need a secure context).
//! Pure: `shared.rs` feeds it what the channel says and the clock, and does what it decides.
//!
//! Silence is never taken for death on its own: a background tab's timers may run once a minute,
//! so a leader's heartbeat can be late while the leader is fine. A tab that has heard nothing for a
//! while asks (`query`), and a leader answers from its message handler, which browsers do not
//! throttle; only when that goes unanswered does the tab claim the lead. Claims and leaders are
//! ranked by term, then by the lower tab id, so that two tabs claiming at once, or two leaders
//! after a tab thawed, settle on one. A leader that closes says so (`resign`), and the others claim
//! at once: a handover takes about [`CLAIM_WINDOW`].

use super::tab_id::TabId;
use serde::{Deserialize, Serialize};

/// How long a tab waits for an answer to its `query` before it claims the lead.
pub const ANSWER_WAIT_MS: f64 = 300.0;
/// How long a claim stands unchallenged before the claimant leads.
pub const CLAIM_WINDOW_MS: f64 = 200.0;
/// Silence after which a follower asks whether the leader is still there.
pub const SILENCE_MS: f64 = 2_000.0;
/// How often a leader says it leads.
pub const HEARTBEAT_MS: f64 = 1_000.0;
/// How often the browser part calls [`Election::tick`].
pub const TICK_MS: u32 = 100;

/// What tabs say about the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Vote {
    /// Is anyone leading?
    Query,
    Heartbeat {
        leader: TabId,
        term: u64,
    },
    Claim {
        tab: TabId,
        term: u64,
    },
    /// The leader's page goes.
    Resign {
        leader: TabId,
    },
}

/// What the tab must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send(Vote),
    /// Start the hub.
    Lead,
    /// Another tab leads by right: close the hub.
    StepDown,
    /// Two hubs ran for a moment and this one stays: every tab must subscribe to it again.
    Reannounce,
}

#[derive(Debug, Clone, PartialEq)]
enum Role {
    Follower {
        leader: Option<TabId>,
        last_heard: f64,
        /// When this tab asked whether anyone leads, still unanswered.
        asked_at: Option<f64>,
    },
    Candidate {
        since: f64,
    },
    Leader {
        last_beat: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Election {
    me: TabId,
    term: u64,
    role: Role,
}

impl Election {
    /// A tab that just opened: it asks who leads.
    pub fn start(me: TabId, now: f64) -> (Self, Vec<Decision>) {
        let election =
            Self { me, term: 0, role: Role::Follower { leader: None, last_heard: now, asked_at: Some(now) } };
        (election, vec![Decision::Send(Vote::Query)])
    }

    pub fn leads(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// Whether `(term, tab)` outranks this tab's own claim or lead.
    fn outranks(&self, term: u64, tab: &str) -> bool {
        term > self.term || (term == self.term && tab < self.me.as_str())
    }

    fn heartbeat(&self) -> Decision {
        Decision::Send(Vote::Heartbeat { leader: self.me.clone(), term: self.term })
    }

    fn follow(&mut self, leader: Option<TabId>, term: u64, now: f64) {
        self.term = self.term.max(term);
        // A claimant that lost waits for the winner's heartbeat as for an answer.
        let asked_at = leader.is_none().then_some(now);
        self.role = Role::Follower { leader, last_heard: now, asked_at };
    }

    fn claim(&mut self, now: f64) -> Vec<Decision> {
        self.term += 1;
        self.role = Role::Candidate { since: now };
        vec![Decision::Send(Vote::Claim { tab: self.me.clone(), term: self.term })]
    }

    pub fn heard(&mut self, vote: Vote, now: f64) -> Vec<Decision> {
        match vote {
            Vote::Query => match self.role {
                Role::Leader { .. } => vec![self.heartbeat()],
                _ => vec![],
            },
            Vote::Heartbeat { leader, term } => match self.role {
                Role::Leader { .. } if leader == self.me => vec![],
                Role::Leader { .. } if self.outranks(term, &leader) => {
                    self.follow(Some(leader), term, now);
                    vec![Decision::StepDown]
                }
                // The other one steps down when it hears this; the tabs it had come here.
                Role::Leader { .. } => vec![self.heartbeat(), Decision::Reannounce],
                Role::Candidate { .. } if term >= self.term => {
                    self.follow(Some(leader), term, now);
                    vec![]
                }
                Role::Candidate { .. } => vec![],
                Role::Follower { .. } => {
                    self.follow(Some(leader), term, now);
                    vec![]
                }
            },
            Vote::Claim { tab, term } => match self.role {
                // Still here: the claimant heard nothing, so answer with a term at least as high.
                Role::Leader { .. } => {
                    self.term = self.term.max(term);
                    vec![self.heartbeat()]
                }
                Role::Candidate { .. } if self.outranks(term, &tab) => {
                    self.follow(None, term, now);
                    vec![]
                }
                Role::Candidate { .. } => vec![],
                // Someone is taking the lead: wait for its heartbeat rather than claim as well.
                Role::Follower { .. } => {
                    self.follow(None, term, now);
                    vec![]
                }
            },
            Vote::Resign { leader } => match &self.role {
                Role::Follower { leader: Some(current), .. } if *current == leader => self.claim(now),
                _ => vec![],
            },
        }
    }

    /// Time passed: ask, claim, lead or beat when it is time.
    pub fn tick(&mut self, now: f64) -> Vec<Decision> {
        match self.role {
            Role::Follower { asked_at: Some(asked), .. } if now - asked >= ANSWER_WAIT_MS => self.claim(now),
            Role::Follower { asked_at: None, last_heard, ref leader } if now - last_heard >= SILENCE_MS => {
                let leader = leader.clone();
                self.role = Role::Follower { leader, last_heard, asked_at: Some(now) };
                vec![Decision::Send(Vote::Query)]
            }
            Role::Candidate { since } if now - since >= CLAIM_WINDOW_MS => {
                self.role = Role::Leader { last_beat: now };
                vec![Decision::Lead, self.heartbeat()]
            }
            Role::Leader { last_beat } if now - last_beat >= HEARTBEAT_MS => {
                self.role = Role::Leader { last_beat: now };
                vec![self.heartbeat()]
            }
            _ => vec![],
        }
    }

    /// The page goes: a leader says so, so that the others need not wait.
    pub fn resign(&mut self, now: f64) -> Vec<Decision> {
        let was_leading = self.leads();
        self.follow(None, self.term, now);
        if was_leading { vec![Decision::Send(Vote::Resign { leader: self.me.clone() })] } else { vec![] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tabs on one channel: what one sends, the others hear (never itself), at once.
    struct Tabs {
        tabs: Vec<Election>,
        now: f64,
        leads: Vec<u32>,
        step_downs: Vec<u32>,
    }

    impl Tabs {
        fn open(names: &[&str]) -> Self {
            let mut tabs = Self { tabs: vec![], now: 0.0, leads: vec![], step_downs: vec![] };
            for name in names {
                tabs.join(name);
            }
            tabs
        }

        fn join(&mut self, name: &str) {
            let (election, decisions) = Election::start(name.to_string(), self.now);
            self.tabs.push(election);
            self.leads.push(0);
            self.step_downs.push(0);
            self.perform(self.tabs.len() - 1, decisions);
        }

        fn perform(&mut self, from: usize, decisions: Vec<Decision>) {
            for decision in decisions {
                match decision {
                    Decision::Send(vote) => {
                        for to in 0..self.tabs.len() {
                            if to != from {
                                let answer = self.tabs[to].heard(vote.clone(), self.now);
                                self.perform(to, answer);
                            }
                        }
                    }
                    Decision::Lead => self.leads[from] += 1,
                    Decision::StepDown => self.step_downs[from] += 1,
                    Decision::Reannounce => {}
                }
            }
        }

        fn run_for(&mut self, ms: f64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += f64::from(TICK_MS);
                for i in 0..self.tabs.len() {
                    let decisions = self.tabs[i].tick(self.now);
                    self.perform(i, decisions);
                }
            }
        }

        fn leaders(&self) -> Vec<&str> {
            self.tabs.iter().filter(|t| t.leads()).map(|t| t.me.as_str()).collect()
        }
    }

    #[test]
    fn a_lone_tab_leads_after_asking_and_claiming() {
        let mut tabs = Tabs::open(&["a"]);
        tabs.run_for(ANSWER_WAIT_MS + CLAIM_WINDOW_MS + 2.0 * f64::from(TICK_MS));
        assert_eq!(tabs.leaders(), vec!["a"]);
        assert_eq!(tabs.leads, vec![1]);
    }

    #[test]
    fn tabs_opened_together_settle_on_one_leader() {
        let mut tabs = Tabs::open(&["b", "a", "c"]);
        tabs.run_for(2_000.0);
        assert_eq!(tabs.leaders().len(), 1, "{:?}", tabs.leaders());
        assert_eq!(tabs.leads.iter().sum::<u32>(), 1, "and only one ever led");
    }

    #[test]
    fn claims_made_at_the_same_moment_go_to_the_lowest_id() {
        let (mut a, _) = Election::start("a".into(), 0.0);
        let (mut b, _) = Election::start("b".into(), 0.0);
        let claim_a = a.tick(ANSWER_WAIT_MS);
        let claim_b = b.tick(ANSWER_WAIT_MS);
        let (Decision::Send(claim_a), Decision::Send(claim_b)) = (claim_a[0].clone(), claim_b[0].clone()) else {
            panic!("both claim")
        };
        assert!(a.heard(claim_b, ANSWER_WAIT_MS).is_empty());
        assert!(b.heard(claim_a, ANSWER_WAIT_MS).is_empty());
        assert_eq!(a.tick(ANSWER_WAIT_MS + CLAIM_WINDOW_MS)[0], Decision::Lead);
        assert!(b.tick(ANSWER_WAIT_MS + CLAIM_WINDOW_MS).is_empty(), "b waits for a's heartbeat");
    }

    #[test]
    fn a_tab_that_opens_later_follows_the_leader_at_once() {
        let mut tabs = Tabs::open(&["b"]);
        tabs.run_for(1_000.0);
        tabs.join("a");
        tabs.run_for(10_000.0);
        assert_eq!(tabs.leaders(), vec!["b"], "a lower id does not take over a standing leader");
        assert_eq!(tabs.leads, vec![1, 0]);
    }

    #[test]
    fn a_resigning_leader_hands_over_within_one_claim_window() {
        let mut tabs = Tabs::open(&["a", "b", "c"]);
        tabs.run_for(1_000.0);
        assert_eq!(tabs.leaders(), vec!["a"]);
        let decisions = tabs.tabs[0].resign(tabs.now);
        tabs.tabs.remove(0);
        tabs.leads.remove(0);
        tabs.step_downs.remove(0);
        // The resignation reaches the others (tab 0 is gone, so send as if from nobody).
        for decision in decisions {
            if let Decision::Send(vote) = decision {
                for i in 0..tabs.tabs.len() {
                    let answer = tabs.tabs[i].heard(vote.clone(), tabs.now);
                    tabs.perform(i, answer);
                }
            }
        }
        tabs.run_for(CLAIM_WINDOW_MS + f64::from(TICK_MS));
        assert_eq!(tabs.leaders(), vec!["b"]);
    }

    #[test]
    fn a_silent_leader_that_still_answers_keeps_the_lead() {
        let mut tabs = Tabs::open(&["a", "b"]);
        tabs.run_for(1_000.0);
        // The leader's timers stall (a background tab): only its message handler runs.
        let mut now = tabs.now;
        for _ in 0..100 {
            now += f64::from(TICK_MS);
            tabs.now = now;
            let decisions = tabs.tabs[1].tick(now);
            tabs.perform(1, decisions);
        }
        assert_eq!(tabs.leaders(), vec!["a"]);
        assert_eq!(tabs.leads, vec![1, 0]);
    }

    #[test]
    fn a_leader_that_died_without_a_word_is_replaced_once_a_query_goes_unanswered() {
        let mut tabs = Tabs::open(&["a", "b", "c"]);
        tabs.run_for(1_000.0);
        tabs.tabs.remove(0);
        tabs.leads.remove(0);
        tabs.step_downs.remove(0);
        tabs.run_for(SILENCE_MS + ANSWER_WAIT_MS + CLAIM_WINDOW_MS + 3.0 * f64::from(TICK_MS));
        assert_eq!(tabs.leaders(), vec!["b"]);
    }

    #[test]
    fn of_two_leaders_the_one_of_the_older_term_steps_down_and_the_other_gathers_the_tabs() {
        let (mut a, _) = Election::start("a".into(), 0.0);
        a.tick(ANSWER_WAIT_MS);
        a.tick(ANSWER_WAIT_MS + CLAIM_WINDOW_MS);
        // b led a later term while a was frozen and heard nothing.
        let mut b = Election { me: "b".into(), term: 3, role: Role::Leader { last_beat: 0.0 } };
        assert!(a.leads() && b.leads());
        let b_beat = Vote::Heartbeat { leader: "b".into(), term: b.term };
        assert_eq!(a.heard(b_beat, 2_000.0), vec![Decision::StepDown], "a higher term outranks a lower id");
        assert!(!a.leads());
        let a_beat = Vote::Heartbeat { leader: "a".into(), term: 1 };
        assert_eq!(b.heard(a_beat, 2_000.0), vec![b.heartbeat(), Decision::Reannounce]);
    }

    #[test]
    fn votes_survive_the_channel() {
        for vote in [
            Vote::Query,
            Vote::Heartbeat { leader: "a".into(), term: 3 },
            Vote::Claim { tab: "b".into(), term: 4 },
            Vote::Resign { leader: "a".into() },
        ] {
            let json = serde_json::to_string(&vote).unwrap();
            assert_eq!(serde_json::from_str::<Vote>(&json).unwrap(), vote);
        }
    }
}
