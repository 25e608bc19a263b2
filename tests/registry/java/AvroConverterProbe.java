import io.confluent.connect.avro.AvroConverter;
import java.math.BigDecimal;
import java.util.Base64;
import java.util.Date;
import java.util.Map;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Timestamp;

/**
 * Serializes one CDC-like row with Confluent's AvroConverter, exactly as Kafka Connect and the
 * Debezium engine do, against the registry given on the command line.
 *
 * <p>Usage: AvroConverterProbe REGISTRY_URL TOPIC VERSION, where VERSION 1 is the base row, 2 adds
 * an optional field (compatible) and 3 turns the key column into a string (incompatible). Prints
 * the key's and the value's bytes, base64, one per line.
 */
public final class AvroConverterProbe {
  public static void main(String[] args) {
    String url = args[0];
    String topic = args[1];
    int version = Integer.parseInt(args[2]);

    AvroConverter keyConverter = new AvroConverter();
    keyConverter.configure(Map.of("schema.registry.url", url), true);
    AvroConverter valueConverter = new AvroConverter();
    valueConverter.configure(Map.of("schema.registry.url", url), false);

    SchemaBuilder value = SchemaBuilder.struct().name("bankdb.public.customers.Value");
    value.field("id", version == 3 ? Schema.STRING_SCHEMA : Schema.INT64_SCHEMA);
    value.field("email", Schema.OPTIONAL_STRING_SCHEMA);
    value.field("balance", Decimal.builder(2).build());
    value.field("updated_at", Timestamp.SCHEMA);
    if (version >= 2) {
      value.field("segment", SchemaBuilder.string().optional().defaultValue(null).build());
    }
    Schema valueSchema = value.build();
    Struct row = new Struct(valueSchema)
        .put("id", version == 3 ? (Object) "42" : (Object) 42L)
        .put("email", "ada@example.com")
        .put("balance", new BigDecimal("1234.56"))
        .put("updated_at", new Date(1_700_000_000_123L));
    if (version >= 2) {
      row.put("segment", "retail");
    }

    Schema keySchema = SchemaBuilder.struct().name("bankdb.public.customers.Key")
        .field("id", Schema.INT64_SCHEMA).build();
    Struct key = new Struct(keySchema).put("id", 42L);

    Base64.Encoder base64 = Base64.getEncoder();
    System.out.println(base64.encodeToString(keyConverter.fromConnectData(topic, keySchema, key)));
    System.out.println(base64.encodeToString(valueConverter.fromConnectData(topic, valueSchema, row)));
  }
}
