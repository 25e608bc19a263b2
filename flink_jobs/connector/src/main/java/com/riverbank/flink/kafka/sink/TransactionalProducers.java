package com.riverbank.flink.kafka.sink;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.ProducerIdAndEpoch;

import com.riverbank.flink.kafka.KafkaClientConfig;

/**
 * Transactional producers, including the one thing kafka-clients has no public API for: taking
 * over a transaction another producer instance began, given its producer id and epoch.
 *
 * <p>Why: a transaction is pre-committed when a checkpoint is taken and committed only when the
 * checkpoint completes. If the job fails in between, the restored job must commit that same
 * transaction. {@code initTransactions()} cannot do it: it bumps the epoch and aborts whatever is
 * open under the transactional id. (Kafka 4.x's KIP-939 {@code initTransactions(true)} keeps a
 * prepared transaction, but needs brokers with two-phase-commit support, which Tansu and most
 * managed clusters lack.)
 *
 * <p>How: everything touching kafka-clients internals is in {@link #resume} and
 * {@link #producerIdAndEpoch}. The producer's private {@code TransactionManager} is put into the
 * state {@code initTransactions()} followed by {@code beginTransaction()} and a first send would
 * leave it in, except that the producer id and epoch are the given ones instead of new ones:
 * UNINITIALIZED -> INITIALIZING -> READY -> IN_TRANSACTION (each a valid transition in
 * TransactionManager.State, checked against kafka-clients 4.3.0), then {@code transactionStarted =
 * true} so {@code commitTransaction()} sends EndTxn(commit) with that id and epoch. The coordinator
 * accepts it because the epoch is still the current one for the transactional id: nothing called
 * InitProducerId on that id since the transaction was written. The reflection targets private
 * members; a kafka-clients upgrade must re-check them (the error names what is missing).
 */
public final class TransactionalProducers {
    private static final String TM_FIELD = "transactionManager";
    private static final String TM_STATE_ENUM =
            "org.apache.kafka.clients.producer.internals.TransactionManager$State";

    private TransactionalProducers() {}

    /** A producer for {@code transactionalId}; initTransactions() is up to the caller. */
    public static KafkaProducer<byte[], byte[]> create(KafkaClientConfig config, String transactionalId) {
        Map<String, String> extra = new HashMap<>();
        extra.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        extra.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        extra.put(ProducerConfig.CLIENT_ID_CONFIG, config.clientId(transactionalId));
        extra.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        extra.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (config.get(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG) == null) {
            // Must outlast the longest gap between a checkpoint and its completion plus a restart.
            extra.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, String.valueOf(Duration.ofMinutes(15).toMillis()));
        }
        if (config.get(ProducerConfig.LINGER_MS_CONFIG) == null) {
            extra.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        }
        return new KafkaProducer<>(config.toProperties(extra));
    }

    /**
     * Fences whatever producer last used {@code transactionalId} and aborts its open transaction
     * (that is what InitProducerId does), and returns the epoch the id has now: 0 means the id had
     * never been initialised before.
     */
    public static short fenceAndAbort(KafkaClientConfig config, String transactionalId) {
        try (KafkaProducer<byte[], byte[]> producer = create(config, transactionalId)) {
            producer.initTransactions();
            return producerIdAndEpoch(producer).epoch;
        }
    }

    /** The producer id and epoch of a producer after initTransactions(), read from its internals. */
    public static ProducerIdAndEpoch producerIdAndEpoch(KafkaProducer<?, ?> producer) {
        Object manager = transactionManager(producer);
        synchronized (manager) {
            return (ProducerIdAndEpoch) getField(manager, "producerIdAndEpoch");
        }
    }

    /**
     * Makes a fresh producer (no initTransactions()) the owner of the open transaction of
     * (producerId, epoch) on its transactional id, so that commitTransaction() commits it.
     */
    public static void resume(KafkaProducer<?, ?> producer, long producerId, short epoch) {
        if (producerId < 0 || epoch < 0) {
            throw new IllegalArgumentException("invalid producer id/epoch " + producerId + "/" + epoch);
        }
        Object manager = transactionManager(producer);
        synchronized (manager) {
            transitionTo(manager, "INITIALIZING");
            setField(manager, "producerIdAndEpoch", new ProducerIdAndEpoch(producerId, epoch));
            transitionTo(manager, "READY");
            transitionTo(manager, "IN_TRANSACTION");
            setField(manager, "transactionStarted", Boolean.TRUE);
        }
    }

    private static Object transactionManager(KafkaProducer<?, ?> producer) {
        Object manager = getField(producer, TM_FIELD);
        if (manager == null) {
            throw new IllegalStateException("producer has no transactional.id, so no TransactionManager");
        }
        return manager;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static void transitionTo(Object manager, String state) {
        try {
            Class<? extends Enum> states = (Class<? extends Enum>) Class.forName(
                    TM_STATE_ENUM, false, manager.getClass().getClassLoader());
            Method transition = manager.getClass().getDeclaredMethod("transitionTo", states);
            transition.setAccessible(true);
            transition.invoke(manager, Enum.valueOf(states, state));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(
                    "kafka-clients internals changed: cannot call TransactionManager.transitionTo(" + state + ")", e);
        }
    }

    private static Object getField(Object target, String name) {
        try {
            Field field = target.getClass().getDeclaredField(name);
            field.setAccessible(true);
            return field.get(target);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(
                    "kafka-clients internals changed: no field " + target.getClass().getName() + "." + name, e);
        }
    }

    private static void setField(Object target, String name, Object value) {
        try {
            Field field = target.getClass().getDeclaredField(name);
            field.setAccessible(true);
            field.set(target, value);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(
                    "kafka-clients internals changed: cannot set " + target.getClass().getName() + "." + name, e);
        }
    }
}
