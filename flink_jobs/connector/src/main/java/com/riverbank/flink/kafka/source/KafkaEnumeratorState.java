package com.riverbank.flink.kafka.source;

import java.util.List;
import java.util.Set;

import org.apache.kafka.common.TopicPartition;

/**
 * What the enumerator checkpoints: every partition it has discovered (so discovery never re-adds
 * one with a new starting offset) and the splits not yet handed to a reader, with concrete offsets.
 */
public final class KafkaEnumeratorState {
    private final Set<TopicPartition> knownPartitions;
    private final List<KafkaPartitionSplit> unassignedSplits;

    public KafkaEnumeratorState(Set<TopicPartition> knownPartitions, List<KafkaPartitionSplit> unassignedSplits) {
        this.knownPartitions = knownPartitions;
        this.unassignedSplits = unassignedSplits;
    }

    public Set<TopicPartition> knownPartitions() {
        return knownPartitions;
    }

    public List<KafkaPartitionSplit> unassignedSplits() {
        return unassignedSplits;
    }
}
