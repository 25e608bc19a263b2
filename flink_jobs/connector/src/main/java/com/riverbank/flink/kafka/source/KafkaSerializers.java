package com.riverbank.flink.kafka.source;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.kafka.common.TopicPartition;

/** Checkpoint formats of the source: splits and the enumerator's state (version 1 each). */
final class KafkaSerializers {
    private KafkaSerializers() {}

    static final class SplitSerializer implements SimpleVersionedSerializer<KafkaPartitionSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(KafkaPartitionSplit split) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                writeSplit(out, split);
            }
            return bytes.toByteArray();
        }

        @Override
        public KafkaPartitionSplit deserialize(int version, byte[] serialized) throws IOException {
            checkVersion(version);
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                return readSplit(in);
            }
        }
    }

    static final class EnumeratorStateSerializer implements SimpleVersionedSerializer<KafkaEnumeratorState> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(KafkaEnumeratorState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(state.knownPartitions().size());
                for (TopicPartition tp : state.knownPartitions()) {
                    out.writeUTF(tp.topic());
                    out.writeInt(tp.partition());
                }
                out.writeInt(state.unassignedSplits().size());
                for (KafkaPartitionSplit split : state.unassignedSplits()) {
                    writeSplit(out, split);
                }
            }
            return bytes.toByteArray();
        }

        @Override
        public KafkaEnumeratorState deserialize(int version, byte[] serialized) throws IOException {
            checkVersion(version);
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                int known = in.readInt();
                Set<TopicPartition> partitions = new HashSet<>();
                for (int i = 0; i < known; i++) {
                    partitions.add(new TopicPartition(in.readUTF(), in.readInt()));
                }
                int pending = in.readInt();
                List<KafkaPartitionSplit> splits = new ArrayList<>();
                for (int i = 0; i < pending; i++) {
                    splits.add(readSplit(in));
                }
                return new KafkaEnumeratorState(partitions, splits);
            }
        }
    }

    private static void writeSplit(DataOutputStream out, KafkaPartitionSplit split) throws IOException {
        out.writeUTF(split.topic());
        out.writeInt(split.partition());
        out.writeLong(split.offset());
    }

    private static KafkaPartitionSplit readSplit(DataInputStream in) throws IOException {
        return new KafkaPartitionSplit(in.readUTF(), in.readInt(), in.readLong());
    }

    private static void checkVersion(int version) throws IOException {
        if (version != 1) {
            throw new IOException("unknown Riverbank Kafka source state version " + version);
        }
    }
}
