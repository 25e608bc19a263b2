package com.riverbank.flink.kafka.sink;

/**
 * What a writer checkpoints: the transactional id prefix and subtask whose ids it uses, so that after
 * scaling down a surviving subtask aborts the lingering transactions of subtasks that are gone.
 */
public final class KafkaWriterState {
    private final String transactionalIdPrefix;
    private final int subtask;

    public KafkaWriterState(String transactionalIdPrefix, int subtask) {
        this.transactionalIdPrefix = transactionalIdPrefix;
        this.subtask = subtask;
    }

    public String transactionalIdPrefix() {
        return transactionalIdPrefix;
    }

    public int subtask() {
        return subtask;
    }
}
