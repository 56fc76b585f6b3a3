//! A small command-line tool over the client, for trying it against a real broker:
//!
//! ```text
//! cargo run --release -p rocketmq-remoting --example rmqctl -- <namesrv> route <topic>
//! cargo run --release -p rocketmq-remoting --example rmqctl -- <namesrv> create-topic <cluster|broker> <topic> [queues]
//! cargo run --release -p rocketmq-remoting --example rmqctl -- <namesrv> send <topic> <count> [body-size] [tag]
//! cargo run --release -p rocketmq-remoting --example rmqctl -- <namesrv> send-every <topic> <count> <millis>
//! ```
//! `send-every` keeps going when a send fails (printing the error), for broker-restart trials.
//! `RMQ_ACCESS_KEY` / `RMQ_SECRET_KEY` set credentials, `RMQ_NAMESPACE` a namespace.
//! Each sent message prints one JSON line: msgId, queueId, queueOffset, brokerName.

use std::io::Write;
use std::process::ExitCode;

use rocketmq_remoting::{Client, ClientConfig, Credentials, OutgoingMessage, Producer};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmqctl: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: rmqctl <namesrv> (route <topic> | create-topic <target> <topic> [queues] | \
                 send <topic> <count> [size] [tag] | send-every <topic> <count> <millis>)";
    let [namesrv, command, rest @ ..] = args else { return Err(usage.into()) };
    let mut cfg = ClientConfig::new([namesrv.as_str()]);
    if let (Ok(ak), Ok(sk)) = (std::env::var("RMQ_ACCESS_KEY"), std::env::var("RMQ_SECRET_KEY")) {
        cfg = cfg.with_credentials(Credentials::new(ak, sk));
    }
    if let Ok(ns) = std::env::var("RMQ_NAMESPACE") {
        cfg = cfg.with_namespace(ns);
    }
    let client = Client::new(cfg)?;
    match (command.as_str(), rest) {
        ("route", [topic]) => {
            let route = client.topic_route(&client.wrap(topic)).await?;
            // Ignore a closed stdout (e.g. piped into `head`).
            let _ = writeln!(std::io::stdout(), "{route:#?}");
        }
        ("create-topic", [target, topic, queues @ ..]) => {
            let queues = queues.first().map(|q| q.parse()).transpose()?.unwrap_or(4);
            client.create_topic(target, &client.wrap(topic), queues).await?;
        }
        ("send", [topic, count, more @ ..]) => {
            let count: usize = count.parse()?;
            let size: usize = more.first().map(|s| s.parse()).transpose()?.unwrap_or(64);
            let producer = Producer::start(client.clone(), "rmqctl-producer").await?;
            for seq in 0..count {
                let mut body = format!("rmqctl seq={seq} ").into_bytes();
                body.resize(size.max(body.len()), b'x');
                let mut message = OutgoingMessage::new(topic.as_str(), body)
                    .with_key(format!("key-{seq}"))
                    .with_property("seq", seq.to_string());
                if let Some(tag) = more.get(1) {
                    message = message.with_tags(tag.as_str());
                }
                let sent = producer.send(message).await?;
                println!(
                    r#"{{"msgId":"{}","queueId":{},"queueOffset":{},"brokerName":"{}"}}"#,
                    sent.msg_id, sent.queue.queue_id, sent.queue_offset, sent.queue.broker_name
                );
            }
        }
        ("send-every", [topic, count, millis]) => {
            let producer = Producer::start(client.clone(), "rmqctl-producer").await?;
            let mut ticker = tokio::time::interval(std::time::Duration::from_millis(millis.parse()?));
            let (mut sent, mut failed) = (0, 0);
            for seq in 0..count.parse::<usize>()? {
                ticker.tick().await;
                match producer.send(OutgoingMessage::new(topic.as_str(), format!("rmqctl seq={seq}"))).await {
                    Ok(result) => {
                        sent += 1;
                        println!(r#"{{"seq":{seq},"msgId":"{}","queueOffset":{}}}"#, result.msg_id, result.queue_offset);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("rmqctl: seq {seq}: {e}");
                    }
                }
            }
            eprintln!("rmqctl: sent {sent}, failed {failed}");
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
