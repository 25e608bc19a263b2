import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a topic from the beginning with Java kafka-clients until it has seen the expected number
 * of records (or the deadline passes), then prints the count. Run as a single source file:
 * java -cp kafka-clients.jar:slf4j-api.jar CountRecords.java BOOTSTRAP TOPIC EXPECTED TIMEOUT_S [ISOLATION]
 * With an isolation level (read_committed, read_uncommitted) it also prints each record's value, a
 * line each, in the order read.
 */
public class CountRecords {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        props.put("enable.auto.commit", "false");
        props.put("fetch.max.wait.ms", "500");
        boolean print = args.length > 4;
        if (print) {
            props.put("isolation.level", args[4]);
        }
        long expected = Long.parseLong(args[2]);
        long deadline = System.nanoTime() + Duration.ofSeconds(Long.parseLong(args[3])).toNanos();
        long seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(args[1], Duration.ofSeconds(30))) {
                partitions.add(new TopicPartition(info.topic(), info.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            while (seen < expected && System.nanoTime() < deadline) {
                seen += show(consumer.poll(Duration.ofMillis(200)), print);
            }
            // A few more polls with nothing left: empty Fetch responses and held Fetches.
            for (int i = 0; i < 5; i++) {
                seen += show(consumer.poll(Duration.ofMillis(200)), print);
            }
        }
        System.out.println(seen);
    }

    private static int show(ConsumerRecords<byte[], byte[]> records, boolean print) {
        if (print) {
            records.forEach(r -> System.out.println(new String(r.value(), StandardCharsets.UTF_8)));
        }
        return records.count();
    }
}
