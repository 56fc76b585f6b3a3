//! One TCP connection to a broker or name server: a writer task batching frames, a reader task
//! completing pending requests by opaque and dispatching requests the server sends to us.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, warn};

use crate::codes::response;
use crate::command::{FrameCodec, RemotingCommand};
use crate::error::{request_label, Error};

/// Handles requests a broker sends to this client (NOTIFY_CONSUMER_IDS_CHANGED,
/// GET_CONSUMER_RUNNING_INFO, RESET_CONSUMER_CLIENT_OFFSET, CHECK_TRANSACTION_STATE, …).
///
/// Called on the connection's reader task: return quickly (spawn for slow work).
pub trait RequestHandler: Send + Sync + 'static {
    /// `Some(response)` if this handler took the request (opaque and response flag are filled in
    /// by the connection); `None` to let the next handler try. A request nobody takes is
    /// answered with REQUEST_CODE_NOT_SUPPORTED (one-way requests get no answer).
    fn handle(&self, server_addr: &str, request: &RemotingCommand) -> Option<RemotingCommand>;
}

/// Registered handlers with their ids, tried in registration order.
#[derive(Default, Clone)]
pub(crate) struct Handlers(Arc<RwLock<Vec<(u64, SharedHandler)>>>);

type SharedHandler = Arc<dyn RequestHandler>;

impl Handlers {
    pub(crate) fn add(&self, id: u64, handler: Arc<dyn RequestHandler>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).push((id, handler));
    }

    pub(crate) fn remove(&self, id: u64) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).retain(|(other, _)| *other != id);
    }

    fn dispatch(&self, server_addr: &str, request: &RemotingCommand) -> Option<RemotingCommand> {
        let handlers: Vec<SharedHandler> =
            self.0.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, h)| h.clone()).collect();
        handlers.iter().find_map(|handler| handler.handle(server_addr, request))
    }
}

/// Answers are boxed: a pending request's channel holds a pointer, not a 144-byte command, and
/// every queue of every consumer has a pull pending nearly all the time.
type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Box<RemotingCommand>>>>>;

/// Frames waiting for the writer; bounded so a stuck socket pushes back on callers.
const WRITE_QUEUE: usize = 1024;

/// A request timed out on a connection that received nothing for this long (or for the whole
/// timeout, if longer): the peer is presumed gone. Not just the request timeout: a live broker
/// busy for seconds (creating thousands of groups' retry topics, a GC pause) is silent that long,
/// and closing its connection drops every consumer group on it.
#[cfg(not(test))]
const PRESUMED_DEAD_AFTER: Duration = Duration::from_secs(10);
#[cfg(test)]
const PRESUMED_DEAD_AFTER: Duration = Duration::from_millis(100);

/// A request queued by [`Connection::send`], its answer not yet in.
pub(crate) struct PendingAnswer {
    connection: Arc<Connection>,
    opaque: i32,
    code: i32,
    answer: oneshot::Receiver<Box<RemotingCommand>>,
    deadline: tokio::time::Instant,
    /// For the error message.
    timeout: Duration,
}

impl PendingAnswer {
    /// The response, or a timeout when the request's time is up. Not an `async fn`: its future
    /// would hold `self` beside the fields taken out of it, in every queue's long poll.
    pub(crate) fn answer(self) -> impl Future<Output = Result<RemotingCommand, Error>> {
        let PendingAnswer { connection, opaque, code, answer, deadline, timeout } = self;
        async move {
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(response)) => Ok(*response),
                // The reader dropped our sender: the connection closed.
                Ok(Err(_)) => Err(connection.closed_error(code)),
                Err(_) => {
                    connection.forget(opaque);
                    // A silent peer is presumed gone (host down, network cut: no RST arrives);
                    // close so the next request reconnects.
                    let silent = connection.silent_for();
                    if silent >= timeout.max(PRESUMED_DEAD_AFTER) {
                        warn!(addr = connection.addr, ?timeout, ?silent, "a request timed out and nothing came from the server meanwhile; closing the connection");
                        connection.close();
                    }
                    Err(Error::Timeout { addr: connection.addr.clone(), request: request_label(code), timeout })
                }
            }
        }
    }
}

pub(crate) struct Connection {
    addr: String,
    writer: mpsc::Sender<RemotingCommand>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    reader: AbortHandle,
    stop_writer: Arc<Notify>,
    opened: Instant,
    /// Milliseconds after `opened` when the last frame arrived.
    last_read_ms: Arc<AtomicU64>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The writer ends when its last sender (ours) goes; the reader must be stopped.
        self.reader.abort();
    }
}

impl Connection {
    pub(crate) async fn connect(
        addr: &str,
        connect_timeout: Duration,
        max_frame: usize,
        handlers: Handlers,
    ) -> Result<Arc<Connection>, Error> {
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(Error::Connect { addr: addr.to_string(), source }),
            Err(_) => {
                let source = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer in {connect_timeout:?}"));
                return Err(Error::Connect { addr: addr.to_string(), source });
            }
        };
        stream.set_nodelay(true).ok();
        let (read_half, write_half) = stream.into_split();
        let (writer, writer_rx) = mpsc::channel(WRITE_QUEUE);
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let stop_writer = Arc::new(Notify::new());
        let opened = Instant::now();
        let last_read_ms = Arc::new(AtomicU64::new(0));

        tokio::spawn(write_loop(
            addr.to_string(),
            FramedWrite::new(write_half, FrameCodec::new(max_frame)),
            writer_rx,
            stop_writer.clone(),
            closed.clone(),
            pending.clone(),
        ));
        let reader = tokio::spawn(read_loop(
            addr.to_string(),
            FramedRead::new(read_half, FrameCodec::new(max_frame)),
            writer.downgrade(),
            (opened, last_read_ms.clone()),
            closed.clone(),
            pending.clone(),
            handlers,
        ))
        .abort_handle();
        debug!(addr, "connected");
        Ok(Arc::new(Connection { addr: addr.to_string(), writer, pending, closed, reader, stop_writer, opened, last_read_ms }))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the socket now; waiting requests fail with "connection closed".
    pub(crate) fn close(&self) {
        close(&self.closed, &self.pending);
        self.reader.abort();
        self.stop_writer.notify_one();
    }

    /// How long nothing at all has arrived on this connection.
    fn silent_for(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed)))
    }

    /// Sends a request and waits for its response (any code: callers interpret it).
    #[cfg(test)]
    pub(crate) async fn invoke(self: &Arc<Self>, request: RemotingCommand, timeout: Duration) -> Result<RemotingCommand, Error> {
        self.send(request, timeout).await?.answer().await
    }

    /// Queues a request; [`PendingAnswer::answer`] waits for its response, both within
    /// `timeout`. Split so a request waiting for its answer (a long-polling pull per queue,
    /// thousands per process) holds only the receiver and the timer, not the request.
    pub(crate) async fn send(self: &Arc<Self>, request: RemotingCommand, timeout: Duration) -> Result<PendingAnswer, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let opaque = request.opaque;
        let code = request.code;
        let (tx, answer) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(opaque, tx);
        // Checked after inserting: the reader sets `closed` before it drains `pending`.
        let queued = if self.is_closed() {
            Err(self.closed_error(code))
        } else {
            // At once when the writer has room (nearly always); waiting for room is boxed.
            match self.writer.try_send(request) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(request)) => match Box::pin(tokio::time::timeout_at(deadline, self.writer.send(request))).await {
                    Ok(sent) => sent.map_err(|_| self.closed_error(code)),
                    Err(_) => Err(Error::Timeout { addr: self.addr.clone(), request: request_label(code), timeout }),
                },
                Err(mpsc::error::TrySendError::Closed(_)) => Err(self.closed_error(code)),
            }
        };
        match queued {
            Ok(()) => Ok(PendingAnswer { connection: self.clone(), opaque, code, answer, deadline, timeout }),
            Err(e) => {
                self.forget(opaque);
                Err(e)
            }
        }
    }

    fn closed_error(&self, code: i32) -> Error {
        Error::ConnectionClosed { addr: self.addr.clone(), request: request_label(code) }
    }

    /// Sends a request flagged one-way; no response is expected.
    pub(crate) async fn invoke_oneway(&self, mut request: RemotingCommand, timeout: Duration) -> Result<(), Error> {
        request.mark_oneway();
        let code = request.code;
        match tokio::time::timeout(timeout, self.writer.send(request)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::ConnectionClosed { addr: self.addr.clone(), request: request_label(code) }),
            Err(_) => Err(Error::Timeout { addr: self.addr.clone(), request: request_label(code), timeout }),
        }
    }

    fn forget(&self, opaque: i32) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&opaque);
    }
}

fn close(closed: &AtomicBool, pending: &Pending) {
    closed.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiter with "connection closed".
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

async fn write_loop(
    addr: String,
    mut sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, FrameCodec>,
    mut queue: mpsc::Receiver<RemotingCommand>,
    stop: Arc<Notify>,
    closed: Arc<AtomicBool>,
    pending: Pending,
) {
    loop {
        let first = tokio::select! {
            next = queue.recv() => match next {
                Some(command) => command,
                None => break,
            },
            _ = stop.notified() => break,
        };
        let mut result = sink.feed(first).await;
        // Batch whatever is already queued into one flush.
        while result.is_ok() {
            match queue.try_recv() {
                Ok(next) => result = sink.feed(next).await,
                Err(_) => break,
            }
        }
        if let Err(e) = result.and(sink.flush().await) {
            warn!(addr, error = %e, "write failed; closing the connection");
            break;
        }
    }
    close(&closed, &pending);
    let _ = sink.close().await;
}

async fn read_loop(
    addr: String,
    mut frames: FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>,
    writer: mpsc::WeakSender<RemotingCommand>,
    (opened, last_read_ms): (Instant, Arc<AtomicU64>),
    closed: Arc<AtomicBool>,
    pending: Pending,
    handlers: Handlers,
) {
    loop {
        let command = match frames.next().await {
            Some(Ok(command)) => {
                last_read_ms.store(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
                command
            }
            Some(Err(e)) => {
                warn!(addr, error = %e, "unreadable data; closing the connection");
                break;
            }
            None => {
                debug!(addr, "closed by the server");
                break;
            }
        };
        if command.is_response() {
            let waiter = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&command.opaque);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Box::new(command));
                }
                None => debug!(addr, opaque = command.opaque, "response for a request no one waits for (timed out?)"),
            }
            continue;
        }
        let answer = handlers.dispatch(&addr, &command).map(|mut answer| {
            answer.opaque = command.opaque;
            answer.flag = RemotingCommand::response_to(&command, 0, None).flag;
            answer
        });
        if command.is_oneway() {
            continue;
        }
        let answer = answer.unwrap_or_else(|| {
            debug!(addr, code = command.code, "request from the server not supported");
            RemotingCommand::response_to(
                &command,
                response::REQUEST_CODE_NOT_SUPPORTED,
                Some(format!("request code {} not supported by this client", command.code)),
            )
        });
        let Some(writer) = writer.upgrade() else { break };
        if writer.try_send(answer).is_err() {
            warn!(addr, code = command.code, "write queue full; dropped the answer to a server request");
        }
    }
    close(&closed, &pending);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    struct Echo;
    impl RequestHandler for Echo {
        fn handle(&self, _: &str, request: &RemotingCommand) -> Option<RemotingCommand> {
            (request.code == 40).then(|| RemotingCommand::response_to(request, 0, Some("seen".into())))
        }
    }

    /// A fake server: answers each request with code = request code, and sends us one request
    /// (code 40) and one we do not support (code 999), checking our answers.
    async fn fake_server(listener: TcpListener) -> Vec<RemotingCommand> {
        let (socket, _) = listener.accept().await.unwrap();
        let (r, w) = socket.into_split();
        let mut frames = FramedRead::new(r, FrameCodec::default());
        let mut sink = FramedWrite::new(w, FrameCodec::default());
        let mut ours = RemotingCommand::request(40);
        ours.opaque = 1_000_001;
        sink.send(ours).await.unwrap();
        let mut unknown = RemotingCommand::request(999);
        unknown.opaque = 1_000_002;
        sink.send(unknown).await.unwrap();
        let (mut seen, mut answered) = (Vec::new(), 0);
        while let Some(Ok(cmd)) = frames.next().await {
            if cmd.is_response() {
                seen.push(cmd);
            } else {
                let mut answer = RemotingCommand::response_to(&cmd, cmd.code, None);
                answer.body = cmd.body.clone();
                sink.send(answer).await.unwrap();
                answered += 1;
            }
            if seen.len() == 2 && answered == 20 {
                break;
            }
        }
        seen
    }

    #[tokio::test]
    async fn requests_responses_and_server_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(fake_server(listener));
        let handlers = Handlers::default();
        handlers.add(1, Arc::new(Echo));
        let conn = Connection::connect(&addr, Duration::from_secs(1), 1 << 20, handlers).await.unwrap();
        let calls = (1..=20).map(|code| {
            let conn = &conn;
            async move {
                let resp = conn.invoke(RemotingCommand::request(code).with_body(vec![code as u8]), Duration::from_secs(5)).await.unwrap();
                assert_eq!((resp.code, &resp.body[..]), (code, &[code as u8][..]));
            }
        });
        futures_util::future::join_all(calls).await;
        let seen = server.await.unwrap();
        let by_opaque = |o| seen.iter().find(|c| c.opaque == o).unwrap();
        assert_eq!(by_opaque(1_000_001).remark.as_deref(), Some("seen"));
        assert_eq!(by_opaque(1_000_002).code, response::REQUEST_CODE_NOT_SUPPORTED);
    }

    #[tokio::test]
    async fn timeout_names_the_address_and_closed_connection_fails_fast() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(socket);
        });
        let conn = Connection::connect(&addr, Duration::from_secs(1), 1 << 20, Handlers::default()).await.unwrap();
        let err = conn.invoke(RemotingCommand::request(105), Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }) && err.to_string().contains(&addr), "{err}");
        assert!(!conn.is_closed(), "a peer silent for less than PRESUMED_DEAD_AFTER may just be busy");
        conn.invoke(RemotingCommand::request(105), Duration::from_millis(100)).await.unwrap_err();
        // Nothing at all arrived for PRESUMED_DEAD_AFTER: the connection is presumed dead.
        assert!(conn.is_closed());
        let err = conn.invoke(RemotingCommand::request(105), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, Error::ConnectionClosed { .. }), "{err}");
        server.await.unwrap();
    }
}
