// The event file's optional `queue` key (docs/contracts.md "Waiting room"): `ticketing events
// import` creates the event, then configures its waiting room with it. It is not part of the
// event's definition (CreateEvent never sees it), so an event file without it means what it
// always did, and a repeat import is idempotent like ConfigureQueue itself.
import * as grpc from '@grpc/grpc-js';
import { service_of } from '../grpc/proto.js';

/** ConfigureQueueRequest as the wire takes it (int64 as decimal strings). */
export interface QueueWire {
  event_id: string;
  opens_at_unix: string;
  sale_starts_at_unix: string;
  admit_per_minute: unknown;
  admission_ttl_seconds: unknown;
  service_bypass: boolean;
}

/** The event file's keys of `queue`; any other key is refused (a typo would silently mean
 *  nothing). */
const queue_keys = new Set([
  'opens_at_unix', 'sale_starts_at_unix', 'admit_per_minute', 'admission_ttl_seconds',
  'service_bypass',
]);

/** Splits an event file object into the event (without `queue`) and its queue, if any. The
 *  values go to the node as given: the node refuses what is out of range, with its message. */
export function split_queue(event: unknown): { event: unknown; queue: QueueWire | undefined } {
  if (typeof event !== 'object' || event === null || !('queue' in event)) {
    return { event, queue: undefined };
  }
  const { queue, ...rest } = event as Record<string, unknown>;
  if (typeof queue !== 'object' || queue === null || Array.isArray(queue)) {
    throw new Error('queue must be an object {opens_at_unix, sale_starts_at_unix, '
      + 'admit_per_minute, admission_ttl_seconds, service_bypass?}');
  }
  const q = queue as Record<string, unknown>;
  const unknown_keys = Object.keys(q).filter((k) => !queue_keys.has(k));
  if (unknown_keys.length > 0) {
    throw new Error(`queue has unknown keys: ${unknown_keys.join(', ')}`);
  }
  const int = (v: unknown): string => (typeof v === 'number' ? String(v) : String(v ?? '0'));
  return {
    event: rest,
    queue: {
      event_id: String(rest['event_id'] ?? ''),
      opens_at_unix: int(q['opens_at_unix']),
      sale_starts_at_unix: int(q['sale_starts_at_unix']),
      admit_per_minute: q['admit_per_minute'] ?? 0,
      admission_ttl_seconds: q['admission_ttl_seconds'] ?? 0,
      service_bypass: q['service_bypass'] === true,
    },
  };
}

/** A generic client of QueueService (its methods by name). */
type QueueClient = InstanceType<grpc.ServiceClientConstructor>;

/** A QueueService client for the import's server. */
export function queue_client(
  grpc_object: grpc.GrpcObject, server: string, credentials: grpc.ChannelCredentials,
): QueueClient {
  const Client = grpc.makeGenericClientConstructor(
    service_of(grpc_object, 'ticketing.queue.v1.QueueService'), 'QueueService',
  );
  return new Client(server, credentials);
}

/** ConfigureQueue on `client`; resolves with its answer. */
export function configure_queue(
  client: QueueClient, queue: QueueWire, metadata: grpc.Metadata,
): Promise<{ created: boolean; seed_commitment: string }> {
  const call = client['ConfigureQueue'];
  if (call === undefined) throw new Error('QueueService has no ConfigureQueue');
  return new Promise((resolve, reject) => {
    call.call(client, queue, metadata, { deadline: Date.now() + 30_000 },
      (error: grpc.ServiceError | null, reply?: { created: boolean; seed_commitment: string }) => {
        if (error !== null || reply === undefined) reject(error);
        else resolve(reply);
      });
  });
}
