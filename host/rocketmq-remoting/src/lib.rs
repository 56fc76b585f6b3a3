//! A client for Apache RocketMQ's classic remoting (TCP) protocol, as 4.x clients speak it and
//! 4.9.x / 5.x brokers serve it.
//!
//! * [`command`] — `RemotingCommand`, JSON headers, the frame codec.
//! * [`connection`] — the [`RequestHandler`] trait for requests brokers send to clients.
//! * [`client`] — [`Client`]: connection pool, name-server fail-over, route cache, ACL, namespaces.
//! * [`message`] — [`MessageExt`] and the stored-message decoder.
//! * [`consumer`] — [`Consumer`]: cluster consumer (heartbeat, re-balance, long-poll pull, offsets).
//! * [`producer`] — [`Producer`] (SEND_MESSAGE_V2).
//! * [`acl`], [`namespace`], [`route`], [`codes`], [`error`].
//!
//! ## What a crash costs
//! Consumers commit what the caller acknowledged on every pull (PULL_MESSAGE's commit-offset
//! flag, as the Java push consumer does) and every [`ConsumerConfig::commit_interval`]
//! (default 1 s). A consumer that dies without [`Consumer::shutdown`] loses nothing
//! acknowledged, and its queues' next owner gets again at most what was in flight per queue:
//! `max_unacked_per_queue + pull_batch_size` messages (the unacknowledged window plus one pull
//! batch). A clean shutdown commits everything acknowledged: no duplicates.
//!
//! ## Many consumers in one process
//! All consumers of one [`Client`] share one heartbeat per broker carrying every group (as the
//! Java `MQClientInstance` does), their start-up requests go through a small per-client limit,
//! and their periodic re-balances are jittered, so thousands of groups start without swamping
//! the broker. Use one `Client` for all of them.

pub mod acl;
pub mod client;
pub mod codes;
pub mod command;
pub mod connection;
pub mod consumer;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod namespace;
pub mod producer;
pub mod route;

pub use acl::Credentials;
pub use client::{Client, ClientConfig, HandlerId};
pub use command::RemotingCommand;
pub use connection::RequestHandler;
pub use consumer::{Acks, Batch, Consumer, ConsumerConfig, ConsumerStats, QueueProgress, StartPosition};
pub use error::Error;
pub use message::{decode_message, decode_messages, MessageExt, Properties};
pub use producer::{OutgoingMessage, Producer, SendResult};
pub use route::{MessageQueue, TopicRoute};
