package com.riverbank.flink.kafka.sink;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * The records a writer has sent and the broker has not yet acknowledged, in the order they were
 * sent. The task thread adds them; the producer's I/O thread removes each one on its
 * acknowledgement. A snapshot taken on the task thread holds every record added before it and not
 * acknowledged by then, and possibly some acknowledged while it was being taken: at-least-once.
 */
final class InFlightRecords {
    private final Map<Long, ProducerRecord<byte[], byte[]>> records = new ConcurrentHashMap<>();
    private long next; // task thread only

    /** Tracks {@code record} until the returned callback sees it acknowledged. */
    Callback add(ProducerRecord<byte[], byte[]> record, Callback onError) {
        long sequence = next++;
        records.put(sequence, record);
        return (metadata, error) -> {
            if (error == null) {
                records.remove(sequence);
            } else {
                onError.onCompletion(metadata, error);
            }
        };
    }

    /** The records not acknowledged yet, oldest first. */
    List<ProducerRecord<byte[], byte[]>> snapshot() {
        // A weakly consistent iteration: it returns every entry that is not removed meanwhile.
        Long[] sequences = records.keySet().toArray(new Long[0]);
        Arrays.sort(sequences);
        List<ProducerRecord<byte[], byte[]>> pending = new ArrayList<>(sequences.length);
        for (Long sequence : sequences) {
            ProducerRecord<byte[], byte[]> record = records.get(sequence);
            if (record != null) {
                pending.add(record);
            }
        }
        return pending;
    }
}
