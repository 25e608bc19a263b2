package com.riverbank.flink.kafka.sink;

/** A pre-committed transaction: enough to commit it from any process. */
public final class KafkaCommittable {
    private final String transactionalId;
    private final long producerId;
    private final short epoch;

    public KafkaCommittable(String transactionalId, long producerId, short epoch) {
        this.transactionalId = transactionalId;
        this.producerId = producerId;
        this.epoch = epoch;
    }

    public String transactionalId() {
        return transactionalId;
    }

    public long producerId() {
        return producerId;
    }

    public short epoch() {
        return epoch;
    }

    @Override
    public String toString() {
        return transactionalId + " (producer " + producerId + ", epoch " + epoch + ")";
    }
}
