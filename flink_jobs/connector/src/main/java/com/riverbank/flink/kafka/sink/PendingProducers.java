package com.riverbank.flink.kafka.sink;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * Producers whose transaction is pre-committed and waiting for its checkpoint to complete, by
 * transactional id. The committer usually runs in the same JVM (and class loader) as the writer:
 * it takes the live producer from here and commits without any reflection. After a restart the
 * producer is gone and the committer resumes the transaction from the committable instead.
 */
final class PendingProducers {
    private static final Map<String, KafkaProducer<byte[], byte[]>> PENDING = new ConcurrentHashMap<>();

    private PendingProducers() {}

    static void put(String transactionalId, KafkaProducer<byte[], byte[]> producer) {
        KafkaProducer<byte[], byte[]> previous = PENDING.put(transactionalId, producer);
        if (previous != null && previous != producer) {
            previous.close(Duration.ZERO);
        }
    }

    static KafkaProducer<byte[], byte[]> take(String transactionalId) {
        return PENDING.remove(transactionalId);
    }

    /**
     * Drops the producers of ids starting with {@code idPrefix} without aborting their transactions
     * (a zero-timeout close sends no EndTxn): the committables still hold them.
     */
    static void release(String idPrefix) {
        PENDING.entrySet().removeIf(entry -> {
            if (entry.getKey().startsWith(idPrefix)) {
                entry.getValue().close(Duration.ZERO);
                return true;
            }
            return false;
        });
    }
}
