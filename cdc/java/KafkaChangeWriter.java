package riverbank.cdc;

import io.confluent.connect.avro.AvroConverter;
import io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

/**
 * The embedded engine's change consumer: what a Kafka Connect worker does with a source task's
 * records. Each record is converted by Confluent's AvroConverter and sent with the Java producer
 * (default partitioner: murmur2 of the key bytes, or the record's own partition), to the record's
 * topic. A record's offset is released to the engine once it and every record before it are
 * acknowledged; batches do not wait for their acknowledgements (see handleBatch).
 * A record whose schema the registry refuses (409/422) goes to the dead-letter topic with the
 * reason in headers; any other failure stops the engine without releasing that record's offset.
 *
 * Written in Java so that no per-record call crosses into Python: the counters are read from
 * Python a few times a second for the status file.
 */
public final class KafkaChangeWriter implements DebeziumEngine.ChangeConsumer<RecordChangeEvent<SourceRecord>> {
    /** Records sent but not acknowledged beyond which a batch waits (memory, and redelivery after a crash). */
    private static final int MAX_IN_FLIGHT = 20_000;

    private record InFlight(RecordChangeEvent<SourceRecord> event, Future<RecordMetadata> ack) {}

    private static final Set<String> SNAPSHOT_MARKERS =
            Set.of("true", "first", "first_in_data_collection", "last_in_data_collection");

    private final AvroConverter keyConverter = new AvroConverter();
    private final AvroConverter valueConverter = new AvroConverter();
    private final JsonConverter jsonConverter = new JsonConverter();
    private final KafkaProducer<byte[], byte[]> producer;
    private final Set<String> housekeeping;
    private final String dlqTopic;

    public final AtomicLong events = new AtomicLong();
    public final AtomicLong tombstones = new AtomicLong();
    public final AtomicLong heartbeats = new AtomicLong();
    public final AtomicLong deadLetters = new AtomicLong();
    public final AtomicLong batches = new AtomicLong();
    public final AtomicLong convertNanos = new AtomicLong();
    public final AtomicLong ackNanos = new AtomicLong();
    public volatile long lastEventMs = -1;
    public volatile long lastSourceMs = -1;
    /** starting, snapshot or streaming, from the records seen. */
    public volatile String phase = "starting";

    /** Sent, not yet released to the engine, in the order the engine handed them over. */
    private final ArrayDeque<InFlight> inFlight = new ArrayDeque<>();
    private DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer;
    private volatile boolean stopping;

    public KafkaChangeWriter(
            Map<String, Object> producerConfig,
            Map<String, Object> keyConfig,
            Map<String, Object> valueConfig,
            Collection<String> housekeepingTopics,
            String dlqTopic) {
        keyConverter.configure(keyConfig, true);
        valueConverter.configure(valueConfig, false);
        jsonConverter.configure(Map.of("schemas.enable", "false", "converter.type", "value"), false);
        producer = new KafkaProducer<>(producerConfig, new ByteArraySerializer(), new ByteArraySerializer());
        housekeeping = new HashSet<>(housekeepingTopics);
        this.dlqTopic = dlqTopic;
    }

    @Override
    public synchronized void handleBatch(
            List<RecordChangeEvent<SourceRecord>> batch,
            DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer)
            throws InterruptedException {
        long started = System.nanoTime();
        for (RecordChangeEvent<SourceRecord> event : batch) {
            SourceRecord record = event.record();
            ProducerRecord<byte[], byte[]> out;
            try {
                out = convert(record);
            } catch (RuntimeException e) {
                String reason = refusal(e);
                if (reason == null) {
                    throw e;
                }
                out = deadLetter(record, reason, e);
                deadLetters.incrementAndGet();
            }
            inFlight.add(new InFlight(event, producer.send(out)));
            if (!out.topic().equals(dlqTopic)) {
                count(record, out);
            }
        }
        long converted = System.nanoTime();
        // As a Connect worker does, the next poll does not wait for this batch's acknowledgements
        // (on an S3-backed broker that wait was most of the commit-to-Kafka latency); offsets are
        // released in order, only up to the first record not yet acknowledged.
        int backlog = inFlight.size() - MAX_IN_FLIGHT;
        release(committer, stopping ? inFlight.size() : Math.max(0, backlog));
        committer.markBatchFinished();
        this.committer = committer;
        batches.incrementAndGet();
        convertNanos.addAndGet(converted - started);
        ackNanos.addAndGet(System.nanoTime() - converted);
    }

    /**
     * Before the engine stops: from now on every batch waits for its acknowledgements, and the
     * records in flight are acknowledged and released now, so the engine's last offset commit
     * covers everything sent (a clean stop repeats nothing on restart).
     */
    public synchronized void drain() throws InterruptedException {
        stopping = true;
        if (committer != null) {
            release(committer, inFlight.size());
            committer.markBatchFinished();
        }
    }

    /** Release acknowledged records from the head, waiting for at least the first {@code wait}. */
    private void release(DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer, int wait)
            throws InterruptedException {
        while (!inFlight.isEmpty() && (wait > 0 || inFlight.peek().ack().isDone())) {
            InFlight head = inFlight.poll();
            try {
                head.ack().get();
            } catch (ExecutionException e) {
                throw new ConnectException("Kafka did not acknowledge a change record: " + e.getCause(), e.getCause());
            }
            committer.markProcessed(head.event());
            wait--;
        }
    }

    private ProducerRecord<byte[], byte[]> convert(SourceRecord record) {
        String topic = record.topic();
        byte[] key = keyConverter.fromConnectData(topic, record.keySchema(), record.key());
        byte[] value = record.value() == null
                ? null
                : valueConverter.fromConnectData(topic, record.valueSchema(), record.value());
        RecordHeaders headers = new RecordHeaders();
        for (org.apache.kafka.connect.header.Header h : record.headers()) {
            headers.add(h.key(), h.value() == null ? null : h.value().toString().getBytes(StandardCharsets.UTF_8));
        }
        return new ProducerRecord<>(topic, record.kafkaPartition(), key, value, headers);
    }

    private void count(SourceRecord record, ProducerRecord<byte[], byte[]> out) {
        if (out.topic().startsWith("__debezium-heartbeat") || housekeeping.contains(out.topic())) {
            heartbeats.incrementAndGet();
            if (phase.equals("starting")) {
                phase = "streaming";
            }
            return;
        }
        if (out.value() == null) {
            tombstones.incrementAndGet();
            return;
        }
        events.incrementAndGet();
        lastEventMs = System.currentTimeMillis();
        Object source = field(record.value(), "source");
        if (source instanceof Struct) {
            Object ts = field(source, "ts_ms");
            if (ts instanceof Number) {
                lastSourceMs = ((Number) ts).longValue();
            }
            Object marker = field(source, "snapshot");
            phase = marker != null && SNAPSHOT_MARKERS.contains(marker.toString()) ? "snapshot" : "streaming";
        }
    }

    private static Object field(Object struct, String name) {
        if (!(struct instanceof Struct)) {
            return null;
        }
        Struct s = (Struct) struct;
        Field f = s.schema().field(name);
        return f == null ? null : s.get(f);
    }

    /** The registry's refusal behind a conversion error, or null when that is not the cause. */
    static String refusal(Throwable error) {
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            if (cause instanceof RestClientException) {
                int status = ((RestClientException) cause).getStatus();
                if (status == 409 || status == 422) {
                    return "schema registry refused the schema (HTTP " + status + "): " + cause.getMessage();
                }
            }
        }
        return null;
    }

    private ProducerRecord<byte[], byte[]> deadLetter(SourceRecord record, String reason, Throwable error) {
        byte[] payload;
        try {
            payload = jsonConverter.fromConnectData(record.topic(), record.valueSchema(), record.value());
        } catch (RuntimeException e) {
            payload = String.valueOf(record.value()).getBytes(StandardCharsets.UTF_8);
        }
        RecordHeaders headers = new RecordHeaders();
        headers.add("dlq.reason", utf8(reason.length() > 2000 ? reason.substring(0, 2000) : reason));
        headers.add("dlq.error.class", utf8(error.getClass().getName()));
        headers.add("dlq.source.topic", utf8(record.topic()));
        headers.add("dlq.stage", utf8("convert"));
        headers.add("dlq.event.id", utf8(String.valueOf(record.sourceOffset())));
        headers.add("dlq.payload.format", utf8("json"));
        headers.add("dlq.time", utf8(Long.toString(System.currentTimeMillis())));
        byte[] key = record.key() == null ? null : utf8(record.key().toString());
        return new ProducerRecord<>(dlqTopic, null, key, payload, headers);
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    public void close() {
        producer.close();
    }
}
