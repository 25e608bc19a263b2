package com.riverbank.flink.kafka;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Expands packed output records (a byte[] per element, see {@link RecordBatches}) into
 * {@link KafkaRows#SINK_TYPE} rows for the Kafka sink. Chained after a Python operator, it lets
 * that operator hand over a whole batch of output records in one element.
 */
public final class Unbatch implements FlatMapFunction<byte[], Row>, ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public void flatMap(byte[] packed, Collector<Row> out) {
        for (Row row : RecordBatches.toSinkRows(packed)) {
            out.collect(row);
        }
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return KafkaRows.SINK_TYPE;
    }
}
