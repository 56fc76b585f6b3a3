//! Re-balancing: which queues of each subscribed topic this member owns, and starting /
//! stopping the per-queue pull tasks accordingly.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::Error;
use crate::route::{MessageQueue, TopicRoute};

use super::allocate::{allocate_averagely, sort_client_ids};
use super::offsets::QueueOffsets;
use super::{lock, rpc, Owned, QueueState, Shared};

/// `interval` scaled by a random factor in [0.5, 1.5).
pub(super) fn jittered(interval: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    interval.mul_f64(0.5 + (random % 1000) as f64 / 1000.0)
}

impl Shared {
    /// One re-balance of every subscribed topic. Failures keep the current assignment.
    pub(super) async fn rebalance(self: &Arc<Self>) {
        for index in 0..self.subscriptions.len() {
            let topic = self.subscriptions[index].topic.clone();
            let owned = {
                let _permit = self.client.group_heartbeats().startup_permit().await;
                self.owned_queues(&topic).await
            };
            match owned {
                Ok(owned) => {
                    if self.rebalance_failing.swap(false, Ordering::Relaxed) {
                        info!(group = %self.group, topic, "re-balance works again");
                    }
                    self.assign(&topic, index, owned).await
                }
                // The retry topic only exists once a broker created it for the group.
                Err(Error::TopicNotFound { .. }) if topic == self.retry_topic => {
                    debug!(topic, "retry topic not created yet")
                }
                // Once per outage; later failures are retried at every re-balance.
                Err(e) if !self.rebalance_failing.swap(true, Ordering::Relaxed) => {
                    warn!(group = %self.group, topic, error = %e, "re-balance failed; keeping the current queues and retrying")
                }
                Err(e) => debug!(group = %self.group, topic, error = %e, "re-balance failed again"),
            }
        }
    }

    /// The queues of `topic` this member should own now (AllocateMessageQueueAveragely).
    async fn owned_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, Error> {
        // The cached route: the client refreshes every route periodically.
        let route = self.client.topic_route(topic).await?;
        let queues = route.read_queues(topic); // sorted by topic, broker name, queue id
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = self.members(&route).await?;
        if !ids.contains(&self.client_id) {
            // A restarted broker forgets its members until their next heartbeat: send ours now
            // rather than giving up every queue until then.
            debug!(group = %self.group, topic, "broker does not list us; sending a heartbeat");
            if let Err(e) = self.heartbeat_now().await {
                debug!(group = %self.group, error = %e, "heartbeat failed");
            }
            ids = self.members(&route).await?;
            if !ids.contains(&self.client_id) {
                debug!(group = %self.group, topic, "broker does not list us yet; owning nothing until it does");
            }
        }
        sort_client_ids(&mut ids);
        Ok(allocate_averagely(&queues, &ids, &self.client_id).to_vec())
    }

    /// The group's member ids from the first master of `route` that answers (Java asks one
    /// broker of the topic).
    async fn members(&self, route: &TopicRoute) -> Result<Vec<String>, Error> {
        let mut last_error = None;
        for addr in route.broker_datas.iter().filter_map(|broker| broker.master_addr()) {
            match rpc::consumer_list(&self.client, addr, &self.group, self.request_timeout()).await {
                Ok(ids) => return Ok(ids),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(Error::NoMaster { broker_name: "(any broker of the topic)".into() }))
    }

    /// Starts pull tasks for newly owned queues of `topic`; stops and commits revoked ones.
    async fn assign(self: &Arc<Self>, topic: &str, subscription: usize, owned: Vec<MessageQueue>) {
        if self.stop.is_cancelled() {
            return;
        }
        let owned_set: HashSet<&MessageQueue> = owned.iter().collect();
        let (revoked, added) = {
            let mut queues = lock(&self.queues);
            let revoked: Vec<Arc<QueueState>> = queues
                .iter()
                .filter(|owned| owned.0.queue.topic == topic && !owned_set.contains(&owned.0.queue))
                .map(|owned| owned.0.clone())
                .collect();
            for state in &revoked {
                queues.remove(&state.queue);
                state.stop.cancel();
            }
            let mut added = Vec::new();
            for queue in &owned {
                if !queues.contains(queue) {
                    let state = Arc::new(QueueState {
                        queue: queue.clone(),
                        offsets: Mutex::new(QueueOffsets::unstarted()),
                        room: Default::default(),
                        stop: self.stop.child_token(),
                    });
                    queues.insert(Owned(state.clone()));
                    added.push(state);
                }
            }
            (revoked, added)
        };
        if !revoked.is_empty() || !added.is_empty() {
            self.cfg.stats.rebalanced();
        }
        for state in revoked {
            // Whatever was acknowledged is committed; the rest goes to the queue's new owner.
            let _serial = self.commit_lock.lock().await;
            match self.commit_queue(&state).await {
                Ok(()) => info!(queue = %state.queue, "queue revoked"),
                Err(e) => warn!(queue = %state.queue, error = %e, "queue revoked; committing its offset failed"),
            }
        }
        for state in added {
            info!(queue = %state.queue, "queue assigned");
            tokio::spawn(self.clone().consume_queue(state, subscription));
        }
    }
}

