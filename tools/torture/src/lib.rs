//! The torture run (`cargo xtask torture`): worker processes fight over a few
//! locks while the runner kills them, stops them past their TTL and cuts their
//! store connections; a checker then proves from the histories that no two
//! holders ever acted at once and that fencing tokens stopped every late one.
//! Every store also gets a renewal run ([`mode`]): leases renewed in the
//! background while each hold works for several TTLs, and no write may follow
//! a lost lease unless the lost signal had fired first.

pub mod checker;
pub mod history;
pub mod mode;
mod processes;
pub mod renewing_hold;
pub mod report;
pub mod resource;
pub mod runner;
mod servers;
mod skew;
pub mod stores;
mod threads;
pub mod worker;
