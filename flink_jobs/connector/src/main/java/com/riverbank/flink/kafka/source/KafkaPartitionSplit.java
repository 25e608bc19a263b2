package com.riverbank.flink.kafka.source;

import java.util.Objects;

import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.kafka.common.TopicPartition;

/** One Kafka partition and the offset of the next record to read (always concrete, never a marker). */
public final class KafkaPartitionSplit implements SourceSplit {
    private final String topic;
    private final int partition;
    private final long offset;

    public KafkaPartitionSplit(String topic, int partition, long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("split offsets are concrete, got " + offset + " for " + topic + "-" + partition);
        }
        this.topic = topic;
        this.partition = partition;
        this.offset = offset;
    }

    public static String splitId(TopicPartition tp) {
        return tp.topic() + "-" + tp.partition();
    }

    public String topic() {
        return topic;
    }

    public int partition() {
        return partition;
    }

    public long offset() {
        return offset;
    }

    public TopicPartition topicPartition() {
        return new TopicPartition(topic, partition);
    }

    @Override
    public String splitId() {
        return topic + "-" + partition;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof KafkaPartitionSplit)) {
            return false;
        }
        KafkaPartitionSplit other = (KafkaPartitionSplit) o;
        return partition == other.partition && offset == other.offset && topic.equals(other.topic);
    }

    @Override
    public int hashCode() {
        return Objects.hash(topic, partition, offset);
    }

    @Override
    public String toString() {
        return splitId() + "@" + offset;
    }
}
