//! A fake cluster for the consumer's unit tests: one server that is both name server and broker.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codes::{request, response};
use crate::command::{FrameCodec, RemotingCommand};

/// Serves every topic's route (one queue on itself) and sends what `answer` gives for any other
/// request, in order (nothing: the request is held). Answers of the client to the server's own
/// requests are dropped. Returns the address.
pub(super) async fn fake_cluster<F>(answer: F) -> String
where
    F: Fn(&RemotingCommand) -> Vec<RemotingCommand> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let route = format!(
        r#"{{"brokerDatas":[{{"brokerAddrs":{{0:"{addr}"}},"brokerName":"b","cluster":"C"}}],
            "queueDatas":[{{"brokerName":"b","perm":6,"readQueueNums":1,"writeQueueNums":1}}]}}"#
    );
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (answer, route) = (answer.clone(), route.clone());
            tokio::spawn(async move {
                let (r, w) = socket.into_split();
                let (mut requests, mut frames) = (FramedRead::new(r, FrameCodec::default()), FramedWrite::new(w, FrameCodec::default()));
                while let Some(Ok(request)) = requests.next().await {
                    if request.is_response() {
                        continue;
                    }
                    let sent = if request.code == request::GET_ROUTEINFO_BY_TOPIC {
                        vec![RemotingCommand::response_to(&request, response::SUCCESS, None).with_body(route.as_bytes().to_vec())]
                    } else {
                        answer(&request)
                    };
                    for frame in sent {
                        if frames.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}
