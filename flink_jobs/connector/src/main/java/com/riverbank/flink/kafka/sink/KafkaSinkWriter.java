package com.riverbank.flink.kafka.sink;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.flink.api.connector.sink2.CommittingSinkWriter;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.types.Row;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.ProducerIdAndEpoch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.riverbank.flink.kafka.KafkaRows;

/**
 * Writes rows to Kafka.
 *
 * <p>AT_LEAST_ONCE / NONE: one producer. By default {@link #flush} (called by Flink before every
 * checkpoint barrier) waits for every send to be acknowledged, so a completed checkpoint never
 * covers an unacknowledged record; the task processes nothing meanwhile. Without that wait
 * ({@code flushOnCheckpoint} false) the writer keeps the records sent and not yet acknowledged
 * ({@link InFlightRecords}) and {@link #snapshotState} puts them in the checkpoint, so a completed
 * checkpoint covers each record before its barrier either as acknowledged or as state; a writer
 * restored from it sends them again before anything else. NONE behaves the same here.
 *
 * <p>EXACTLY_ONCE: one transaction per checkpoint interval under the transactional id
 * {@code <prefix>-<subtask>-<checkpoint id>}, where the id is that of the first checkpoint that can
 * commit it. {@link #prepareCommit} flushes and hands the transaction over as a committable; the
 * committer commits it once the checkpoint completes. {@link #snapshotState} opens the next one.
 * On start the writer first aborts lingering transactions: ids from the restored checkpoint id + 1
 * onwards (from 1 on a fresh start) are fenced one by one, which aborts anything open under them,
 * until {@link #FRESH_IDS_TO_STOP} consecutive ids turn out never to have been used (epoch 0).
 * Transactions of ids up to the restored checkpoint belong to committables and are left alone.
 *
 * <p>Deferred sends (exactly-once, on by default): rows are held in memory and sent into the
 * transaction only at the checkpoint barrier, so the transaction that is open when a job dies holds
 * no records unless the job died between a barrier and that checkpoint's completion, and it is open
 * only briefly. This matters on brokers that do not hide aborted records from read_committed
 * consumers (Tansu 0.6 on its own returns them like committed ones): there, an aborted
 * transaction's records would show up as duplicates after the replay. On Apache Kafka, and on the
 * embedded broker behind Riverbank's broker guard, it is a trade-off: memory, and read_uncommitted
 * readers see rows only at the barrier, against partitions whose last stable offset is held back
 * only between a barrier and its commit. Past {@code maxBufferedRecords} rows the buffer is sent
 * early.
 */
final class KafkaSinkWriter implements StatefulSinkWriter<Row, KafkaWriterState>, CommittingSinkWriter<Row, KafkaCommittable> {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaSinkWriter.class);
    /** Tolerates one unused id (a checkpoint whose barrier never reached this writer). */
    static final int FRESH_IDS_TO_STOP = 2;

    private final RiverbankKafkaSink sink;
    private final int subtask;
    private final boolean exactlyOnce;
    private final Callback callback;
    private volatile Exception asyncError;
    /** At-least-once without the wait at checkpoints: the records the broker has not acknowledged. */
    private final InFlightRecords inFlight;

    private KafkaProducer<byte[], byte[]> producer;
    private String transactionalId;
    private long nextTransactionCheckpoint;
    private boolean transactionHasRecords;
    private final List<ProducerRecord<byte[], byte[]>> deferred = new ArrayList<>();

    KafkaSinkWriter(RiverbankKafkaSink sink, WriterInitContext context, Collection<KafkaWriterState> restored) {
        this.sink = sink;
        this.subtask = context.getTaskInfo().getIndexOfThisSubtask();
        this.exactlyOnce = sink.deliveryGuarantee() == DeliveryGuarantee.EXACTLY_ONCE;
        this.inFlight = exactlyOnce || sink.flushOnCheckpoint() ? null : new InFlightRecords();
        this.callback = (metadata, error) -> {
            if (error != null && asyncError == null) {
                asyncError = error;
            }
        };
        if (exactlyOnce) {
            long restoredCheckpoint = context.getRestoredCheckpointId().orElse(0L);
            abortLingering(restoredCheckpoint + 1, restored, context.getTaskInfo().getNumberOfParallelSubtasks());
            openTransaction(restoredCheckpoint + 1);
        } else {
            Map<String, String> extra = new HashMap<>();
            extra.put(ProducerConfig.CLIENT_ID_CONFIG,
                    sink.clientConfig().clientId("sink-" + sink.defaultTopic() + "-" + subtask));
            extra.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            extra.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            if (sink.clientConfig().get(ProducerConfig.LINGER_MS_CONFIG) == null) {
                extra.put(ProducerConfig.LINGER_MS_CONFIG, "5");
            }
            if (sink.clientConfig().get(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG) == null) {
                // At-least-once does not need idempotence (duplicates are possible anyway after a
                // restore); one request in flight keeps retries from reordering records.
                extra.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
                extra.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1");
                extra.put(ProducerConfig.ACKS_CONFIG, "all");
            }
            producer = new KafkaProducer<>(sink.clientConfig().toProperties(extra));
        }
        sendRestored(restored);
    }

    /** Records that were unacknowledged at the restored checkpoint go out first, in their order. */
    private void sendRestored(Collection<KafkaWriterState> restored) {
        int count = 0;
        for (KafkaWriterState state : restored) {
            for (ProducerRecord<byte[], byte[]> record : state.unacknowledged()) {
                send(record);
                count++;
            }
        }
        if (count > 0) {
            LOG.info("Sending {} records again that were unacknowledged at the restored checkpoint ({})",
                    count, sink.describe());
        }
    }

    private String idFor(String prefix, int owner, long checkpointId) {
        return prefix + "-" + owner + "-" + checkpointId;
    }

    private void abortLingering(long fromCheckpoint, Collection<KafkaWriterState> restored, int parallelism) {
        // Own ids always; ids of subtasks that no longer exist (scale-down) or of an old prefix, when
        // their state landed here. Subtasks that still exist clean up their own ids.
        Set<String> owners = new LinkedHashSet<>();
        owners.add(sink.transactionalIdPrefix() + "\u0000" + subtask);
        for (KafkaWriterState state : restored) {
            if (state.transactionalIdPrefix().isEmpty()) {
                continue; // an at-least-once writer's state: no transactions
            }
            boolean otherPrefix = !state.transactionalIdPrefix().equals(sink.transactionalIdPrefix());
            if (otherPrefix || state.subtask() >= parallelism || state.subtask() == subtask) {
                owners.add(state.transactionalIdPrefix() + "\u0000" + state.subtask());
            }
        }
        for (String owner : owners) {
            String[] parts = owner.split("\u0000");
            String prefix = parts[0];
            int ownerSubtask = Integer.parseInt(parts[1]);
            int fresh = 0;
            int aborted = 0;
            for (long checkpoint = fromCheckpoint; fresh < FRESH_IDS_TO_STOP; checkpoint++) {
                short epoch = TransactionalProducers.fenceAndAbort(sink.clientConfig(), idFor(prefix, ownerSubtask, checkpoint));
                if (epoch == 0) {
                    fresh++;
                } else {
                    fresh = 0;
                    aborted++;
                }
            }
            LOG.info("Fenced {} possibly lingering transactions of {}-{}-* from checkpoint {}",
                    aborted, prefix, ownerSubtask, fromCheckpoint);
        }
    }

    private void openTransaction(long checkpointId) {
        transactionalId = idFor(sink.transactionalIdPrefix(), subtask, checkpointId);
        producer = TransactionalProducers.create(sink.clientConfig(), transactionalId);
        producer.initTransactions();
        producer.beginTransaction();
        transactionHasRecords = false;
        nextTransactionCheckpoint = checkpointId + 1;
        LOG.debug("Opened transaction {}", transactionalId);
    }

    @Override
    public void write(Row row, Context context) throws IOException {
        checkAsyncError();
        send(KafkaRows.toRecord(row, sink.defaultTopic(), context.timestamp()));
    }

    private void send(ProducerRecord<byte[], byte[]> record) {
        if (producer == null) {
            openTransaction(nextTransactionCheckpoint);
        }
        transactionHasRecords = true;
        if (exactlyOnce && sink.deferSends()) {
            deferred.add(record);
            if (deferred.size() >= sink.maxBufferedRecords()) {
                sendDeferred(); // in order, before anything newer
            }
        } else if (inFlight != null) {
            producer.send(record, inFlight.add(record, callback));
        } else {
            producer.send(record, callback);
        }
    }

    private void sendDeferred() {
        for (ProducerRecord<byte[], byte[]> record : deferred) {
            producer.send(record, callback);
        }
        deferred.clear();
    }

    @Override
    public void flush(boolean endOfInput) throws IOException {
        if (producer != null) {
            sendDeferred();
            if (inFlight == null || endOfInput) {
                producer.flush();
            }
        }
        checkAsyncError();
    }

    @Override
    public Collection<KafkaCommittable> prepareCommit() throws IOException {
        if (!exactlyOnce || producer == null) {
            return Collections.emptyList();
        }
        sendDeferred();
        producer.flush();
        checkAsyncError();
        KafkaProducer<byte[], byte[]> done = producer;
        producer = null;
        if (!transactionHasRecords) {
            // Nothing was sent, so the broker never saw this transaction begin.
            done.close(Duration.ZERO);
            return Collections.emptyList();
        }
        ProducerIdAndEpoch ids = TransactionalProducers.producerIdAndEpoch(done);
        KafkaCommittable committable = new KafkaCommittable(transactionalId, ids.producerId, ids.epoch);
        PendingProducers.put(transactionalId, done);
        LOG.debug("Pre-committed {}", committable);
        List<KafkaCommittable> result = new ArrayList<>(1);
        result.add(committable);
        return result;
    }

    @Override
    public List<KafkaWriterState> snapshotState(long checkpointId) {
        if (!exactlyOnce) {
            if (inFlight == null) {
                return Collections.emptyList();
            }
            return Collections.singletonList(new KafkaWriterState("", subtask, inFlight.snapshot()));
        }
        if (producer == null) {
            openTransaction(checkpointId + 1);
        }
        List<KafkaWriterState> state = new ArrayList<>(1);
        state.add(new KafkaWriterState(sink.transactionalIdPrefix(), subtask));
        return state;
    }

    private void checkAsyncError() throws IOException {
        Exception error = asyncError;
        if (error != null) {
            asyncError = null;
            throw new IOException("Sending to Kafka failed (" + sink.describe() + ")", error);
        }
    }

    @Override
    public void close() {
        if (producer != null) {
            if (exactlyOnce) {
                // Unfinished transaction: a restart fences it anyway; do not wait for the broker.
                producer.close(Duration.ZERO);
            } else {
                producer.close(Duration.ofSeconds(10));
            }
            producer = null;
        }
        if (exactlyOnce) {
            PendingProducers.release(sink.transactionalIdPrefix() + "-" + subtask + "-");
        }
    }
}
