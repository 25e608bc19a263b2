package com.riverbank.flink.kafka;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

/** A serializable map of Java Kafka client settings shared by the source and the sink. */
public final class KafkaClientConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    private final HashMap<String, String> values = new HashMap<>();

    public KafkaClientConfig set(String key, String value) {
        if (value == null) {
            values.remove(key);
        } else {
            values.put(key, value);
        }
        return this;
    }

    public String get(String key) {
        return values.get(key);
    }

    public String bootstrapServers() {
        String servers = values.get("bootstrap.servers");
        if (servers == null || servers.isBlank()) {
            throw new IllegalArgumentException("Kafka client config needs bootstrap.servers");
        }
        return servers;
    }

    /** A fresh Properties holding these settings plus {@code extra} (extra wins), minus unset keys. */
    public Properties toProperties(Map<String, String> extra) {
        Properties props = new Properties();
        props.putAll(values);
        props.putAll(extra);
        return props;
    }

    /** A client.id unique to one client: the configured one (default "riverbank") plus a suffix. */
    public String clientId(String suffix) {
        String base = values.getOrDefault("client.id", "riverbank");
        return base + "-" + suffix;
    }

    @Override
    public String toString() {
        Map<String, String> shown = new HashMap<>(values);
        shown.replaceAll((k, v) -> k.contains("password") || k.contains("jaas") ? "***" : v);
        return shown.toString();
    }
}
