//! `Client`: the shared entry point. A pool of connections (reconnect with back-off), requests
//! to brokers and to name servers (with fail-over), a topic route cache refreshed every 30 s and
//! on demand, ACL signing, namespaces, and registration of handlers for server requests.
//!
//! Names passed to [`Client`] methods are wire names: apply [`Client::wrap`] to user-facing
//! topic / group names first when a namespace is configured.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use crate::acl::Credentials;
use crate::codes::{request, response};
use crate::command::{parse_json, RemotingCommand, DEFAULT_MAX_FRAME};
use crate::connection::{Connection, Handlers, PendingAnswer, RequestHandler};
use crate::consumer::GroupHeartbeats;
use crate::error::{request_label, Error};
use crate::namespace;
use crate::route::{ClusterInfo, TopicRoute};

/// The template topic brokers with `autoCreateTopicEnable` register and create new topics from.
pub(crate) const AUTO_CREATE_TOPIC: &str = "TBW102";

/// Client settings. `ClientConfig::new(["127.0.0.1:9876"])` and adjust the public fields.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name server addresses `host:port`; entries may also hold several separated by `;` or `,`.
    pub namesrv_addrs: Vec<String>,
    pub credentials: Option<Credentials>,
    /// Instance namespace: resources go on the wire as `namespace%name`.
    pub namespace: Option<String>,
    /// Part of the client id (`ip@instance_name`); empty → `pid#nanos`, unique per client.
    pub instance_name: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub route_refresh_interval: Duration,
    /// Longest wait between reconnect attempts to a failing address.
    pub max_reconnect_backoff: Duration,
    pub max_frame: usize,
}

impl ClientConfig {
    pub fn new<S: Into<String>>(namesrv_addrs: impl IntoIterator<Item = S>) -> Self {
        ClientConfig { namesrv_addrs: namesrv_addrs.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into()).filter(|ns: &String| !ns.is_empty());
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addrs: Vec::new(),
            credentials: None,
            namespace: None,
            instance_name: String::new(),
            request_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            route_refresh_interval: Duration::from_secs(30),
            max_reconnect_backoff: Duration::from_secs(5),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Shared handle: clone freely.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("client_id", &self.inner.client_id).field("namesrv", &self.inner.namesrv).finish()
    }
}

struct Inner {
    cfg: ClientConfig,
    namesrv: Vec<String>,
    client_id: String,
    /// Index into `namesrv` of the last name server that answered.
    preferred_namesrv: AtomicUsize,
    pool: Mutex<HashMap<String, Arc<Slot>>>,
    routes: RwLock<HashMap<String, Arc<TopicRoute>>>,
    handlers: Handlers,
    next_handler_id: AtomicU64,
    refresher_started: AtomicBool,
    /// Set by [`Client::leave`].
    leaving: AtomicBool,
    /// The consumer groups of this client, heartbeated together.
    groups: Arc<GroupHeartbeats>,
}

/// One address of the pool: the live connection and the reconnect back-off state.
#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    connection: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

/// Identifies a registered handler, for [`Client::remove_request_handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerId(u64);

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let namesrv: Vec<String> = cfg
            .namesrv_addrs
            .iter()
            .flat_map(|entry| entry.split([';', ',']))
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
            .map(str::to_string)
            .collect();
        if namesrv.is_empty() {
            return Err(Error::Config("no name server address given; set e.g. 127.0.0.1:9876".into()));
        }
        for addr in &namesrv {
            let valid_port = addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid_port {
                return Err(Error::Config(format!("name server address {addr:?} is not host:port (e.g. 127.0.0.1:9876)")));
            }
        }
        if let Some(c) = &cfg.credentials {
            if c.access_key.is_empty() || c.secret_key.is_empty() {
                return Err(Error::Config("credentials need both an AccessKey and a SecretKey".into()));
            }
        }
        let instance_name = if cfg.instance_name.is_empty() {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
            format!("{}#{nanos}", std::process::id())
        } else {
            cfg.instance_name.clone()
        };
        let client_id = format!("{}@{instance_name}", local_ip_towards(&namesrv[0]));
        let groups = Arc::new(GroupHeartbeats::new());
        let handlers = Handlers::default();
        // The groups' own listener, first; ids from 1 are the caller's.
        handlers.add(0, groups.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                cfg,
                namesrv,
                client_id,
                preferred_namesrv: AtomicUsize::new(0),
                pool: Mutex::default(),
                routes: RwLock::default(),
                handlers,
                next_handler_id: AtomicU64::new(1),
                refresher_started: AtomicBool::new(false),
                leaving: AtomicBool::new(false),
                groups,
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// `ip@instance`, what brokers list as this consumer's id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub fn namesrv_addrs(&self) -> &[String] {
        &self.inner.namesrv
    }

    /// User name → wire name (`NS%name`, `%RETRY%NS%group`) for the configured namespace.
    pub fn wrap(&self, resource: &str) -> String {
        namespace::wrap(self.inner.cfg.namespace.as_deref(), resource)
    }

    /// Wire name → user name.
    pub fn unwrap<'a>(&self, resource: &'a str) -> std::borrow::Cow<'a, str> {
        namespace::unwrap(self.inner.cfg.namespace.as_deref(), resource)
    }

    /// The process is ending: consumers stopped from now on commit their offsets but skip
    /// UNREGISTER_CLIENT, one request per group per broker (thousands of consumers took the
    /// broker many seconds). Call [`Client::close`] after they stopped: a broker drops every
    /// group of a closed connection at once, and tells the other members as on UNREGISTER.
    pub fn leave(&self) {
        self.inner.leaving.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.inner.leaving.load(Ordering::SeqCst)
    }

    /// Closes every connection now; requests waiting on them fail with "connection closed".
    pub async fn close(&self) {
        let slots: Vec<Arc<Slot>> = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for slot in slots {
            if let Some(connection) = slot.state.lock().await.connection.take() {
                connection.close();
            }
        }
    }

    /// Registers a handler for requests brokers send to this client (tried in order).
    pub fn add_request_handler(&self, handler: Arc<dyn RequestHandler>) -> HandlerId {
        let id = self.inner.next_handler_id.fetch_add(1, Ordering::Relaxed);
        self.inner.handlers.add(id, handler);
        HandlerId(id)
    }

    pub fn remove_request_handler(&self, id: HandlerId) {
        self.inner.handlers.remove(id.0);
    }

    /// Sends `request` to `addr` and returns the response whatever its code (see
    /// [`Error::from_response`] and [`Client::invoke_ok`]). Signs it when credentials are set.
    pub async fn invoke(&self, addr: &str, request: RemotingCommand, timeout: Duration) -> Result<RemotingCommand, Error> {
        self.send(addr, request, timeout).await?.answer().await
    }

    /// The first half of [`Client::invoke`]: the request is on its way when this returns.
    pub(crate) async fn send(&self, addr: &str, mut request: RemotingCommand, timeout: Duration) -> Result<PendingAnswer, Error> {
        self.sign(&mut request);
        self.connection(addr).await?.send(request, timeout).await
    }

    /// Like [`Client::invoke`], but a response code other than SUCCESS is an error.
    pub async fn invoke_ok(&self, addr: &str, request: RemotingCommand, timeout: Duration) -> Result<RemotingCommand, Error> {
        let code = request.code;
        let response = self.invoke(addr, request, timeout).await?;
        if response.code == response::SUCCESS {
            Ok(response)
        } else {
            Err(self.response_error(addr, code, &response))
        }
    }

    /// Sends a one-way request (no response).
    pub async fn invoke_oneway(&self, addr: &str, mut request: RemotingCommand) -> Result<(), Error> {
        self.sign(&mut request);
        self.connection(addr).await?.invoke_oneway(request, self.inner.cfg.request_timeout).await
    }

    /// Sends `request` to the name servers, starting with the last one that answered and moving
    /// on to the next on transport failures.
    pub async fn invoke_namesrv(&self, request: RemotingCommand, timeout: Duration) -> Result<(String, RemotingCommand), Error> {
        let count = self.inner.namesrv.len();
        let start = self.inner.preferred_namesrv.load(Ordering::Relaxed);
        let mut tried = Vec::new();
        let mut last = String::new();
        for step in 0..count {
            let index = (start + step) % count;
            let addr = &self.inner.namesrv[index];
            match self.invoke(addr, request.clone(), timeout).await {
                Ok(response) => {
                    self.inner.preferred_namesrv.store(index, Ordering::Relaxed);
                    return Ok((addr.clone(), response));
                }
                Err(e) if e.is_transport() => {
                    debug!(addr, error = %e, "name server failed; trying the next");
                    tried.push(addr.clone());
                    last = e.to_string();
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::NameServerUnavailable { request: request_label(request.code), tried, last })
    }

    /// The route of `topic` (wire name), from the cache or the name servers.
    pub async fn topic_route(&self, topic: &str) -> Result<Arc<TopicRoute>, Error> {
        self.start_route_refresher();
        let cached = self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).get(topic).cloned();
        match cached {
            Some(route) => Ok(route),
            // Boxed, as in find_master: the rare path keeps the callers' futures small.
            None => Box::pin(self.refresh_route(topic)).await,
        }
    }

    /// Asks the name servers for `topic`'s route now and caches it.
    pub async fn refresh_route(&self, topic: &str) -> Result<Arc<TopicRoute>, Error> {
        let route = Arc::new(self.fetch_route(topic).await?);
        self.inner.routes.write().unwrap_or_else(|e| e.into_inner()).insert(topic.to_string(), route.clone());
        Ok(route)
    }

    async fn fetch_route(&self, topic: &str) -> Result<TopicRoute, Error> {
        let request = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
        let (addr, response) = self.invoke_namesrv(request.clone(), self.inner.cfg.request_timeout).await?;
        match response.code {
            response::SUCCESS => parse_json(&response.body).map_err(|e| Error::BadResponse {
                addr,
                what: "topic route",
                reason: e.to_string(),
            }),
            response::TOPIC_NOT_EXIST => Err(Error::TopicNotFound {
                topic: topic.to_string(),
                namesrv: self.inner.namesrv.clone(),
                auto_create: topic != AUTO_CREATE_TOPIC && Box::pin(self.topic_route(AUTO_CREATE_TOPIC)).await.is_ok(),
            }),
            _ => Err(self.response_error(&addr, request.code, &response)),
        }
    }

    /// Forgets a cached route (e.g. after the topic was created or changed).
    pub fn forget_route(&self, topic: &str) {
        self.inner.routes.write().unwrap_or_else(|e| e.into_inner()).remove(topic);
    }

    /// Master address of `broker_name` from the cached routes.
    pub fn master_addr(&self, broker_name: &str) -> Option<String> {
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.values().find_map(|route| route.master_addr(broker_name).map(str::to_string))
    }

    /// Master address of `broker_name`, refreshing `topic`'s route once if it is unknown.
    pub async fn find_master(&self, topic: &str, broker_name: &str) -> Result<String, Error> {
        if let Some(addr) = self.master_addr(broker_name) {
            return Ok(addr);
        }
        // Boxed: a name-server exchange is large and rare, and every pull waits in this call's
        // caller.
        let route = Box::pin(self.refresh_route(topic)).await?;
        route.master_addr(broker_name).map(str::to_string).ok_or_else(|| Error::NoMaster { broker_name: broker_name.to_string() })
    }

    /// Master addresses of every broker known from the cached routes (for heartbeats).
    pub fn all_master_addrs(&self) -> Vec<String> {
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut addrs: Vec<String> = routes
            .values()
            .flat_map(|route| route.broker_datas.iter().filter_map(|b| b.master_addr().map(str::to_string)))
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// Every broker address (masters and slaves) of the cached routes, as Java heartbeats them.
    pub fn all_broker_addrs(&self) -> Vec<String> {
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut addrs: Vec<String> =
            routes.values().flat_map(|route| route.broker_datas.iter().flat_map(|b| b.broker_addrs.values().cloned())).collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    pub(crate) fn group_heartbeats(&self) -> &Arc<GroupHeartbeats> {
        &self.inner.groups
    }

    /// Creates (or updates) `topic` with `queues` read and write queues on every master of
    /// `target`, which names a cluster or a broker. Mainly for tests and tools.
    pub async fn create_topic(&self, target: &str, topic: &str, queues: u32) -> Result<(), Error> {
        let request = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
        let (addr, response) = self.invoke_namesrv(request.clone(), self.inner.cfg.request_timeout).await?;
        if response.code != response::SUCCESS {
            return Err(self.response_error(&addr, request.code, &response));
        }
        let info: ClusterInfo = parse_json(&response.body).map_err(|e| Error::BadResponse {
            addr: addr.clone(),
            what: "cluster info",
            reason: e.to_string(),
        })?;
        let broker_names: Vec<String> = match info.cluster_addr_table.get(target) {
            Some(names) => names.clone(),
            None if info.broker_addr_table.contains_key(target) => vec![target.to_string()],
            None => {
                let mut known: Vec<&String> = info.cluster_addr_table.keys().chain(info.broker_addr_table.keys()).collect();
                known.sort();
                return Err(Error::Config(format!("{target:?} is neither a cluster nor a broker name; known: {known:?}")));
            }
        };
        for broker_name in broker_names {
            let master = info
                .broker_addr_table
                .get(&broker_name)
                .and_then(|b| b.master_addr())
                .ok_or_else(|| Error::NoMaster { broker_name: broker_name.clone() })?;
            let create = RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC)
                .with_field("topic", topic)
                .with_field("defaultTopic", "TBW102")
                .with_field("readQueueNums", queues)
                .with_field("writeQueueNums", queues)
                .with_field("perm", crate::route::PERM_READ | crate::route::PERM_WRITE)
                .with_field("topicFilterType", "SINGLE_TAG")
                .with_field("topicSysFlag", 0)
                .with_field("order", false);
            self.invoke_ok(master, create, self.inner.cfg.request_timeout).await?;
            info!(topic, broker = broker_name, queues, "topic created");
        }
        self.forget_route(topic);
        Ok(())
    }

    /// The error for a non-success `response` to a request with code `request_code`.
    pub fn response_error(&self, addr: &str, request_code: i32, response: &RemotingCommand) -> Error {
        let access_key = self.inner.cfg.credentials.as_ref().map(|c| c.access_key.as_str());
        Error::from_response(addr, request_code, access_key, response)
    }

    fn sign(&self, request: &mut RemotingCommand) {
        if let Some(credentials) = &self.inner.cfg.credentials {
            credentials.sign(request);
        }
    }

    /// The open connection to `addr`, if there is one and nobody is opening or dropping it.
    fn live_connection(&self, addr: &str) -> Option<Arc<Connection>> {
        let slot = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).get(addr).cloned()?;
        let state = slot.state.try_lock().ok()?;
        state.connection.as_ref().filter(|connection| !connection.is_closed()).cloned()
    }

    /// A live connection to `addr`: reused, or opened now unless the address is backing off.
    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, Error> {
        match self.live_connection(addr) {
            Some(connection) => Ok(connection),
            // Boxed: opening is large and rare, and every request's future would carry it.
            None => Box::pin(self.open_connection(addr)).await,
        }
    }

    async fn open_connection(&self, addr: &str) -> Result<Arc<Connection>, Error> {
        let slot = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).entry(addr.to_string()).or_default().clone();
        let mut state = slot.state.lock().await;
        if let Some(connection) = &state.connection {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
            state.connection = None;
        }
        let now = Instant::now();
        if let Some(retry_at) = state.retry_at.filter(|at| *at > now) {
            return Err(Error::Backoff { addr: addr.to_string(), reason: state.last_error.clone(), retry_in: retry_at - now });
        }
        let cfg = &self.inner.cfg;
        match Connection::connect(addr, cfg.connect_timeout, cfg.max_frame, self.inner.handlers.clone()).await {
            Ok(connection) => {
                if state.failures > 0 {
                    info!(addr, after_failures = state.failures, "reconnected");
                }
                state.failures = 0;
                state.retry_at = None;
                state.connection = Some(connection.clone());
                Ok(connection)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = Duration::from_millis(100u64 << state.failures.min(10)).min(cfg.max_reconnect_backoff);
                state.retry_at = Some(Instant::now() + backoff);
                state.last_error = e.to_string();
                // Once per outage; "reconnected" (INFO) tells when it ended.
                if state.failures == 1 {
                    warn!(addr, error = %e, "connect failed; retrying with back-off");
                } else {
                    debug!(addr, error = %e, retry_in = ?backoff, "connect failed again");
                }
                Err(e)
            }
        }
    }

    /// Starts the periodic route refresh once, on first use inside a runtime.
    fn start_route_refresher(&self) {
        if self.inner.refresher_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = self.inner.cfg.route_refresh_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let client = Client { inner };
                client.refresh_all_routes().await;
            }
        });
    }

    async fn refresh_all_routes(&self) {
        let topics: Vec<String> = self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for topic in topics {
            match self.fetch_route(&topic).await {
                Ok(route) => {
                    let mut routes = self.inner.routes.write().unwrap_or_else(|e| e.into_inner());
                    if routes.get(&topic).is_none_or(|old| **old != route) {
                        debug!(topic, "route changed");
                    }
                    routes.insert(topic, Arc::new(route));
                }
                Err(Error::TopicNotFound { .. }) => {
                    warn!(topic, "topic no longer exists on the name servers; dropping its route");
                    self.forget_route(&topic);
                }
                Err(e) => warn!(topic, error = %e, "route refresh failed; keeping the last known route"),
            }
        }
    }
}

/// The local address the OS would use to reach `addr` (no packet is sent), like Java's client
/// IP in the client id; loopback when it cannot tell.
fn local_ip_towards(addr: &str) -> String {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.connect(addr).map(|_| socket))
        .and_then(|socket| socket.local_addr())
        .map(|local| local.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_util::codec::{FramedRead, FramedWrite};

    use crate::command::FrameCodec;

    const ROUTE: &str = r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"C"}],
        "queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"writeQueueNums":4}]}"#;

    /// A name server that knows topic "T" and counts the route requests it answered.
    async fn fake_namesrv(served: Arc<AtomicUsize>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let (r, w) = socket.into_split();
                    let (mut requests, mut answers) = (FramedRead::new(r, FrameCodec::default()), FramedWrite::new(w, FrameCodec::default()));
                    while let Some(Ok(request)) = requests.next().await {
                        served.fetch_add(1, Ordering::SeqCst);
                        let answer = match request.field("topic") {
                            Some("T") => RemotingCommand::response_to(&request, response::SUCCESS, None).with_body(ROUTE.as_bytes().to_vec()),
                            _ => RemotingCommand::response_to(&request, response::TOPIC_NOT_EXIST, Some("No topic route info".into())),
                        };
                        if answers.send(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn fails_over_to_a_live_name_server_and_refreshes_routes() {
        let served = Arc::new(AtomicUsize::new(0));
        let live = fake_namesrv(served.clone()).await;
        let client = Client::new(ClientConfig {
            route_refresh_interval: Duration::from_millis(100),
            ..ClientConfig::new(["127.0.0.1:1".to_string(), live.clone()])
        })
        .unwrap();
        let route = client.topic_route("T").await.unwrap();
        assert_eq!(route.read_queues("T").len(), 4);
        assert_eq!(client.master_addr("b").as_deref(), Some("127.0.0.1:10911"));
        assert_eq!(client.all_master_addrs(), ["127.0.0.1:10911"]);
        assert_eq!(client.inner.preferred_namesrv.load(Ordering::Relaxed), 1, "remembers the live one");
        let err = client.topic_route("missing").await.unwrap_err();
        assert!(matches!(err, Error::TopicNotFound { .. }), "{err}");
        let before = served.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(served.load(Ordering::SeqCst) >= before + 2, "the cached route is refreshed periodically");
        assert!(client.topic_route("T").await.is_ok());
    }

    #[test]
    fn config_errors_are_clear() {
        let err = Client::new(ClientConfig::new(Vec::<String>::new())).unwrap_err();
        assert!(err.to_string().contains("no name server"), "{err}");
        let err = Client::new(ClientConfig::new(["localhost"])).unwrap_err();
        assert!(err.to_string().contains("host:port"), "{err}");
        let client = Client::new(ClientConfig::new(["127.0.0.1:9876;127.0.0.1:9877"])).unwrap();
        assert_eq!(client.namesrv_addrs().len(), 2);
        assert!(client.client_id().starts_with("127.0.0.1@"), "{}", client.client_id());
    }

    #[tokio::test]
    async fn unreachable_name_servers_fail_over_and_report_all() {
        let client = Client::new(ClientConfig {
            connect_timeout: Duration::from_millis(200),
            ..ClientConfig::new(["127.0.0.1:1", "127.0.0.1:2"])
        })
        .unwrap();
        let err = client.topic_route("T").await.unwrap_err();
        match &err {
            Error::NameServerUnavailable { tried, .. } => assert_eq!(tried.len(), 2),
            other => panic!("unexpected {other}"),
        }
        // A second attempt right away is refused by the back-off without touching the network.
        let err = client.topic_route("T").await.unwrap_err();
        assert!(err.to_string().contains("back-off"), "{err}");
    }
}
