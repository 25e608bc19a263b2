package com.riverbank.flink.kafka.sink;

import java.util.Collections;
import java.util.List;

import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * What a writer checkpoints: the transactional id prefix and subtask whose ids it uses, so that after
 * scaling down a surviving subtask aborts the lingering transactions of subtasks that are gone; and,
 * for an at-least-once writer that does not wait at checkpoints, the records sent before the barrier
 * that the broker had not acknowledged yet, which a restored writer sends again first.
 */
public final class KafkaWriterState {
    private final String transactionalIdPrefix;
    private final int subtask;
    private final List<ProducerRecord<byte[], byte[]>> unacknowledged;

    public KafkaWriterState(String transactionalIdPrefix, int subtask) {
        this(transactionalIdPrefix, subtask, Collections.emptyList());
    }

    public KafkaWriterState(
            String transactionalIdPrefix, int subtask, List<ProducerRecord<byte[], byte[]>> unacknowledged) {
        this.transactionalIdPrefix = transactionalIdPrefix;
        this.subtask = subtask;
        this.unacknowledged = unacknowledged;
    }

    public String transactionalIdPrefix() {
        return transactionalIdPrefix;
    }

    public int subtask() {
        return subtask;
    }

    public List<ProducerRecord<byte[], byte[]>> unacknowledged() {
        return unacknowledged;
    }
}
