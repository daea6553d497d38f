// Failure modes of the Kafka side: one class per mode, fixed names. None reaches a gRPC client:
// the emitter runs beside the request path and only counts, logs and retries.

export class KafkaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An outbox record whose type has no message in the event protos (it is parked, not sent). */
export class UnknownEventTypeError extends KafkaError {
  override readonly name = 'UnknownEventTypeError';
}

/** An outbox record whose payload does not fit its message (it is parked, not sent). */
export class InvalidEventPayloadError extends KafkaError {
  override readonly name = 'InvalidEventPayloadError';
}

/** A topic prefix that would make an invalid Kafka topic name (refused at start). */
export class InvalidTopicPrefixError extends KafkaError {
  override readonly name = 'InvalidTopicPrefixError';
}

/** A --kafka broker list that is not HOST:PORT[,HOST:PORT...] (refused at start). */
export class InvalidBrokerListError extends KafkaError {
  override readonly name = 'InvalidBrokerListError';
}
