package com.riverbank.flink.kafka.source;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;

import org.apache.flink.connector.base.source.reader.RecordsWithSplitIds;
import org.apache.flink.connector.base.source.reader.splitreader.SplitReader;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsAddition;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsChange;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the assigned partitions with one KafkaConsumer (manual assignment, no group membership).
 * Runs on the fetcher thread, which owns the consumer: offset commits requested by the reader on
 * checkpoint completion are queued and sent from here. Each element it hands the reader is one
 * poll's records of one partition (a chunk), which the emitter turns into rows or one batch row.
 */
final class KafkaPartitionSplitReader implements SplitReader<List<ConsumerRecord<byte[], byte[]>>, KafkaPartitionSplit> {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaPartitionSplitReader.class);

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final Set<TopicPartition> assigned = new HashSet<>();
    private final Queue<Map<TopicPartition, Long>> commitRequests;
    private final boolean canCommit;
    private final Duration pollTimeout;

    KafkaPartitionSplitReader(RiverbankKafkaSource source, int subtask, Queue<Map<TopicPartition, Long>> commitRequests) {
        Map<String, String> extra = new HashMap<>();
        extra.put(ConsumerConfig.CLIENT_ID_CONFIG, source.clientConfig().clientId("source-" + subtask));
        extra.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        extra.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // Flink's checkpoints own the position; the group offset is for monitoring (and 'committed').
        extra.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (source.clientConfig().get(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG) == null) {
            // Only reached when a checkpointed offset fell out of retention.
            extra.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        }
        if (source.clientConfig().get(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG) == null) {
            // Tansu on s3 storage answers a fetch empty when this expires before its object read
            // finishes (10 ms never returned stored data; 100 ms did): see ARCHITECTURE.md.
            extra.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        }
        if (source.groupId() != null) {
            extra.put(ConsumerConfig.GROUP_ID_CONFIG, source.groupId());
        }
        this.consumer = new KafkaConsumer<>(source.clientConfig().toProperties(extra));
        this.commitRequests = commitRequests;
        this.canCommit = source.groupId() != null;
        this.pollTimeout = Duration.ofMillis(source.pollTimeoutMs());
    }

    @Override
    public RecordsWithSplitIds<List<ConsumerRecord<byte[], byte[]>>> fetch() {
        commitRequested();
        if (assigned.isEmpty()) {
            return PartitionRecords.EMPTY;
        }
        ConsumerRecords<byte[], byte[]> records;
        try {
            records = consumer.poll(pollTimeout);
        } catch (WakeupException e) {
            return PartitionRecords.EMPTY;
        }
        if (records.isEmpty()) {
            return PartitionRecords.EMPTY;
        }
        Map<String, List<ConsumerRecord<byte[], byte[]>>> bySplit = new LinkedHashMap<>();
        for (TopicPartition tp : records.partitions()) {
            bySplit.put(KafkaPartitionSplit.splitId(tp), records.records(tp));
        }
        return new PartitionRecords(bySplit);
    }

    private void commitRequested() {
        Map<TopicPartition, Long> offsets;
        while ((offsets = commitRequests.poll()) != null) {
            if (!canCommit) {
                continue;
            }
            Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
            offsets.forEach((tp, offset) -> commit.put(tp, new OffsetAndMetadata(offset)));
            consumer.commitAsync(commit, (committed, error) -> {
                if (error != null) {
                    // Not fatal: the checkpoint holds the position; the group offset only lags.
                    LOG.warn("Committing offsets {} to the consumer group failed", committed, error);
                } else {
                    LOG.debug("Committed offsets {}", committed);
                }
            });
        }
    }

    @Override
    public void handleSplitsChanges(SplitsChange<KafkaPartitionSplit> change) {
        if (!(change instanceof SplitsAddition)) {
            throw new UnsupportedOperationException("unsupported split change " + change);
        }
        List<KafkaPartitionSplit> added = change.splits();
        for (KafkaPartitionSplit split : added) {
            assigned.add(split.topicPartition());
        }
        consumer.assign(new ArrayList<>(assigned));
        for (KafkaPartitionSplit split : added) {
            consumer.seek(split.topicPartition(), split.offset());
        }
        LOG.info("Reading Kafka splits {} (all assigned: {})", added, assigned);
    }

    @Override
    public void wakeUp() {
        consumer.wakeup();
    }

    @Override
    public void close() {
        // Send any last queued commit before closing (close() waits for pending async commits).
        try {
            commitRequested();
        } catch (RuntimeException e) {
            LOG.warn("Final offset commit failed", e);
        }
        consumer.close(CloseOptions.timeout(Duration.ofSeconds(5)));
    }

    /** One poll's records grouped by split, in the order the consumer returned them: one chunk per split. */
    static final class PartitionRecords implements RecordsWithSplitIds<List<ConsumerRecord<byte[], byte[]>>> {
        static final PartitionRecords EMPTY = new PartitionRecords(Collections.emptyMap());

        private final Iterator<Map.Entry<String, List<ConsumerRecord<byte[], byte[]>>>> splits;
        private List<ConsumerRecord<byte[], byte[]>> current;

        PartitionRecords(Map<String, List<ConsumerRecord<byte[], byte[]>>> bySplit) {
            this.splits = bySplit.entrySet().iterator();
        }

        @Override
        public String nextSplit() {
            if (!splits.hasNext()) {
                return null;
            }
            Map.Entry<String, List<ConsumerRecord<byte[], byte[]>>> next = splits.next();
            current = next.getValue();
            return next.getKey();
        }

        @Override
        public List<ConsumerRecord<byte[], byte[]>> nextRecordFromSplit() {
            List<ConsumerRecord<byte[], byte[]>> chunk = current;
            current = null;
            return chunk;
        }

        @Override
        public Set<String> finishedSplits() {
            return Collections.emptySet();
        }
    }
}
