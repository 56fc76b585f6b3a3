// A hand-written RocketMQ -> MQTT bridge: the comparison a user would make for inflow, and the one
// the end-to-end benchmark (host/inflow/examples/bench.rs) runs beside it. The official push
// consumer hands batches to a concurrent listener; Eclipse Paho publishes each message at QoS 1,
// and the batch is acknowledged to RocketMQ (CONSUME_SUCCESS) only once every publish of it is
// acknowledged by the MQTT broker: at-least-once, as inflow is.
//
//   java.sh <version> bridge --namesrv HOST:PORT --group G --topic T[,T2...] --mqtt HOST:PORT
//       --parent P [--batch 32] [--threads 20] [--inflight 1024]
//
// Each message goes to the MQTT topic P/<its RocketMQ topic> with its body unchanged. Consumes
// from the earliest offset (a new group), prints "rmqtool: bridge started" to stderr, and runs
// until killed. Compiled together with RmqTool.java, whose option parsing and consumer it reuses.

import java.util.ArrayList;
import java.util.List;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.message.MessageExt;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;

public class Bridge {
    static final long PUBLISH_TIMEOUT_MS = 30_000;

    public static void main(String[] argv) {
        try {
            run(new RmqTool.Opts(argv));
        } catch (RmqTool.UsageError e) {
            System.err.println("rmqtool: bridge: " + e.getMessage());
            Runtime.getRuntime().halt(2);
        } catch (Throwable e) {
            System.err.println("rmqtool: bridge failed: " + RmqTool.describe(e));
            Runtime.getRuntime().halt(1);
        }
    }

    static void run(RmqTool.Opts o) throws Exception {
        String parent = o.required("parent");
        int inflight = (int) o.longOpt("inflight", 1024);
        int batch = (int) o.longOpt("batch", 32);
        // Nothing is kept across restarts (inflow keeps nothing either): memory persistence.
        MqttAsyncClient mqtt = new MqttAsyncClient("tcp://" + o.required("mqtt"), RmqTool.instanceName(), new MemoryPersistence());
        MqttConnectOptions options = new MqttConnectOptions();
        options.setCleanSession(true);
        options.setMaxInflight(inflight);
        mqtt.connect(options).waitForCompletion(PUBLISH_TIMEOUT_MS);

        // The client's default of 20 consume threads, each holding up to one batch in flight.
        DefaultMQPushConsumer consumer = RmqTool.newConsumer(o, "earliest", 20);
        if ((long) consumer.getConsumeThreadMax() * batch > inflight) {
            throw new RmqTool.UsageError("--threads x --batch exceeds --inflight: Paho refuses publishes beyond it");
        }
        consumer.setConsumeMessageBatchMaxSize(batch);
        // The client buffers up to 100 MiB per queue by default: with 64 KiB bodies and 8 queues
        // that outgrows java.sh's heap. Bound the topic's buffer instead (spread over its queues).
        consumer.setPullThresholdSizeForTopic(128);
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            List<IMqttDeliveryToken> tokens = new ArrayList<>(msgs.size());
            try {
                for (MessageExt m : msgs) tokens.add(mqtt.publish(parent + "/" + m.getTopic(), m.getBody(), 1, false));
                for (IMqttDeliveryToken t : tokens) t.waitForCompletion(PUBLISH_TIMEOUT_MS);
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            } catch (Exception e) {
                System.err.println("rmqtool: bridge: publish failed, the batch is consumed again later: " + RmqTool.describe(e));
                return ConsumeConcurrentlyStatus.RECONSUME_LATER;
            }
        });
        consumer.start();
        System.err.println("rmqtool: bridge started, group " + consumer.getConsumerGroup());
        Thread.currentThread().join();
    }
}
