package com.riverbank.flink.kafka.source;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.SortedMap;
import java.util.TreeMap;

import org.apache.flink.api.connector.source.SourceOutput;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.connector.base.source.reader.RecordEmitter;
import org.apache.flink.connector.base.source.reader.SingleThreadMultiplexSourceReaderBase;
import org.apache.flink.types.Row;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

import com.riverbank.flink.kafka.KafkaRows;
import com.riverbank.flink.kafka.RecordBatches;

/**
 * The source reader: the base class multiplexes all assigned partitions over one fetcher thread and
 * gives every split its own output, so the WatermarkStrategy runs per partition and idleness
 * ({@code withIdleness}) applies per partition. This class adds offset commits on checkpoint
 * completion, at most one per commit interval.
 */
final class KafkaSourceReader
        extends SingleThreadMultiplexSourceReaderBase<List<ConsumerRecord<byte[], byte[]>>, Row, KafkaPartitionSplit, KafkaSplitState> {

    private final Queue<Map<TopicPartition, Long>> commitRequests;
    private final boolean commitOnCheckpoint;
    private final long commitIntervalNanos;
    /** When the last commit was requested (System.nanoTime); none yet: the first checkpoint commits. */
    private long lastCommitNanos;
    private boolean committedOnce;
    /** Offsets captured by each checkpoint, committed to the group when that checkpoint completes. */
    private final SortedMap<Long, Map<TopicPartition, Long>> offsetsByCheckpoint = new TreeMap<>();

    KafkaSourceReader(
            RiverbankKafkaSource source,
            SourceReaderContext context,
            Queue<Map<TopicPartition, Long>> commitRequests) {
        super(
                () -> new KafkaPartitionSplitReader(source, context.getIndexOfSubtask(), commitRequests),
                source.emitsBatches() ? new BatchEmitter() : new RowEmitter(),
                context.getConfiguration(),
                context);
        this.commitRequests = commitRequests;
        this.commitOnCheckpoint = source.commitOffsetsOnCheckpoint() && source.groupId() != null;
        this.commitIntervalNanos = source.commitOffsetsIntervalMs() * 1_000_000L;
    }

    @Override
    public List<KafkaPartitionSplit> snapshotState(long checkpointId) {
        List<KafkaPartitionSplit> splits = super.snapshotState(checkpointId);
        if (commitOnCheckpoint) {
            Map<TopicPartition, Long> offsets = new HashMap<>();
            for (KafkaPartitionSplit split : splits) {
                offsets.put(split.topicPartition(), split.offset());
            }
            offsetsByCheckpoint.put(checkpointId, offsets);
        }
        return splits;
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) throws Exception {
        super.notifyCheckpointComplete(checkpointId);
        if (!commitOnCheckpoint) {
            return;
        }
        Map<TopicPartition, Long> offsets = offsetsByCheckpoint.get(checkpointId);
        // This checkpoint subsumes older pending ones.
        offsetsByCheckpoint.headMap(checkpointId + 1).clear();
        if (offsets == null || offsets.isEmpty()) {
            return;
        }
        long now = System.nanoTime();
        if (committedOnce && now - lastCommitNanos < commitIntervalNanos) {
            return;
        }
        committedOnce = true;
        lastCommitNanos = now;
        commitRequests.add(offsets);
    }

    @Override
    protected void onSplitFinished(Map<String, KafkaSplitState> finishedSplitIds) {
        // Unbounded: partitions never finish.
    }

    @Override
    protected KafkaSplitState initializedState(KafkaPartitionSplit split) {
        return new KafkaSplitState(split);
    }

    @Override
    protected KafkaPartitionSplit toSplitType(String splitId, KafkaSplitState state) {
        return state.toSplit();
    }

    /** Emits each record of a chunk as a source row, with the record's timestamp. */
    static final class RowEmitter implements RecordEmitter<List<ConsumerRecord<byte[], byte[]>>, Row, KafkaSplitState> {
        @Override
        public void emitRecord(
                List<ConsumerRecord<byte[], byte[]>> chunk, SourceOutput<Row> output, KafkaSplitState state) {
            for (ConsumerRecord<byte[], byte[]> record : chunk) {
                output.collect(KafkaRows.fromRecord(record), record.timestamp());
                state.advancePast(record.offset());
            }
        }
    }

    /**
     * Emits a chunk as one batch row (see {@link RecordBatches}) stamped with its newest record
     * timestamp: the split's watermark generator sees the chunk's maximum, which is all a
     * bounded-out-of-orderness watermark depends on.
     */
    static final class BatchEmitter implements RecordEmitter<List<ConsumerRecord<byte[], byte[]>>, Row, KafkaSplitState> {
        @Override
        public void emitRecord(
                List<ConsumerRecord<byte[], byte[]>> chunk, SourceOutput<Row> output, KafkaSplitState state) {
            if (chunk.isEmpty()) {
                return;
            }
            Row batch = RecordBatches.fromRecords(chunk);
            output.collect(batch, (Long) batch.getField(RecordBatches.MAX_TIMESTAMP));
            state.advancePast(chunk.get(chunk.size() - 1).offset());
        }
    }
}
