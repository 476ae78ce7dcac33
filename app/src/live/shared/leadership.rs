//! Who leads: the tab holding the Web Lock, or without Web Locks the one the tabs vote for
//! (`election`); how a follower answers the hub's roll call, and how a tab takes the lead.

use super::*;

/// How the tabs agree on the leader.
pub(super) enum Leadership {
    /// The lead is a Web Lock, which passes to a waiting tab by itself.
    Locks {
        leading: HeldLock,
        /// Held as long as the tab lives: the hub tells a crashed tab by its missing lock.
        alive: HeldLock,
    },
    /// No Web Locks: the tabs vote on the channel.
    Votes { election: Election, ticker: Option<IntervalHandle> },
}

/// A follower tells the hub it is still there (see `Roll`).
pub(super) fn answer_heartbeat(rc: &Rc<RefCell<Tab>>) {
    let id = {
        let tab = rc.borrow();
        match &tab.mode {
            Mode::Shared(link) if link.hub.is_none() => tab.id.clone(),
            _ => return,
        }
    };
    to_hub(rc, ToHub::Alive { tab: id });
}

/// Feeds the tab's election (when the tabs vote) and does what it decides.
pub(super) fn decide(rc: &Rc<RefCell<Tab>>, step: impl FnOnce(&mut Election, f64) -> Vec<Decision>) {
    let decisions = {
        let mut tab = rc.borrow_mut();
        let Mode::Shared(HubLink { leadership: Leadership::Votes { election, .. }, .. }) = &mut tab.mode else {
            return;
        };
        step(election, js_sys::Date::now())
    };
    perform_votes(rc, decisions);
}

pub(super) fn perform_votes(rc: &Rc<RefCell<Tab>>, decisions: Vec<Decision>) {
    for decision in decisions {
        let (channel, user, hub) = match &rc.borrow().mode {
            Mode::Shared(link) => (link.channel.clone(), link.user.clone(), link.hub.clone()),
            _ => return,
        };
        match decision {
            Decision::Send(vote) => {
                if let (Vote::Heartbeat { .. }, Some(hub)) = (&vote, &hub) {
                    hub.beat();
                }
                post(&channel, &Relay::Vote(vote));
            }
            Decision::Lead => {
                lead(rc, &user);
            }
            Decision::StepDown => {
                if let Mode::Shared(link) = &mut rc.borrow_mut().mode {
                    link.hub = None;
                }
                if let Some(hub) = hub {
                    hub.close();
                }
            }
            Decision::Reannounce => {
                if let Some(hub) = hub {
                    hub.broadcast(ToTabs::HubUp);
                }
            }
        }
    }
}

/// The tab got the lead: it runs the hub. False (let go of the lock) when it no longer shares.
pub(super) fn lead(rc: &Rc<RefCell<Tab>>, user: &str) -> bool {
    let (channel, voting) = match &rc.borrow().mode {
        Mode::Shared(link) if link.hub.is_none() => {
            (link.channel.clone(), matches!(link.leadership, Leadership::Votes { .. }))
        }
        _ => return false,
    };
    let hub = Hub::start(user, channel, Rc::downgrade(rc), voting);
    if let Mode::Shared(link) = &mut rc.borrow_mut().mode {
        link.hub = Some(hub.clone());
    }
    hub.broadcast(ToTabs::HubUp);
    true
}
