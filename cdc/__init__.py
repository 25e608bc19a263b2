"""Change data capture: Kafka Connect connector files run in the Debezium embedded engine, and
scheduled extraction for databases without log-based CDC."""
