package com.riverbank.flink.kafka.sink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

import com.riverbank.flink.kafka.RecordBatches;

/** Checkpoint formats of the sink: committables version 1, writer states version 2. */
final class SinkSerializers {
    private SinkSerializers() {}

    static final class CommittableSerializer implements SimpleVersionedSerializer<KafkaCommittable> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(KafkaCommittable c) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeUTF(c.transactionalId());
                out.writeLong(c.producerId());
                out.writeShort(c.epoch());
            }
            return bytes.toByteArray();
        }

        @Override
        public KafkaCommittable deserialize(int version, byte[] serialized) throws IOException {
            check(version);
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                return new KafkaCommittable(in.readUTF(), in.readLong(), in.readShort());
            }
        }
    }

    /**
     * Version 2 adds the unacknowledged records of an at-least-once writer; version 1 states (written
     * before it) restore with none.
     */
    static final class WriterStateSerializer implements SimpleVersionedSerializer<KafkaWriterState> {
        private static final int NONE = -1;

        @Override
        public int getVersion() {
            return 2;
        }

        @Override
        public byte[] serialize(KafkaWriterState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeUTF(state.transactionalIdPrefix());
                out.writeInt(state.subtask());
                out.writeInt(state.unacknowledged().size());
                for (ProducerRecord<byte[], byte[]> record : state.unacknowledged()) {
                    writeRecord(out, record);
                }
            }
            return bytes.toByteArray();
        }

        @Override
        public KafkaWriterState deserialize(int version, byte[] serialized) throws IOException {
            if (version != 1 && version != 2) {
                throw new IOException("unknown Riverbank Kafka sink writer state version " + version);
            }
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                String prefix = in.readUTF();
                int subtask = in.readInt();
                if (version == 1) {
                    return new KafkaWriterState(prefix, subtask);
                }
                int count = in.readInt();
                List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    records.add(readRecord(in));
                }
                return new KafkaWriterState(prefix, subtask, records);
            }
        }

        private static void writeRecord(DataOutputStream out, ProducerRecord<byte[], byte[]> record)
                throws IOException {
            out.writeUTF(record.topic());
            out.writeInt(record.partition() == null ? NONE : record.partition());
            out.writeBoolean(record.timestamp() != null);
            if (record.timestamp() != null) {
                out.writeLong(record.timestamp());
            }
            RecordBatches.writeBytes(out, record.key());
            RecordBatches.writeBytes(out, record.value());
            Header[] headers = record.headers().toArray();
            out.writeInt(headers.length);
            for (Header header : headers) {
                out.writeUTF(header.key());
                RecordBatches.writeBytes(out, header.value());
            }
        }

        private static ProducerRecord<byte[], byte[]> readRecord(DataInputStream in) throws IOException {
            String topic = in.readUTF();
            int partition = in.readInt();
            Long timestamp = in.readBoolean() ? in.readLong() : null;
            byte[] key = readBytes(in);
            byte[] value = readBytes(in);
            int headerCount = in.readInt();
            List<Header> headers = new ArrayList<>(headerCount);
            for (int i = 0; i < headerCount; i++) {
                headers.add(new RecordHeader(in.readUTF(), readBytes(in)));
            }
            return new ProducerRecord<>(
                    topic, partition == NONE ? null : partition, timestamp, key, value, headers);
        }

        private static byte[] readBytes(DataInputStream in) throws IOException {
            int length = in.readInt();
            if (length == NONE) {
                return null;
            }
            byte[] bytes = new byte[length];
            in.readFully(bytes);
            return bytes;
        }
    }

    private static void check(int version) throws IOException {
        if (version != 1) {
            throw new IOException("unknown Riverbank Kafka sink state version " + version);
        }
    }
}
