package com.riverbank.flink.kafka.source;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Pattern;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.types.Row;
import org.apache.kafka.common.TopicPartition;

import com.riverbank.flink.kafka.KafkaClientConfig;
import com.riverbank.flink.kafka.KafkaRows;
import com.riverbank.flink.kafka.RecordBatches;

/**
 * Riverbank's FLIP-27 Kafka source: unbounded, one split per partition, emitting
 * {@link KafkaRows#SOURCE_TYPE} rows, or {@link RecordBatches#BATCH_TYPE} rows (one per partition
 * and poll) when built with {@code setEmitBatches(true)}. Build it with {@link #builder()}.
 */
public final class RiverbankKafkaSource
        implements Source<Row, KafkaPartitionSplit, KafkaEnumeratorState>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;

    private final KafkaClientConfig clientConfig;
    private final ArrayList<String> topics;
    private final String topicPattern;
    private final StartingOffsets startingOffsets;
    private final String groupId;
    private final long discoveryIntervalMs;
    private final boolean commitOffsetsOnCheckpoint;
    private final long commitOffsetsIntervalMs;
    private final long pollTimeoutMs;
    private final boolean emitBatches;

    private RiverbankKafkaSource(Builder b) {
        this.clientConfig = b.clientConfig;
        this.topics = new ArrayList<>(b.topics);
        this.topicPattern = b.topicPattern;
        this.startingOffsets = b.startingOffsets;
        this.groupId = b.groupId;
        this.discoveryIntervalMs = b.discoveryIntervalMs;
        this.commitOffsetsOnCheckpoint = b.commitOffsetsOnCheckpoint;
        this.commitOffsetsIntervalMs = b.commitOffsetsIntervalMs;
        this.pollTimeoutMs = b.pollTimeoutMs;
        this.emitBatches = b.emitBatches;
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<Row, KafkaPartitionSplit> createReader(SourceReaderContext context) {
        return new KafkaSourceReader(this, context, new ConcurrentLinkedQueue<Map<TopicPartition, Long>>());
    }

    @Override
    public SplitEnumerator<KafkaPartitionSplit, KafkaEnumeratorState> createEnumerator(
            SplitEnumeratorContext<KafkaPartitionSplit> context) {
        return new KafkaSourceEnumerator(context, this, null);
    }

    @Override
    public SplitEnumerator<KafkaPartitionSplit, KafkaEnumeratorState> restoreEnumerator(
            SplitEnumeratorContext<KafkaPartitionSplit> context, KafkaEnumeratorState state) {
        return new KafkaSourceEnumerator(context, this, state);
    }

    @Override
    public SimpleVersionedSerializer<KafkaPartitionSplit> getSplitSerializer() {
        return new KafkaSerializers.SplitSerializer();
    }

    @Override
    public SimpleVersionedSerializer<KafkaEnumeratorState> getEnumeratorCheckpointSerializer() {
        return new KafkaSerializers.EnumeratorStateSerializer();
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return emitBatches ? RecordBatches.BATCH_TYPE : KafkaRows.SOURCE_TYPE;
    }

    boolean emitsBatches() {
        return emitBatches;
    }

    KafkaClientConfig clientConfig() {
        return clientConfig;
    }

    List<String> topics() {
        return topics;
    }

    Pattern topicPattern() {
        return topicPattern == null ? null : Pattern.compile(topicPattern);
    }

    String describeTopics() {
        return topicPattern != null ? "topics matching /" + topicPattern + "/" : "topics " + topics;
    }

    StartingOffsets startingOffsets() {
        return startingOffsets;
    }

    String groupId() {
        return groupId;
    }

    long discoveryIntervalMs() {
        return discoveryIntervalMs;
    }

    boolean commitOffsetsOnCheckpoint() {
        return commitOffsetsOnCheckpoint;
    }

    long commitOffsetsIntervalMs() {
        return commitOffsetsIntervalMs;
    }

    long pollTimeoutMs() {
        return pollTimeoutMs;
    }

    /** Fluent builder; every setter takes plain strings and numbers so Py4J can call it. */
    public static final class Builder {
        private final KafkaClientConfig clientConfig = new KafkaClientConfig();
        private final List<String> topics = new ArrayList<>();
        private String topicPattern;
        private StartingOffsets startingOffsets = StartingOffsets.earliest();
        private String groupId;
        private long discoveryIntervalMs = 30_000;
        private boolean commitOffsetsOnCheckpoint = true;
        private long commitOffsetsIntervalMs;
        private long pollTimeoutMs = 100;
        private boolean emitBatches;

        /** A Java Kafka client setting (bootstrap.servers, security.protocol, isolation.level...). */
        public Builder setProperty(String key, String value) {
            clientConfig.set(key, value);
            return this;
        }

        public Builder addTopic(String topic) {
            topics.add(topic);
            return this;
        }

        /** Subscribe to every topic whose whole name matches this regular expression instead. */
        public Builder setTopicPattern(String regex) {
            Pattern.compile(regex);
            topicPattern = regex;
            return this;
        }

        /** earliest | latest | committed[:earliest|latest] | timestamp:&lt;epoch millis&gt; */
        public Builder setStartingOffsets(String spec) {
            startingOffsets = StartingOffsets.parse(spec);
            return this;
        }

        public Builder setGroupId(String group) {
            groupId = group;
            return this;
        }

        /** How often to look for new partitions and topics; 0 or less turns discovery off. */
        public Builder setPartitionDiscoveryIntervalMs(long intervalMs) {
            discoveryIntervalMs = intervalMs;
            return this;
        }

        public Builder setCommitOffsetsOnCheckpoint(boolean commit) {
            commitOffsetsOnCheckpoint = commit;
            return this;
        }

        /**
         * The least time between two commits to the group: a checkpoint that completes sooner
         * after the last commit commits nothing, and a later one commits its newer offsets. 0 (the
         * default) commits on every completed checkpoint, as Flink's Kafka source does.
         */
        public Builder setCommitOffsetsIntervalMs(long intervalMs) {
            if (intervalMs < 0) {
                throw new IllegalArgumentException("commit offsets interval must be >= 0 ms, got " + intervalMs);
            }
            commitOffsetsIntervalMs = intervalMs;
            return this;
        }

        public Builder setPollTimeoutMs(long timeoutMs) {
            pollTimeoutMs = timeoutMs;
            return this;
        }

        /**
         * Emit one {@link RecordBatches#BATCH_TYPE} row per partition and poll instead of one row
         * per record: for Python consumers, whose cost is per element crossing into Python.
         */
        public Builder setEmitBatches(boolean batches) {
            emitBatches = batches;
            return this;
        }

        public RiverbankKafkaSource build() {
            clientConfig.bootstrapServers();
            if (topics.isEmpty() == (topicPattern == null)) {
                throw new IllegalArgumentException("set either topics or a topic pattern (exactly one)");
            }
            if (startingOffsets.kind() == StartingOffsets.Kind.COMMITTED && groupId == null) {
                throw new IllegalArgumentException("starting offsets 'committed' need a group id");
            }
            return new RiverbankKafkaSource(this);
        }
    }
}
