package com.riverbank.flink.kafka;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * {@code Row("topic:partition", batch)} for a batch row of {@link RecordBatches#BATCH_TYPE}: the
 * layout PyFlink's keyed Python operators take (key first, then the element), computed in Java so
 * that keying a batch stream adds no Python operator (and no Python thread contending for the GIL)
 * to the source's chain.
 */
public final class PartitionKey implements MapFunction<Row, Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;

    public static final RowTypeInfo KEYED_TYPE =
            new RowTypeInfo(new TypeInformation<?>[] {Types.STRING, RecordBatches.BATCH_TYPE});

    /** The key of a batch: its topic and partition. */
    public static String of(Row batch) {
        return batch.getField(0) + ":" + batch.getField(1);
    }

    @Override
    public Row map(Row batch) {
        return Row.of(of(batch), batch);
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return KEYED_TYPE;
    }
}
