package com.riverbank.flink.kafka.sink;

import java.time.Duration;
import java.util.Collection;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.riverbank.flink.kafka.KafkaClientConfig;

/**
 * Commits pre-committed transactions once their checkpoint completes, with the writer's live
 * producer when it is still around, else by resuming the transaction from the committable.
 */
final class KafkaCommitter implements Committer<KafkaCommittable> {
    private static final Logger LOG = LoggerFactory.getLogger(KafkaCommitter.class);

    private final KafkaClientConfig config;

    KafkaCommitter(KafkaClientConfig config) {
        this.config = config;
    }

    @Override
    public void commit(Collection<CommitRequest<KafkaCommittable>> requests) {
        for (CommitRequest<KafkaCommittable> request : requests) {
            commitOne(request);
        }
    }

    private void commitOne(CommitRequest<KafkaCommittable> request) {
        KafkaCommittable committable = request.getCommittable();
        KafkaProducer<byte[], byte[]> producer = PendingProducers.take(committable.transactionalId());
        boolean resumed = producer == null;
        try {
            if (resumed) {
                producer = TransactionalProducers.create(config, committable.transactionalId());
                TransactionalProducers.resume(producer, committable.producerId(), committable.epoch());
            }
            producer.commitTransaction();
            LOG.debug("Committed {}{}", committable, resumed ? " (resumed)" : "");
            producer.close(Duration.ofSeconds(5));
        } catch (ProducerFencedException | InvalidProducerEpochException | InvalidTxnStateException e) {
            // A newer epoch exists or the transaction is no longer open: it was committed before a
            // restart (the usual case when a restored committable is committed again), or, if the
            // gap exceeded transaction.timeout.ms, aborted by the broker, which would mean data loss.
            LOG.warn("Transaction {} cannot be committed again ({}); treating it as committed. If the "
                    + "job was down longer than transaction.timeout.ms its records were aborted.",
                    committable, e.toString());
            closeQuietly(producer);
            request.signalAlreadyCommitted();
        } catch (RetriableException e) {
            LOG.warn("Committing {} failed with a retriable error; retrying", committable, e);
            closeQuietly(producer);
            request.retryLater();
        } catch (RuntimeException e) {
            closeQuietly(producer);
            request.signalFailedWithUnknownReason(e);
        }
    }

    private static void closeQuietly(KafkaProducer<byte[], byte[]> producer) {
        if (producer != null) {
            try {
                producer.close(Duration.ZERO);
            } catch (RuntimeException ignored) {
                // best effort
            }
        }
    }

    @Override
    public void close() {}
}
