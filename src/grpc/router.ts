// Routes a request to the partition that owns its key: event id by hash, issued ids by the
// partition they encode.
import { partition_of_id } from '../actors/ids.js';
import type { TicketingRequest } from '../actors/requests.js';
import { partition_of } from '../runtime/partition.js';
import type { WorkerPool } from '../runtime/pool.js';

export class Router {
  constructor(private readonly pool: WorkerPool, readonly partition_count: number) {}

  by_event(event_id: string, request: TicketingRequest): Promise<unknown> {
    return this.pool.request(partition_of(event_id, this.partition_count), request);
  }

  by_partition(partition: number, request: TicketingRequest): Promise<unknown> {
    return this.pool.request(partition, request);
  }

  by_id(kind: string, id: string, field: string, request: TicketingRequest): Promise<unknown> {
    return this.pool.request(partition_of_id(kind, id, this.partition_count, field), request);
  }
}
