// An independent producer / consumer / admin built on the official Apache RocketMQ Java
// client, for inflow's tests and benchmarks. Compiles against the 4.x and 5.x clients alike
// (types whose package moved between them are only reached through `var`).
// Run it through tests/rig/java.sh <version> <subcommand> [options]; `help` lists them.
//
// Output: stdout carries JSON only, one object a line; progress and errors go to stderr,
// prefixed "rmqtool:". Exit codes: 0 ok, 1 error, 2 bad usage, 3 timed out.

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.consumer.store.ReadOffsetType;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientExt;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

public class RmqTool {
    static final String USAGE = String.join("\n",
        "usage: java.sh <version> <subcommand> [options]",
        "common: --namesrv HOST:PORT (required)  [--ak KEY --sk SECRET] (ACL)",
        "  produce --topic T --count N [--size B | --body TEXT] [--tag T] [--keys K] [--prop k=v]...",
        "          [--queue Q] [--group G]",
        "      TEXT, K and v may contain {seq} (the message's 0-based number). Without --body a",
        "      body of B bytes (default 64) is generated: \"inflow-rig seq=<n> size=<B> \" then filler.",
        "      Prints per message: seq, msgId, offsetMsgId, queueId, queueOffset, brokerName, status,",
        "      size, sha256, and body (base64) when size <= 1024.",
        "  consume --group G --topic T[,T2...] [--expr \"*\"] (--count N --timeout S | --stay-until stdin-closed)",
        "          [--from earliest|latest] [--threads K]",
        "      Clustering push consumer. Prints per message: msgId (UNIQ_KEY), offsetMsgId, topic, tags, keys,",
        "      queueId, queueOffset, brokerName, properties, body (base64), size, sha256, bornTimestamp,",
        "      storeTimestamp, bornHost, storeHost, reconsumeTimes. With --count: exits 0 once N arrived,",
        "      3 on timeout. With --stay-until stdin-closed: stays in the group until its standard input",
        "      closes (the caller decides when it leaves, not a clock), then exits 0. Writes",
        "      \"rmqtool: consumer started, ..., queues [ids]\" to stderr",
        "      once it holds queues (or after 30 s without), and \"rmqtool: queues at exit [ids]\".",
        "      Before leaving it waits until the offsets of what it consumed are recorded, so the",
        "      offsets it commits on shutdown cover every message it printed.",
        "  drain --group G --topic T --count N [--timeout S] [--threads K] [--batch B]",
        "      Consume N messages from the earliest offset; print one summary line: messages, seconds",
        "      (from consumer start to the Nth message), secondsToFirst, msgPerSec, cpuMicrosPerMsg",
        "      (process CPU time of all threads over the same span), bytes.",
        "  produce-bulk --topic T --count N [--size B | --body TEXT] [--prop k=v]... [--batch M] [--threads K]",
        "      Pre-load N messages (generated bodies of B bytes, or TEXT) with batch sends of M",
        "      (default 128; a batch must stay under the broker's 4 MiB); print one summary line.",
        "  produce-paced --topic T --count N --rate R [--size B] [--threads K] [--prime wait-stdin]",
        "      Send N messages at R per second (synchronous sends from K threads, default 4), the",
        "      body \"sent=<epoch microseconds> seq=<n> \" then filler to B bytes (default 256), for",
        "      latency measurements; print one summary line: messages, seconds, msgPerSec,",
        "      maxBehindMillis (how far the sender fell behind its schedule at worst). With --prime",
        "      wait-stdin it first sends one message with the body \"prime\" and waits for a line on",
        "      its standard input (the caller has seen the prime arrive) before the paced ones.",
        "  create-topic --topic T [--queues Q] [--cluster C]   create/update on every master; waits for the route",
        "  offsets --group G      the group's committed and the brokers' max offsets per queue",
        "  cluster                the brokers the name server knows");

    public static void main(String[] argv) {
        if (argv.length == 0 || argv[0].equals("help") || argv[0].equals("--help")) {
            System.out.println(USAGE);
            System.exit(argv.length == 0 ? 2 : 0);
        }
        int code;
        try {
            Opts o = new Opts(argv);
            switch (argv[0]) {
                case "produce": code = produce(o); break;
                case "consume": code = consume(o); break;
                case "drain": code = drain(o); break;
                case "produce-bulk": code = produceBulk(o); break;
                case "produce-paced": code = producePaced(o); break;
                case "create-topic": code = createTopic(o); break;
                case "offsets": code = offsets(o); break;
                case "cluster": code = cluster(o); break;
                default: throw new UsageError("unknown subcommand '" + argv[0] + "'");
            }
        } catch (UsageError e) {
            System.err.println("rmqtool: " + e.getMessage() + "\n" + USAGE);
            code = 2;
        } catch (Throwable e) {
            System.err.println("rmqtool: " + argv[0] + " failed: " + describe(e));
            code = 1;
        }
        System.out.flush();
        // Client threads are not all daemons; leave without waiting for them.
        Runtime.getRuntime().halt(code);
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return sb.toString();
    }

    // ---- produce ---------------------------------------------------------------------------

    static int produce(Opts o) throws Exception {
        String topic = o.required("topic");
        long count = o.longOpt("count", 1);
        int size = (int) o.longOpt("size", 64);
        String bodyTemplate = o.get("body");
        String tag = o.get("tag");
        String keys = o.get("keys");
        List<String[]> props = o.props();
        String queue = o.get("queue");
        DefaultMQProducer producer = startProducer(o);
        try {
            MessageQueue target = queue == null ? null : findQueue(producer, topic, Integer.parseInt(queue));
            for (long seq = 0; seq < count; seq++) {
                byte[] body = bodyTemplate != null
                    ? expand(bodyTemplate, seq).getBytes(StandardCharsets.UTF_8)
                    : generatedBody(seq, size);
                Message msg = new Message(topic, tag, keys == null ? null : expand(keys, seq), body);
                for (String[] kv : props) msg.putUserProperty(kv[0], expand(kv[1], seq));
                SendResult r = target == null ? producer.send(msg) : producer.send(msg, target);
                Json j = new Json()
                    .num("seq", seq)
                    .str("msgId", r.getMsgId())
                    .str("offsetMsgId", r.getOffsetMsgId())
                    .num("queueId", r.getMessageQueue().getQueueId())
                    .num("queueOffset", r.getQueueOffset())
                    .str("brokerName", r.getMessageQueue().getBrokerName())
                    .str("status", r.getSendStatus().name())
                    .num("size", body.length)
                    .str("sha256", sha256(body));
                if (body.length <= 1024) j.str("body", Base64.getEncoder().encodeToString(body));
                System.out.println(j.end());
            }
        } finally {
            producer.shutdown();
        }
        return 0;
    }

    static MessageQueue findQueue(DefaultMQProducer producer, String topic, int queueId) throws Exception {
        List<MessageQueue> queues = producer.fetchPublishMessageQueues(topic);
        for (MessageQueue mq : queues) {
            if (mq.getQueueId() == queueId) return mq;
        }
        throw new IllegalArgumentException("topic " + topic + " has no queue " + queueId + " (its queues: " + queues + ")");
    }

    static String expand(String template, long seq) {
        return template.replace("{seq}", Long.toString(seq));
    }

    // A recognizable body: a readable header, then filler that differs per message (so every
    // body has its own sha256) but still compresses like text.
    static byte[] generatedBody(long seq, int size) {
        byte[] body = new byte[size];
        byte[] head = ("inflow-rig seq=" + seq + " size=" + size + " ").getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(head, 0, body, 0, Math.min(head.length, size));
        long x = seq * 0x9E3779B97F4A7C15L + 1;
        for (int i = head.length; i < size; i++) {
            x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
            body[i] = (byte) ('a' + (int) ((x >>> 33) % 16));
        }
        return body;
    }

    static DefaultMQProducer startProducer(Opts o) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer(o.get("group", "rmqtool-producer"), rpcHook(o));
        producer.setNamesrvAddr(o.required("namesrv"));
        producer.setInstanceName(instanceName());
        producer.setSendMsgTimeout(10_000);
        producer.setRetryTimesWhenSendFailed(2);
        producer.start();
        return producer;
    }

    // ---- produce-bulk ----------------------------------------------------------------------

    interface Sends { void run(int thread) throws Exception; }

    /** Runs `sends` on `threads` threads at once and waits for all; returns the first failure. */
    static Throwable onThreads(int threads, Sends sends) throws InterruptedException {
        List<Throwable> errors = new ArrayList<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int thread = t;
            Thread w = new Thread(() -> {
                try {
                    sends.run(thread);
                } catch (Throwable e) {
                    synchronized (errors) { errors.add(e); }
                }
            });
            w.start();
            workers.add(w);
        }
        for (Thread w : workers) w.join();
        return errors.isEmpty() ? null : errors.get(0);
    }

    static int produceBulk(Opts o) throws Exception {
        String topic = o.required("topic");
        long count = o.longOpt("count", -1);
        if (count <= 0) throw new UsageError("--count N (N > 0) is required");
        int size = (int) o.longOpt("size", 256);
        int batch = (int) o.longOpt("batch", 128);
        int threads = (int) o.longOpt("threads", 2);
        String body = o.get("body");
        List<String[]> props = o.props();
        DefaultMQProducer producer = startProducer(o);
        AtomicLong next = new AtomicLong();
        long start = System.nanoTime();
        Throwable failed = onThreads(threads, t -> {
            while (true) {
                long first = next.getAndAdd(batch);
                if (first >= count) return;
                List<Message> msgs = new ArrayList<>(batch);
                for (long seq = first; seq < Math.min(first + batch, count); seq++) {
                    Message msg = new Message(topic, body != null ? body.getBytes(StandardCharsets.UTF_8) : generatedBody(seq, size));
                    for (String[] kv : props) msg.putUserProperty(kv[0], kv[1]);
                    msgs.add(msg);
                }
                producer.send(msgs);
            }
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        producer.shutdown();
        if (failed != null) throw new RuntimeException(describe(failed));
        System.out.println(new Json().num("messages", count).num("size", body != null ? body.getBytes(StandardCharsets.UTF_8).length : size)
            .dbl("seconds", seconds).dbl("msgPerSec", count / seconds).end());
        return 0;
    }

    // ---- produce-paced (latency) -----------------------------------------------------------

    static int producePaced(Opts o) throws Exception {
        String topic = o.required("topic");
        long count = o.longOpt("count", -1);
        long rate = o.longOpt("rate", -1);
        if (count <= 0 || rate <= 0) throw new UsageError("--count N and --rate R (both > 0) are required");
        int size = (int) o.longOpt("size", 256);
        int threads = (int) o.longOpt("threads", 4);
        String prime = o.get("prime");
        if (prime != null && !prime.equals("wait-stdin")) throw new UsageError("--prime takes wait-stdin, not '" + prime + "'");
        DefaultMQProducer producer = startProducer(o);
        if (prime != null) {
            // Also warms the producer up (route look-up, connection) before the clock starts.
            producer.send(new Message(topic, "prime".getBytes(StandardCharsets.US_ASCII)));
            System.err.println("rmqtool: prime sent");
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
        }
        // Synchronous sends, spread over a few threads to keep the pace: asynchronous ones queue
        // in the client (measured: 150-500 ms from born to stored at 2 000/s, against 1 ms).
        AtomicLong maxBehind = new AtomicLong();
        long start = System.nanoTime();
        Throwable failed = onThreads(threads, t -> {
            for (long seq = t; seq < count; seq += threads) {
                // Each message has its own due time, so a late one does not shift the rest.
                long due = start + seq * 1_000_000_000L / rate;
                long now = System.nanoTime();
                if (now < due) LockSupport.parkNanos(due - now); else maxBehind.accumulateAndGet(now - due, Math::max);
                Instant at = Instant.now();
                String head = "sent=" + (at.getEpochSecond() * 1_000_000 + at.getNano() / 1_000) + " seq=" + seq + " ";
                byte[] body = generatedBody(seq, Math.max(size, head.length()));
                System.arraycopy(head.getBytes(StandardCharsets.US_ASCII), 0, body, 0, head.length());
                producer.send(new Message(topic, body));
            }
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        producer.shutdown();
        if (failed != null) throw new RuntimeException(describe(failed));
        System.out.println(new Json().num("messages", count).num("size", size).dbl("seconds", seconds)
            .dbl("msgPerSec", count / seconds).dbl("maxBehindMillis", maxBehind.get() / 1e6).end());
        return 0;
    }

    // ---- consume ---------------------------------------------------------------------------

    static int consume(Opts o) throws Exception {
        long count = o.longOpt("count", -1);
        long timeout = o.longOpt("timeout", -1);
        String stayUntil = o.get("stay-until");
        if (stayUntil != null && !stayUntil.equals("stdin-closed")) {
            throw new UsageError("--stay-until takes stdin-closed, not '" + stayUntil + "'");
        }
        if ((stayUntil == null) == (count < 0 || timeout < 0)) {
            throw new UsageError("give either --count N --timeout S, or --stay-until stdin-closed");
        }
        CountDownLatch enough = new CountDownLatch(1);
        AtomicLong received = new AtomicLong();
        // Per queue, the offset after the last message handed to the listener.
        Map<MessageQueue, Long> consumedUpTo = new ConcurrentHashMap<>();
        DefaultMQPushConsumer consumer = newConsumer(o, o.get("from", "earliest"));
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                String line = messageJson(m);
                synchronized (System.out) { System.out.println(line); }
                consumedUpTo.merge(new MessageQueue(m.getTopic(), m.getBrokerName(), m.getQueueId()),
                    m.getQueueOffset() + 1, Math::max);
                if (received.incrementAndGet() == count) enough.countDown();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        // "Started" means joined with queues assigned (unless the group leaves it none). A queue
        // enters the table only after its start offset is computed, so whatever is produced
        // from here on lies at or after where this consumer starts.
        List<Integer> queues = awaitQueues(consumer, 30_000);
        System.err.println("rmqtool: consumer started, group " + consumer.getConsumerGroup()
            + ", instance " + consumer.getInstanceName() + ", queues " + queues);
        int code = 0;
        if (stayUntil != null) {
            // A fixed stay would race whatever the caller does meanwhile (another JVM starting
            // on a busy machine can outlast it); the caller closes stdin once it is done.
            while (System.in.read() >= 0) { }
        } else if (!enough.await(timeout, TimeUnit.SECONDS)) {
            System.err.println("rmqtool: consume timed out: " + received.get() + " of " + count
                + " messages within " + timeout + " s");
            code = 3;
        }
        System.err.println("rmqtool: queues at exit " + awaitQueues(consumer, 0));
        // The client records an offset just after the listener returns, so wait for that, then
        // commit synchronously: shutdown persists offsets with one-way requests, which the
        // closing connection can drop.
        awaitOffsetsRecorded(consumer, consumedUpTo, 5_000);
        commitOffsets(consumer, consumedUpTo);
        consumer.shutdown();
        return code;
    }

    // The ids of the (non-retry) queues the consumer holds, once it holds some and that set has
    // not changed for half a second (a re-balance adds queues one by one), or timeoutMs passed.
    static List<Integer> awaitQueues(DefaultMQPushConsumer consumer, long timeoutMs) throws InterruptedException {
        var table = consumer.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable();
        long deadline = System.currentTimeMillis() + timeoutMs;
        List<Integer> last = null;
        long stableSince = 0;
        while (true) {
            List<Integer> ids = new ArrayList<>();
            for (MessageQueue mq : table.keySet()) {
                if (!mq.getTopic().startsWith("%RETRY%")) ids.add(mq.getQueueId());
            }
            ids.sort(null);
            long now = System.currentTimeMillis();
            if (!ids.equals(last)) {
                last = ids;
                stableSince = now;
            }
            if ((!ids.isEmpty() && now - stableSince >= 500) || now >= deadline) return ids;
            Thread.sleep(50);
        }
    }

    static void awaitOffsetsRecorded(DefaultMQPushConsumer consumer, Map<MessageQueue, Long> upTo, long timeoutMs)
            throws InterruptedException {
        var store = consumer.getDefaultMQPushConsumerImpl().getOffsetStore();
        long deadline = System.currentTimeMillis() + timeoutMs;
        for (Map.Entry<MessageQueue, Long> e : upTo.entrySet()) {
            while (store.readOffset(e.getKey(), ReadOffsetType.READ_FROM_MEMORY) < e.getValue()
                    && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
        }
    }

    static void commitOffsets(DefaultMQPushConsumer consumer, Map<MessageQueue, Long> upTo) {
        var store = consumer.getDefaultMQPushConsumerImpl().getOffsetStore();
        for (MessageQueue mq : upTo.keySet()) {
            long offset = store.readOffset(mq, ReadOffsetType.READ_FROM_MEMORY);
            if (offset < 0) continue;
            try {
                store.updateConsumeOffsetToBroker(mq, offset, false);
            } catch (Exception e) {
                System.err.println("rmqtool: committing offset " + offset + " of " + mq + " failed: " + describe(e));
            }
        }
    }

    static DefaultMQPushConsumer newConsumer(Opts o, String from) throws UsageError {
        return newConsumer(o, from, 4);
    }

    // A clustering push consumer of the topics in --topic (comma-separated), with --threads
    // consume threads (default defaultThreads).
    static DefaultMQPushConsumer newConsumer(Opts o, String from, int defaultThreads) throws UsageError {
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(o.required("group"), rpcHook(o),
            new AllocateMessageQueueAveragely());
        consumer.setNamesrvAddr(o.required("namesrv"));
        consumer.setInstanceName(instanceName());
        // A re-balance tells the broker the subscription's new version with a heartbeat that is
        // skipped when another heartbeat holds the client's lock (a tryLock), e.g. the one sent at
        // start; the broker then answers every pull "subscription not latest" until the next
        // periodic heartbeat, 30 s by default. Once a second keeps that wait short.
        consumer.setHeartbeatBrokerInterval(1000);
        switch (from) {
            case "earliest": consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET); break;
            case "latest": consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET); break;
            default: throw new UsageError("--from must be earliest or latest, not '" + from + "'");
        }
        int threads = (int) o.longOpt("threads", defaultThreads);
        consumer.setConsumeThreadMin(threads);
        consumer.setConsumeThreadMax(threads);
        try {
            for (String topic : o.required("topic").split(",")) consumer.subscribe(topic, o.get("expr", "*"));
        } catch (Exception e) {
            throw new UsageError("bad subscription: " + describe(e));
        }
        return consumer;
    }

    static String messageJson(MessageExt m) {
        Json props = new Json();
        for (Map.Entry<String, String> e : new TreeMap<>(m.getProperties()).entrySet()) {
            props.str(e.getKey(), e.getValue());
        }
        byte[] body = m.getBody() == null ? new byte[0] : m.getBody();
        return new Json()
            .str("msgId", m.getMsgId())
            .str("offsetMsgId", m instanceof MessageClientExt ? ((MessageClientExt) m).getOffsetMsgId() : m.getMsgId())
            .str("topic", m.getTopic())
            .str("tags", m.getTags())
            .str("keys", m.getKeys())
            .num("queueId", m.getQueueId())
            .num("queueOffset", m.getQueueOffset())
            .str("brokerName", m.getBrokerName())
            .raw("properties", props.end())
            .str("body", Base64.getEncoder().encodeToString(body))
            .num("size", body.length)
            .str("sha256", sha256(body))
            .num("bornTimestamp", m.getBornTimestamp())
            .num("storeTimestamp", m.getStoreTimestamp())
            .str("bornHost", String.valueOf(m.getBornHost()))
            .str("storeHost", String.valueOf(m.getStoreHost()))
            .num("reconsumeTimes", m.getReconsumeTimes())
            .end();
    }

    // ---- drain (benchmark) -----------------------------------------------------------------

    static int drain(Opts o) throws Exception {
        long count = o.longOpt("count", -1);
        if (count <= 0) throw new UsageError("--count N (N > 0) is required");
        long timeout = o.longOpt("timeout", 600);
        CountDownLatch done = new CountDownLatch(1);
        AtomicLong received = new AtomicLong();
        AtomicLong bytes = new AtomicLong();
        AtomicLong firstAt = new AtomicLong();
        DefaultMQPushConsumer consumer = newConsumer(o, "earliest");
        consumer.setConsumeMessageBatchMaxSize((int) o.longOpt("batch", 1));
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            firstAt.compareAndSet(0, System.nanoTime());
            long size = 0;
            for (MessageExt m : msgs) size += m.getBody().length;
            bytes.addAndGet(size);
            if (received.addAndGet(msgs.size()) >= count) done.countDown();
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        consumer.start();
        boolean complete = done.await(timeout, TimeUnit.SECONDS);
        long t1 = System.nanoTime();
        long cpu1 = os.getProcessCpuTime();
        long n = received.get();
        consumer.shutdown();
        double seconds = (t1 - t0) / 1e9;
        System.out.println(new Json().num("messages", n).dbl("seconds", seconds)
            .dbl("secondsToFirst", firstAt.get() == 0 ? seconds : (firstAt.get() - t0) / 1e9)
            .dbl("msgPerSec", n / seconds).dbl("cpuMicrosPerMsg", (cpu1 - cpu0) / 1e3 / Math.max(n, 1))
            .num("bytes", bytes.get()).end());
        if (!complete) {
            System.err.println("rmqtool: drain timed out: " + n + " of " + count + " messages within " + timeout + " s");
            return 3;
        }
        return 0;
    }

    // ---- admin -----------------------------------------------------------------------------

    static DefaultMQAdminExt startAdmin(Opts o) throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt(rpcHook(o));
        admin.setNamesrvAddr(o.required("namesrv"));
        admin.setInstanceName(instanceName());
        admin.start();
        return admin;
    }

    static int createTopic(Opts o) throws Exception {
        String topic = o.required("topic");
        int queues = (int) o.longOpt("queues", 4);
        String clusterName = o.get("cluster");
        DefaultMQAdminExt admin = startAdmin(o);
        try {
            var info = admin.examineBrokerClusterInfo();
            List<String> brokers = new ArrayList<>();
            for (var cluster : info.getClusterAddrTable().entrySet()) {
                if (clusterName != null && !clusterName.equals(cluster.getKey())) continue;
                brokers.addAll(cluster.getValue());
            }
            if (brokers.isEmpty()) {
                throw new IllegalStateException("no broker in " + (clusterName == null ? "any cluster" : "cluster " + clusterName)
                    + " at name server " + o.required("namesrv"));
            }
            TopicConfig config = new TopicConfig(topic, queues, queues, 6 /* read | write */);
            for (String brokerName : brokers) {
                String master = info.getBrokerAddrTable().get(brokerName).getBrokerAddrs().get(0L);
                admin.createAndUpdateTopicConfig(master, config);
            }
            // The brokers register the new topic with the name server; wait until its route
            // shows every broker with the queues asked for.
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                int ready = 0;
                try {
                    for (var qd : admin.examineTopicRouteInfo(topic).getQueueDatas()) {
                        if (brokers.contains(qd.getBrokerName()) && qd.getWriteQueueNums() == queues) ready++;
                    }
                } catch (Exception routeNotYetThere) {
                    // keep waiting
                }
                if (ready == brokers.size()) break;
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("topic " + topic + " was created but its route did not appear within 30 s");
                }
                Thread.sleep(100);
            }
            System.out.println(new Json().str("topic", topic).num("queues", queues)
                .str("brokers", String.join(",", brokers)).end());
        } finally {
            admin.shutdown();
        }
        return 0;
    }

    static int offsets(Opts o) throws Exception {
        String group = o.required("group");
        DefaultMQAdminExt admin = startAdmin(o);
        try {
            var stats = admin.examineConsumeStats(group);
            for (var e : stats.getOffsetTable().entrySet()) {
                MessageQueue mq = e.getKey();
                System.out.println(new Json().str("topic", mq.getTopic()).str("brokerName", mq.getBrokerName())
                    .num("queueId", mq.getQueueId()).num("consumerOffset", e.getValue().getConsumerOffset())
                    .num("brokerOffset", e.getValue().getBrokerOffset()).end());
            }
        } finally {
            admin.shutdown();
        }
        return 0;
    }

    static int cluster(Opts o) throws Exception {
        DefaultMQAdminExt admin = startAdmin(o);
        try {
            var info = admin.examineBrokerClusterInfo();
            for (var cluster : info.getClusterAddrTable().entrySet()) {
                for (String brokerName : cluster.getValue()) {
                    Json addrs = new Json();
                    for (var a : info.getBrokerAddrTable().get(brokerName).getBrokerAddrs().entrySet()) {
                        addrs.str(String.valueOf(a.getKey()), a.getValue());
                    }
                    System.out.println(new Json().str("cluster", cluster.getKey()).str("brokerName", brokerName)
                        .raw("addrs", addrs.end()).end());
                }
            }
        } finally {
            admin.shutdown();
        }
        return 0;
    }

    // ---- plumbing --------------------------------------------------------------------------

    static RPCHook rpcHook(Opts o) throws UsageError {
        String ak = o.get("ak"), sk = o.get("sk");
        if (ak == null && sk == null) return null;
        if (ak == null || sk == null) throw new UsageError("--ak and --sk go together");
        return new AclClientRPCHook(new SessionCredentials(ak, sk));
    }

    // Unique per process, so this tool's clients never share a client id with anyone.
    static String instanceName() {
        return "rmqtool-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
    }

    static String sha256(byte[] data) {
        try {
            StringBuilder sb = new StringBuilder();
            for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) sb.append(String.format("%02x", b));
            return sb.toString();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static class UsageError extends Exception {
        UsageError(String message) { super(message); }
    }

    // --name value options; --prop may repeat.
    static class Opts {
        final Map<String, String> single = new HashMap<>();
        final List<String[]> props = new ArrayList<>();

        Opts(String[] argv) throws UsageError {
            for (int i = 1; i < argv.length; i += 2) {
                String name = argv[i];
                if (!name.startsWith("--") || i + 1 >= argv.length) {
                    throw new UsageError("expected --option value, got '" + name + "'" + (i + 1 >= argv.length ? " without a value" : ""));
                }
                String value = argv[i + 1];
                if (name.equals("--prop")) {
                    int eq = value.indexOf('=');
                    if (eq <= 0) throw new UsageError("--prop takes key=value, not '" + value + "'");
                    props.add(new String[] {value.substring(0, eq), value.substring(eq + 1)});
                } else {
                    single.put(name.substring(2), value);
                }
            }
        }

        String get(String name) { return single.get(name); }

        String get(String name, String dflt) { return single.getOrDefault(name, dflt); }

        String required(String name) throws UsageError {
            String v = single.get(name);
            if (v == null) throw new UsageError("--" + name + " is required");
            return v;
        }

        long longOpt(String name, long dflt) throws UsageError {
            String v = single.get(name);
            if (v == null) return dflt;
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new UsageError("--" + name + " takes a number, not '" + v + "'");
            }
        }

        List<String[]> props() { return props; }
    }

    // A JSON object written field by field.
    static class Json {
        final StringBuilder sb = new StringBuilder("{");

        Json key(String k) {
            if (sb.length() > 1) sb.append(',');
            quote(k);
            sb.append(':');
            return this;
        }

        Json str(String k, String v) {
            key(k);
            if (v == null) sb.append("null"); else quote(v);
            return this;
        }

        Json num(String k, long v) { key(k); sb.append(v); return this; }

        Json dbl(String k, double v) { key(k); sb.append(String.format(java.util.Locale.ROOT, "%.3f", v)); return this; }

        Json raw(String k, String json) { key(k); sb.append(json); return this; }

        String end() { return sb.append('}').toString(); }

        void quote(String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c)); else sb.append(c);
                }
            }
            sb.append('"');
        }
    }
}
