package com.riverbank.flink.kafka.source;

import java.io.Serializable;
import java.util.Locale;

/**
 * Where a partition starts when the job starts without state: {@code earliest}, {@code latest},
 * {@code committed} (the consumer group's offset; {@code committed:latest} picks the fallback for
 * partitions without one, default earliest) or {@code timestamp:<epoch millis>} (the first record at
 * or after that time; partitions without one start at their end). The enumerator resolves these to
 * concrete offsets before the first checkpoint, so a restore never re-evaluates them.
 */
public final class StartingOffsets implements Serializable {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        EARLIEST,
        LATEST,
        COMMITTED,
        TIMESTAMP
    }

    private final Kind kind;
    private final long timestamp;
    private final Kind fallback;

    private StartingOffsets(Kind kind, long timestamp, Kind fallback) {
        this.kind = kind;
        this.timestamp = timestamp;
        this.fallback = fallback;
    }

    public static StartingOffsets earliest() {
        return new StartingOffsets(Kind.EARLIEST, -1, Kind.EARLIEST);
    }

    public static StartingOffsets parse(String spec) {
        String text = spec.trim().toLowerCase(Locale.ROOT);
        String[] parts = text.split(":", 2);
        switch (parts[0]) {
            case "earliest":
                return earliest();
            case "latest":
                return new StartingOffsets(Kind.LATEST, -1, Kind.LATEST);
            case "committed":
                Kind fallback = Kind.EARLIEST;
                if (parts.length == 2) {
                    fallback = Kind.valueOf(parts[1].toUpperCase(Locale.ROOT));
                    if (fallback != Kind.EARLIEST && fallback != Kind.LATEST) {
                        throw new IllegalArgumentException("committed fallback must be earliest or latest: " + spec);
                    }
                }
                return new StartingOffsets(Kind.COMMITTED, -1, fallback);
            case "timestamp":
                if (parts.length != 2) {
                    throw new IllegalArgumentException("expected timestamp:<epoch millis>, got " + spec);
                }
                return new StartingOffsets(Kind.TIMESTAMP, Long.parseLong(parts[1]), Kind.LATEST);
            default:
                throw new IllegalArgumentException(
                        "starting offsets must be earliest, latest, committed[:earliest|latest] or "
                                + "timestamp:<epoch millis>, got " + spec);
        }
    }

    public Kind kind() {
        return kind;
    }

    public long timestamp() {
        return timestamp;
    }

    public Kind fallback() {
        return fallback;
    }

    @Override
    public String toString() {
        switch (kind) {
            case COMMITTED:
                return "committed:" + fallback.name().toLowerCase(Locale.ROOT);
            case TIMESTAMP:
                return "timestamp:" + timestamp;
            default:
                return kind.name().toLowerCase(Locale.ROOT);
        }
    }
}
