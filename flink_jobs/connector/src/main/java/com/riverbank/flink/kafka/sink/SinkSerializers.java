package com.riverbank.flink.kafka.sink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

import org.apache.flink.core.io.SimpleVersionedSerializer;

/** Checkpoint formats of the sink (version 1 each). */
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

    static final class WriterStateSerializer implements SimpleVersionedSerializer<KafkaWriterState> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(KafkaWriterState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeUTF(state.transactionalIdPrefix());
                out.writeInt(state.subtask());
            }
            return bytes.toByteArray();
        }

        @Override
        public KafkaWriterState deserialize(int version, byte[] serialized) throws IOException {
            check(version);
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                return new KafkaWriterState(in.readUTF(), in.readInt());
            }
        }
    }

    private static void check(int version) throws IOException {
        if (version != 1) {
            throw new IOException("unknown Riverbank Kafka sink state version " + version);
        }
    }
}
