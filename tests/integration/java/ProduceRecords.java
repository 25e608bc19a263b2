import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Writes COUNT records "PREFIX-i" (key the same) with Java kafka-clients, idempotent and acks=all as
 * the Flink connector's sink, then prints how many were acknowledged. Run as a single source file:
 * java -cp kafka-clients.jar:slf4j-api.jar ProduceRecords.java BOOTSTRAP TOPIC COUNT PREFIX
 */
public class ProduceRecords {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        props.put("acks", "all");
        props.put("linger.ms", "5");
        int count = Integer.parseInt(args[2]);
        long acknowledged = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            java.util.List<java.util.concurrent.Future<?>> sent = new java.util.ArrayList<>();
            for (int i = 0; i < count; i++) {
                byte[] value = (args[3] + "-" + i).getBytes(StandardCharsets.UTF_8);
                sent.add(producer.send(new ProducerRecord<>(args[1], value, value)));
            }
            producer.flush();
            for (java.util.concurrent.Future<?> future : sent) {
                future.get();
                acknowledged++;
            }
        }
        System.out.println(acknowledged);
    }
}
