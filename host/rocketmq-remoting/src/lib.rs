//! Apache RocketMQ remoting client.
