package com.riverbank.flink.kafka;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

/**
 * The row layouts the connector reads and writes.
 *
 * <p>The source emits {@link #SOURCE_TYPE}: {@code Row(topic STRING, partition INT, offset BIGINT,
 * timestamp BIGINT, key BYTES, value BYTES, headers MAP<STRING, BYTES>)}. The sink takes
 * {@link #SINK_TYPE}: {@code Row(topic STRING, key BYTES, value BYTES, headers MAP<STRING, BYTES>,
 * partition INT, timestamp BIGINT)}; only the value is required, the rest may be null (a null topic
 * means the sink's default topic). Both are positional, so PyFlink rows map onto them directly.
 */
public final class KafkaRows {

    public static final String[] SOURCE_FIELDS = {
        "topic", "partition", "offset", "timestamp", "key", "value", "headers"
    };
    public static final String[] SINK_FIELDS = {
        "topic", "key", "value", "headers", "partition", "timestamp"
    };

    private static final TypeInformation<byte[]> BYTES = PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO;
    private static final TypeInformation<Map<String, byte[]>> HEADERS = Types.MAP(Types.STRING, BYTES);

    public static final RowTypeInfo SOURCE_TYPE =
            new RowTypeInfo(
                    new TypeInformation<?>[] {
                        Types.STRING, Types.INT, Types.LONG, Types.LONG, BYTES, BYTES, HEADERS
                    },
                    SOURCE_FIELDS);

    public static final RowTypeInfo SINK_TYPE =
            new RowTypeInfo(
                    new TypeInformation<?>[] {Types.STRING, BYTES, BYTES, HEADERS, Types.INT, Types.LONG},
                    SINK_FIELDS);

    private KafkaRows() {}

    /** The source row for one consumed record. Duplicate header keys keep the last value. */
    public static Row fromRecord(ConsumerRecord<byte[], byte[]> record) {
        Map<String, byte[]> headers = new HashMap<>();
        for (Header header : record.headers()) {
            headers.put(header.key(), header.value());
        }
        return Row.of(
                record.topic(),
                record.partition(),
                record.offset(),
                record.timestamp(),
                record.key(),
                record.value(),
                headers);
    }

    /**
     * The producer record for one sink row. {@code fallbackTimestamp} (the element's timestamp in
     * the stream, may be null) is used when the row carries none.
     */
    @SuppressWarnings("unchecked")
    public static ProducerRecord<byte[], byte[]> toRecord(Row row, String defaultTopic, Long fallbackTimestamp) {
        int arity = row.getArity();
        if (arity < 3) {
            throw new IllegalArgumentException(
                    "Kafka sink rows need at least (topic, key, value), got arity " + arity + ": " + row);
        }
        String topic = (String) row.getField(0);
        if (topic == null) {
            topic = defaultTopic;
        }
        if (topic == null) {
            throw new IllegalArgumentException(
                    "Kafka sink row has no topic and the sink has no default topic: " + row);
        }
        byte[] key = asBytes(row.getField(1));
        byte[] value = asBytes(row.getField(2));
        Map<String, byte[]> headers = arity > 3 ? (Map<String, byte[]>) row.getField(3) : null;
        Integer partition = arity > 4 ? (Integer) row.getField(4) : null;
        Long timestamp = arity > 5 ? (Long) row.getField(5) : null;
        if (timestamp == null) {
            timestamp = fallbackTimestamp;
        }
        ProducerRecord<byte[], byte[]> record =
                new ProducerRecord<>(topic, partition, timestamp, key, value);
        if (headers != null) {
            for (Map.Entry<String, byte[]> header : headers.entrySet()) {
                record.headers().add(new RecordHeader(header.getKey(), header.getValue()));
            }
        }
        return record;
    }

    private static byte[] asBytes(Object field) {
        if (field == null || field instanceof byte[]) {
            return (byte[]) field;
        }
        if (field instanceof String) {
            return ((String) field).getBytes(StandardCharsets.UTF_8);
        }
        throw new IllegalArgumentException(
                "Kafka sink key/value must be bytes or a string, got " + field.getClass().getName());
    }
}
