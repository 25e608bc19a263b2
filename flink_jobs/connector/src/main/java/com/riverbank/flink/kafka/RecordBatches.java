package com.riverbank.flink.kafka;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/**
 * Many Kafka records in one element, for Python operators (each element that crosses into Python
 * costs tens of microseconds, whatever its size). The byte layouts are mirrored by
 * {@code flink_jobs/batches.py}; all integers are big-endian, a length of -1 means null.
 *
 * <p>Source side, {@link #BATCH_TYPE}: {@code Row(topic STRING, partition INT, first_offset BIGINT,
 * count INT, max_timestamp BIGINT, records BYTES)}, where {@code records} holds, per record in
 * offset order: {@code offset i64, timestamp i64, key (i32 length + bytes), value (i32 length +
 * bytes), i32 header count, per header name (i32 length + UTF-8) and value (i32 length + bytes)}.
 *
 * <p>Sink side, {@link Unbatch}: a byte[] holding, per output record: {@code topic (i32 length +
 * UTF-8; null means the sink's default topic), key, value, headers as above, i32 partition (-1: the
 * partitioner's choice), i64 timestamp (-1: the element's timestamp)}.
 */
public final class RecordBatches {
    public static final String[] BATCH_FIELDS = {
        "topic", "partition", "first_offset", "count", "max_timestamp", "records"
    };
    public static final int MAX_TIMESTAMP = 4;

    private static final TypeInformation<byte[]> BYTES = PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO;

    public static final RowTypeInfo BATCH_TYPE =
            new RowTypeInfo(
                    new TypeInformation<?>[] {Types.STRING, Types.INT, Types.LONG, Types.INT, Types.LONG, BYTES},
                    BATCH_FIELDS);

    private RecordBatches() {}

    /** The batch row of consecutive records of one partition (not empty). */
    public static Row fromRecords(List<ConsumerRecord<byte[], byte[]>> records) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(estimate(records));
        long maxTimestamp = Long.MIN_VALUE;
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            for (ConsumerRecord<byte[], byte[]> record : records) {
                out.writeLong(record.offset());
                out.writeLong(record.timestamp());
                writeBytes(out, record.key());
                writeBytes(out, record.value());
                Header[] headers = record.headers().toArray();
                out.writeInt(headers.length);
                for (Header header : headers) {
                    writeBytes(out, header.key().getBytes(StandardCharsets.UTF_8));
                    writeBytes(out, header.value());
                }
                maxTimestamp = Math.max(maxTimestamp, record.timestamp());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        ConsumerRecord<byte[], byte[]> first = records.get(0);
        return Row.of(first.topic(), first.partition(), first.offset(), records.size(), maxTimestamp, bytes.toByteArray());
    }

    /** The sink rows packed in {@code packed} (see the class comment). */
    public static List<Row> toSinkRows(byte[] packed) {
        ByteBuffer in = ByteBuffer.wrap(packed);
        List<Row> rows = new ArrayList<>();
        while (in.hasRemaining()) {
            byte[] topic = readBytes(in);
            byte[] key = readBytes(in);
            byte[] value = readBytes(in);
            int headerCount = in.getInt();
            Map<String, byte[]> headers = null;
            if (headerCount > 0) {
                headers = new HashMap<>();
                for (int i = 0; i < headerCount; i++) {
                    headers.put(new String(readBytes(in), StandardCharsets.UTF_8), readBytes(in));
                }
            }
            int partition = in.getInt();
            long timestamp = in.getLong();
            rows.add(Row.of(
                    topic == null ? null : new String(topic, StandardCharsets.UTF_8),
                    key,
                    value,
                    headers,
                    partition < 0 ? null : partition,
                    timestamp < 0 ? null : timestamp));
        }
        return rows;
    }

    private static int estimate(List<ConsumerRecord<byte[], byte[]>> records) {
        int size = 0;
        for (ConsumerRecord<byte[], byte[]> record : records) {
            size += 28 + Math.max(record.serializedKeySize(), 0) + Math.max(record.serializedValueSize(), 0);
        }
        return size;
    }

    /** Length-prefixed bytes, -1 for null: also the layout of the sink's checkpointed records. */
    public static void writeBytes(DataOutputStream out, byte[] bytes) throws IOException {
        if (bytes == null) {
            out.writeInt(-1);
        } else {
            out.writeInt(bytes.length);
            out.write(bytes);
        }
    }

    private static byte[] readBytes(ByteBuffer in) {
        int length = in.getInt();
        if (length < 0) {
            return null;
        }
        byte[] bytes = new byte[length];
        in.get(bytes);
        return bytes;
    }
}
