package com.riverbank.flink.kafka.sink;

import java.util.Collection;
import java.util.Collections;
import java.util.Locale;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.api.connector.sink2.CommitterInitContext;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.SupportsCommitter;
import org.apache.flink.api.connector.sink2.SupportsWriterState;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.types.Row;

import com.riverbank.flink.kafka.KafkaClientConfig;
import com.riverbank.flink.kafka.KafkaRows;

/**
 * Riverbank's Sink V2 for Kafka, taking {@link KafkaRows#SINK_TYPE} rows, at-least-once or
 * exactly-once (see {@link KafkaSinkWriter} and {@link KafkaCommitter}). Build with {@link #builder()}.
 */
public final class RiverbankKafkaSink
        implements Sink<Row>, SupportsWriterState<Row, KafkaWriterState>, SupportsCommitter<KafkaCommittable> {
    private static final long serialVersionUID = 1L;

    private final KafkaClientConfig clientConfig;
    private final String defaultTopic;
    private final DeliveryGuarantee deliveryGuarantee;
    private final String transactionalIdPrefix;
    private final boolean deferSends;
    private final int maxBufferedRecords;
    private final boolean flushOnCheckpoint;

    private RiverbankKafkaSink(Builder b) {
        this.flushOnCheckpoint = b.flushOnCheckpoint;
        this.deferSends = b.deferSends;
        this.maxBufferedRecords = b.maxBufferedRecords;
        this.clientConfig = b.clientConfig;
        this.defaultTopic = b.defaultTopic;
        this.deliveryGuarantee = b.deliveryGuarantee;
        this.transactionalIdPrefix = b.transactionalIdPrefix;
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public StatefulSinkWriter<Row, KafkaWriterState> createWriter(WriterInitContext context) {
        return new KafkaSinkWriter(this, context, Collections.emptyList());
    }

    @Override
    public StatefulSinkWriter<Row, KafkaWriterState> restoreWriter(
            WriterInitContext context, Collection<KafkaWriterState> recoveredState) {
        return new KafkaSinkWriter(this, context, recoveredState);
    }

    @Override
    public SimpleVersionedSerializer<KafkaWriterState> getWriterStateSerializer() {
        return new SinkSerializers.WriterStateSerializer();
    }

    @Override
    public Committer<KafkaCommittable> createCommitter(CommitterInitContext context) {
        return new KafkaCommitter(clientConfig);
    }

    @Override
    public SimpleVersionedSerializer<KafkaCommittable> getCommittableSerializer() {
        return new SinkSerializers.CommittableSerializer();
    }

    KafkaClientConfig clientConfig() {
        return clientConfig;
    }

    String defaultTopic() {
        return defaultTopic;
    }

    DeliveryGuarantee deliveryGuarantee() {
        return deliveryGuarantee;
    }

    String transactionalIdPrefix() {
        return transactionalIdPrefix;
    }

    boolean deferSends() {
        return deferSends;
    }

    int maxBufferedRecords() {
        return maxBufferedRecords;
    }

    boolean flushOnCheckpoint() {
        return flushOnCheckpoint;
    }

    String describe() {
        return "topic " + defaultTopic + " on " + clientConfig.bootstrapServers() + ", " + deliveryGuarantee;
    }

    /** Fluent builder; every setter takes plain strings so Py4J can call it. */
    public static final class Builder {
        private final KafkaClientConfig clientConfig = new KafkaClientConfig();
        private String defaultTopic;
        private DeliveryGuarantee deliveryGuarantee = DeliveryGuarantee.AT_LEAST_ONCE;
        private String transactionalIdPrefix;
        private boolean deferSends = true;
        private int maxBufferedRecords = 100_000;
        private boolean flushOnCheckpoint = true;

        /**
         * Exactly-once only: hold rows until the checkpoint barrier and send them into the
         * transaction then (see {@link KafkaSinkWriter}). Needed on Tansu; optional on Kafka.
         */
        public Builder setDeferSends(boolean defer) {
            deferSends = defer;
            return this;
        }

        /** With deferred sends, rows beyond this many per checkpoint interval are sent at once. */
        public Builder setMaxBufferedRecords(int max) {
            maxBufferedRecords = max;
            return this;
        }

        /**
         * At-least-once only. true (the default): wait at each checkpoint barrier until the broker
         * has acknowledged every record sent, the task processing nothing meanwhile. false: keep
         * the unacknowledged records in the checkpoint instead and send them again on restore
         * (see {@link KafkaSinkWriter}).
         */
        public Builder setFlushOnCheckpoint(boolean flush) {
            flushOnCheckpoint = flush;
            return this;
        }

        public Builder setProperty(String key, String value) {
            clientConfig.set(key, value);
            return this;
        }

        /** The topic for rows whose topic field is null. */
        public Builder setDefaultTopic(String topic) {
            defaultTopic = topic;
            return this;
        }

        /** exactly-once | at-least-once | none (also accepts the enum names). */
        public Builder setDeliveryGuarantee(String guarantee) {
            deliveryGuarantee = DeliveryGuarantee.valueOf(
                    guarantee.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
            return this;
        }

        /**
         * Prefix of the transactional ids; must be unique per job writing to the same cluster, and
         * stable across restarts of that job (restores abort lingering transactions by it).
         */
        public Builder setTransactionalIdPrefix(String prefix) {
            transactionalIdPrefix = prefix;
            return this;
        }

        public RiverbankKafkaSink build() {
            clientConfig.bootstrapServers();
            if (deliveryGuarantee == DeliveryGuarantee.EXACTLY_ONCE
                    && (transactionalIdPrefix == null || transactionalIdPrefix.isBlank())) {
                throw new IllegalArgumentException("exactly-once needs a transactional id prefix");
            }
            return new RiverbankKafkaSink(this);
        }
    }
}
