//! `inflow send`: produce test messages to RocketMQ.

use crate::config::{self, RocketMqConfig, Secret};
use rocketmq_remoting::{OutgoingMessage, Producer};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// Name server(s), host:port, separated by ';' or ',' (or take them from --config).
    #[arg(long, env = config::env::ROCKETMQ_NAMESRV, required_unless_present = "config")]
    pub namesrv: Option<String>,
    /// Take the name servers, credentials and namespace from this inflow config.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ACL AccessKey (with --secret-key).
    #[arg(long, env = config::env::ROCKETMQ_ACCESS_KEY, hide_env_values = true)]
    pub access_key: Option<String>,
    #[arg(long, env = config::env::ROCKETMQ_SECRET_KEY, hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long)]
    pub namespace: Option<String>,
    /// RocketMQ topic.
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub tag: Option<String>,
    /// Message keys, separated by spaces or repeated.
    #[arg(long = "keys", num_args = 1..)]
    pub keys: Vec<String>,
    /// A user property, KEY=VALUE; repeat for more (e.g. --property mqttSecondTopic=/room1).
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
    /// The body (UTF-8 text).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from this file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Send this many copies ("{seq}" in the body becomes the copy's number, as in the Java test tool).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub fn send(args: SendArgs) -> i32 {
    match send_all(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("inflow send: {e:#}");
            1
        }
    }
}

fn send_all(args: SendArgs) -> anyhow::Result<()> {
    let mut rmq = match &args.config {
        Some(path) => config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.rocketmq,
        None => RocketMqConfig::default(),
    };
    if let Some(list) = &args.namesrv {
        rmq.namesrv = config::namesrv_list([list.as_str()]);
    }
    if let (Some(ak), Some(sk)) = (&args.access_key, &args.secret_key) {
        rmq.access_key = Some(ak.clone());
        rmq.secret_key = Some(Secret::new(sk.clone()));
    }
    if args.namespace.is_some() {
        rmq.namespace = args.namespace.clone();
    }
    let body = match (&args.body, &args.body_file) {
        (_, Some(file)) => std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
        (Some(text), None) => text.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    super::runtime().block_on(async move {
        let client = crate::source::client(&rmq)?;
        let producer = Producer::start(client, "inflow-send").await?;
        for n in 0..args.count {
            let body = if args.count > 1 && args.body_file.is_none() {
                String::from_utf8_lossy(&body).replace("{seq}", &n.to_string()).into_bytes()
            } else {
                body.clone()
            };
            let mut message = OutgoingMessage::new(args.topic.clone(), body);
            if let Some(tag) = &args.tag {
                message = message.with_tags(tag.clone());
            }
            for key in args.keys.iter().flat_map(|k| k.split(' ')).filter(|k| !k.is_empty()) {
                message = message.with_key(key);
            }
            for (k, v) in &args.properties {
                message = message.with_property(k.clone(), v.clone());
            }
            let sent = producer.send(message).await?;
            println!(
                "{}",
                serde_json::json!({"msgId": sent.msg_id, "queueId": sent.queue.queue_id, "broker": sent.queue.broker_name, "offset": sent.queue_offset})
            );
        }
        Ok(())
    })
}
