package com.riverbank.flink.kafka.source;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.connector.source.SplitsAssignment;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Discovers partitions, resolves their starting offsets to concrete numbers and hands each partition
 * to one reader, always the same one for a given parallelism.
 *
 * <p>The first discovery runs synchronously in {@link #start()}: the coordinator thread takes
 * checkpoints, so no checkpoint can be taken before every initial partition has a concrete offset.
 * Later discoveries run periodically on the context's worker thread; partitions found then start at
 * their earliest offset, so records written before discovery are not skipped.
 */
final class KafkaSourceEnumerator implements SplitEnumerator<KafkaPartitionSplit, KafkaEnumeratorState> {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaSourceEnumerator.class);
    private static final long ADMIN_TIMEOUT_S = 60;
    /**
     * Consecutive empty 200 ms polls, once every partition is at or past its reported end, that
     * mean "read to the end" while scanning.
     */
    private static final int SCAN_QUIET_POLLS = 3;
    /** A scan that cannot reach the reported ends in this time fails the start (the job restarts). */
    private static final long SCAN_TIMEOUT_S = 120;

    private final SplitEnumeratorContext<KafkaPartitionSplit> context;
    private final RiverbankKafkaSource source;
    /** Written only on the coordinator thread, read by discovery on the worker thread. */
    private final Set<TopicPartition> knownPartitions = ConcurrentHashMap.newKeySet();
    private final Map<Integer, List<KafkaPartitionSplit>> pendingByReader = new HashMap<>();
    private final boolean restored;
    private Admin admin;

    KafkaSourceEnumerator(
            SplitEnumeratorContext<KafkaPartitionSplit> context,
            RiverbankKafkaSource source,
            KafkaEnumeratorState state) {
        this.context = context;
        this.source = source;
        this.restored = state != null;
        if (state != null) {
            knownPartitions.addAll(state.knownPartitions());
            for (KafkaPartitionSplit split : state.unassignedSplits()) {
                addPending(split);
            }
        }
    }

    @Override
    public void start() {
        Map<String, String> extra = new HashMap<>();
        extra.put(AdminClientConfig.CLIENT_ID_CONFIG, source.clientConfig().clientId("enumerator"));
        admin = Admin.create(source.clientConfig().toProperties(extra));
        if (!restored) {
            try {
                onDiscovered(discover(source.startingOffsets()), null);
            } catch (Exception e) {
                throw new IllegalStateException(
                        "Riverbank Kafka source could not resolve starting offsets ("
                                + source.startingOffsets() + ") for " + source.describeTopics()
                                + " on " + source.clientConfig().bootstrapServers(),
                        e);
            }
        }
        long interval = source.discoveryIntervalMs();
        if (interval > 0) {
            // Partitions found from now on start at their beginning.
            context.callAsync(
                    () -> discover(StartingOffsets.earliest()), this::onDiscovered, interval, interval);
        }
        LOG.info("Riverbank Kafka source enumerator started: {} partitions known, discovery every {} ms",
                knownPartitions.size(), interval);
    }

    /** Lists the subscribed partitions not yet known and resolves where each starts. */
    private List<KafkaPartitionSplit> discover(StartingOffsets spec) throws Exception {
        Set<TopicPartition> fresh = new HashSet<>();
        for (TopicPartition tp : listPartitions()) {
            if (!knownPartitions.contains(tp)) {
                fresh.add(tp);
            }
        }
        if (fresh.isEmpty()) {
            return List.of();
        }
        Map<TopicPartition, Long> offsets = resolve(fresh, spec);
        List<KafkaPartitionSplit> splits = new ArrayList<>();
        for (Map.Entry<TopicPartition, Long> entry : offsets.entrySet()) {
            TopicPartition tp = entry.getKey();
            splits.add(new KafkaPartitionSplit(tp.topic(), tp.partition(), entry.getValue()));
        }
        return splits;
    }

    private Set<TopicPartition> listPartitions() throws Exception {
        Collection<String> topics;
        Pattern pattern = source.topicPattern();
        if (pattern != null) {
            topics = new ArrayList<>();
            for (String name : admin.listTopics().names().get(ADMIN_TIMEOUT_S, TimeUnit.SECONDS)) {
                if (pattern.matcher(name).matches()) {
                    topics.add(name);
                }
            }
        } else {
            // Missing topics are not an error: discovery picks them up once they exist.
            Set<String> existing = admin.listTopics().names().get(ADMIN_TIMEOUT_S, TimeUnit.SECONDS);
            topics = new ArrayList<>();
            for (String topic : source.topics()) {
                if (existing.contains(topic)) {
                    topics.add(topic);
                } else {
                    LOG.warn("Topic {} does not exist (yet); it is read once discovery finds it", topic);
                }
            }
        }
        Set<TopicPartition> partitions = new HashSet<>();
        if (topics.isEmpty()) {
            return partitions;
        }
        Map<String, TopicDescription> descriptions =
                admin.describeTopics(topics).allTopicNames().get(ADMIN_TIMEOUT_S, TimeUnit.SECONDS);
        for (TopicDescription description : descriptions.values()) {
            for (TopicPartitionInfo info : description.partitions()) {
                partitions.add(new TopicPartition(description.name(), info.partition()));
            }
        }
        return partitions;
    }

    private Map<TopicPartition, Long> resolve(Set<TopicPartition> partitions, StartingOffsets spec)
            throws Exception {
        Map<TopicPartition, Long> result = new HashMap<>();
        Set<TopicPartition> remaining = new HashSet<>(partitions);
        StartingOffsets.Kind kind = spec.kind();
        if (kind == StartingOffsets.Kind.COMMITTED) {
            String group = source.groupId();
            if (group == null) {
                throw new IllegalArgumentException("starting offsets 'committed' need a group id");
            }
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group)
                            .partitionsToOffsetAndMetadata()
                            .get(ADMIN_TIMEOUT_S, TimeUnit.SECONDS);
            for (TopicPartition tp : partitions) {
                OffsetAndMetadata offset = committed.get(tp);
                if (offset != null && offset.offset() >= 0) {
                    result.put(tp, offset.offset());
                    remaining.remove(tp);
                }
            }
            kind = spec.fallback();
        } else if (kind == StartingOffsets.Kind.TIMESTAMP) {
            Map<TopicPartition, Long> byTime = listOffsets(remaining, OffsetSpec.forTimestamp(spec.timestamp()));
            Map<TopicPartition, Long> from = new HashMap<>();
            for (TopicPartition tp : remaining) {
                Long offset = byTime.get(tp);
                // No record at or after the timestamp (-1): scan from the reported end.
                from.put(tp, offset == null || offset < 0 ? -1L : offset);
            }
            Map<TopicPartition, Long> ends = null;
            if (from.containsValue(-1L)) {
                ends = listOffsets(remaining, OffsetSpec.latest());
                for (Map.Entry<TopicPartition, Long> entry : from.entrySet()) {
                    if (entry.getValue() < 0) {
                        entry.setValue(ends.get(entry.getKey()));
                    }
                }
            }
            result.putAll(scanForward(from, spec.timestamp()));
            remaining.clear();
        }
        if (!remaining.isEmpty()) {
            if (kind == StartingOffsets.Kind.LATEST) {
                result.putAll(scanForward(listOffsets(remaining, OffsetSpec.latest()), Long.MAX_VALUE));
            } else {
                result.putAll(listOffsets(remaining, OffsetSpec.earliest()));
            }
        }
        LOG.info("Resolved starting offsets ({}): {}", spec, result);
        return result;
    }

    /**
     * Refines broker answers that are only lower bounds: from each partition's offset, reads
     * forward to the first record with a timestamp at or after {@code timestamp}, or to the end of
     * the partition when there is none ({@code Long.MAX_VALUE} finds the end). Some brokers answer
     * ListOffsets at record-batch granularity (Tansu 0.6 reports the last batch's base offset as the
     * end and the first matching batch's base offset for a timestamp); Apache Kafka answers exactly,
     * and then the scan reads at most the records appended meanwhile.
     */
    private Map<TopicPartition, Long> scanForward(Map<TopicPartition, Long> from, long timestamp) {
        Map<TopicPartition, Long> found = new HashMap<>();
        if (from.isEmpty()) {
            return found;
        }
        Map<String, String> extra = new HashMap<>();
        extra.put(ConsumerConfig.CLIENT_ID_CONFIG, source.clientConfig().clientId("enumerator-scan"));
        extra.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        extra.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        extra.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        extra.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        extra.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        java.util.Properties props = source.clientConfig().toProperties(extra);
        props.remove(ConsumerConfig.GROUP_ID_CONFIG);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            Set<TopicPartition> open = new HashSet<>(from.keySet());
            consumer.assign(open);
            for (Map.Entry<TopicPartition, Long> entry : from.entrySet()) {
                consumer.seek(entry.getKey(), entry.getValue());
            }
            // Empty polls only mean "the end" once the reported end is reached: before that, a
            // broker that answers a fetch empty when its storage read outlives the wait (Tansu on
            // S3, under load) would otherwise start a partition before its timestamp.
            Map<TopicPartition, Long> reportedEnds =
                    consumer.endOffsets(open, Duration.ofSeconds(ADMIN_TIMEOUT_S));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SCAN_TIMEOUT_S);
            int quietPolls = 0;
            while (!open.isEmpty() && quietPolls < SCAN_QUIET_POLLS) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                boolean atEnds = true;
                for (TopicPartition tp : open) {
                    atEnds &= consumer.position(tp) >= reportedEnds.getOrDefault(tp, 0L);
                }
                quietPolls = records.isEmpty() && atEnds ? quietPolls + 1 : 0;
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(
                            "scanning for starting offsets did not reach the ends " + reportedEnds
                                    + " of " + open + " within " + SCAN_TIMEOUT_S + " s");
                }
                for (TopicPartition tp : records.partitions()) {
                    if (!open.contains(tp)) {
                        continue;
                    }
                    for (ConsumerRecord<byte[], byte[]> record : records.records(tp)) {
                        if (record.timestamp() >= timestamp) {
                            found.put(tp, record.offset());
                            open.remove(tp);
                            consumer.pause(java.util.List.of(tp));
                            break;
                        }
                    }
                }
            }
            // Partitions read to their end without a match start at the end.
            for (TopicPartition tp : open) {
                found.put(tp, consumer.position(tp));
            }
        }
        return found;
    }

    private Map<TopicPartition, Long> listOffsets(Set<TopicPartition> partitions, OffsetSpec spec)
            throws InterruptedException, ExecutionException, java.util.concurrent.TimeoutException {
        Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        for (TopicPartition tp : partitions) {
            request.put(tp, spec);
        }
        Map<TopicPartition, ListOffsetsResultInfo> infos =
                admin.listOffsets(request).all().get(ADMIN_TIMEOUT_S, TimeUnit.SECONDS);
        Map<TopicPartition, Long> offsets = new HashMap<>();
        for (Map.Entry<TopicPartition, ListOffsetsResultInfo> entry : infos.entrySet()) {
            offsets.put(entry.getKey(), entry.getValue().offset());
        }
        return offsets;
    }

    /** Runs on the coordinator thread. */
    private void onDiscovered(List<KafkaPartitionSplit> splits, Throwable error) {
        if (error != null) {
            LOG.warn("Kafka partition discovery failed; retrying at the next interval", error);
            return;
        }
        for (KafkaPartitionSplit split : splits) {
            if (knownPartitions.add(split.topicPartition())) {
                LOG.info("New Kafka partition {}", split);
                addPending(split);
            }
        }
        assignPending();
    }

    private int ownerOf(TopicPartition tp) {
        int start = (tp.topic().hashCode() * 31) & 0x7FFFFFFF;
        return (start + tp.partition()) % context.currentParallelism();
    }

    private void addPending(KafkaPartitionSplit split) {
        pendingByReader.computeIfAbsent(ownerOf(split.topicPartition()), k -> new ArrayList<>()).add(split);
    }

    private void assignPending() {
        Map<Integer, List<KafkaPartitionSplit>> assignment = new HashMap<>();
        for (Integer reader : context.registeredReaders().keySet()) {
            List<KafkaPartitionSplit> splits = pendingByReader.remove(reader);
            if (splits != null && !splits.isEmpty()) {
                assignment.put(reader, splits);
            }
        }
        if (!assignment.isEmpty()) {
            LOG.info("Assigning Kafka splits {}", assignment);
            context.assignSplits(new SplitsAssignment<>(assignment));
        }
    }

    @Override
    public void handleSplitRequest(int subtaskId, String requesterHostname) {
        // Splits are pushed on discovery; readers never ask.
    }

    @Override
    public void addSplitsBack(List<KafkaPartitionSplit> splits, int subtaskId) {
        // A reader failed before a checkpoint took these splits: they return with the offsets of the
        // last checkpoint and go to the same reader once it registers again.
        for (KafkaPartitionSplit split : splits) {
            addPending(split);
        }
        assignPending();
    }

    @Override
    public void addReader(int subtaskId) {
        assignPending();
    }

    @Override
    public KafkaEnumeratorState snapshotState(long checkpointId) {
        List<KafkaPartitionSplit> pending = new ArrayList<>();
        for (List<KafkaPartitionSplit> splits : pendingByReader.values()) {
            pending.addAll(splits);
        }
        return new KafkaEnumeratorState(new HashSet<>(knownPartitions), pending);
    }

    @Override
    public void close() {
        if (admin != null) {
            admin.close(java.time.Duration.ofSeconds(5));
        }
    }
}
