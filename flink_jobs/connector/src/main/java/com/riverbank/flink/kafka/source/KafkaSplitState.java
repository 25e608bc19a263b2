package com.riverbank.flink.kafka.source;

/** The mutable reading position of one split inside a reader: the next offset to read. */
final class KafkaSplitState {
    private final String topic;
    private final int partition;
    private long nextOffset;

    KafkaSplitState(KafkaPartitionSplit split) {
        this.topic = split.topic();
        this.partition = split.partition();
        this.nextOffset = split.offset();
    }

    void advancePast(long offset) {
        nextOffset = offset + 1;
    }

    KafkaPartitionSplit toSplit() {
        return new KafkaPartitionSplit(topic, partition, nextOffset);
    }
}
