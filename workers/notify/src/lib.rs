//! Notify: everything the product reports is one [`event::Event`] (CloudEvents 1.0) in the
//! catalog's durable outbox; [`dispatch::Dispatcher`] matches it against the rules
//! ([`rules`]), plans deliveries under idempotency keys with throttles and digest windows,
//! renders them for people ([`render`]) and sends them ([`send`], [`email`]) with retries, backoff,
//! per-channel rate limits and a dead letter.

pub mod dispatch;
pub mod email;
pub mod event;
pub mod render;
pub mod rules;
pub mod send;
pub mod template;

pub use dispatch::{Clock, Directory, Dispatcher, SystemClock, Tick};
pub use event::{Data, Event, Finding, Payload, Scope};
pub use rules::{Action, Period, Rule, Template};
pub use send::{Channel, Kind};
