// The cluster's RequestSink, below the Router: a call for a partition served here goes to the
// local pool; one owned by another node is forwarded to it (one hop, under the caller's
// deadline and trace id); one whose owner is not known yet (a rebalance is moving it) is
// refused, retriable. The Router and everything above it are the single node's, unchanged.
import { randomBytes } from 'node:crypto';
import type { RequestSink } from '../runtime/client.js';
import { assert } from '../util/assert.js';
import { current_call_scope, enable_call_scopes } from './call_scope.js';
import { NotOwnerError, PartitionMovingError } from './forward_errors.js';

export interface Ownership {
  /** p is served here right now (owned by this node AND adopted by the pool). */
  local(p: number): boolean;
  /** The owner's advertise address if another node owns p; undefined while unknown/moving. */
  remote(p: number): string | undefined;
}

/** What ClusterSink needs of PeerClients (tests give a fake). */
export interface PeerCaller {
  call(addr: string, partition: number, body: unknown, deadline_ms_epoch: number,
    trace_id: string): Promise<unknown>;
}

export interface ForwardHooks {
  /** Once per forward, with the gRPC status name of its outcome ('OK' on success): the
   *  ticketing_cluster_forwarded_requests_total{code} counter. */
  on_forwarded(code: string): void;
  /** The gRPC status name a refusal is answered with (the glue's map_error; src/cluster does
   *  not know the edge's table). */
  code_of(error: unknown): string;
}

export interface ClusterSinkOptions {
  /** The deadline of a forward made outside any call scope (timers, background loops): the
   *  edge's deadline_ms_max default, so such a call waits no longer than a client's could. */
  deadline_ms_default: number;
}

export const cluster_sink_defaults: ClusterSinkOptions = { deadline_ms_default: 30_000 };

export class ClusterSink implements RequestSink<unknown> {
  private readonly options: ClusterSinkOptions;

  constructor(
    private readonly pool: RequestSink<unknown>,
    private readonly ownership: Ownership,
    private readonly peers: PeerCaller,
    private readonly hooks: ForwardHooks,
    options: Partial<ClusterSinkOptions> = {},
  ) {
    this.options = { ...cluster_sink_defaults, ...options };
    assert(this.options.deadline_ms_default > 0, 'deadline_ms_default is positive');
    // The edge's calls must carry their scope from now on: forwards read it.
    enable_call_scopes();
  }

  request(partition: number, body: unknown): Promise<unknown> {
    assert(Number.isInteger(partition) && partition >= 0, 'partition is an index');
    if (this.ownership.local(partition)) return this.pool.request(partition, body);
    const addr = this.ownership.remote(partition);
    if (addr === undefined) {
      return Promise.reject(new PartitionMovingError(`partition ${partition} is moving between `
        + 'nodes (no owner is serving it yet); not applied, retry shortly'));
    }
    return this.forward(addr, partition, body);
  }

  private async forward(addr: string, partition: number, body: unknown): Promise<unknown> {
    const scope = current_call_scope();
    const deadline_ms_epoch = scope?.deadline_ms_epoch
      ?? Date.now() + this.options.deadline_ms_default;
    const trace_id = scope?.trace_id ?? randomBytes(16).toString('hex');
    try {
      const value = await this.peers.call(addr, partition, body, deadline_ms_epoch, trace_id);
      this.hooks.on_forwarded('OK');
      return value;
    } catch (error) {
      this.hooks.on_forwarded(this.hooks.code_of(error));
      throw error;
    }
  }
}

/** The `serve` of a peer server: the local pool for a partition served here, NotOwnerError for
 *  any other. Never forwards (one hop): a call that reached the wrong node is refused. */
export function serve_local_only(
  pool: RequestSink<unknown>, ownership: Ownership, node_id: string,
): (partition: number, body: unknown) => Promise<unknown> {
  return (partition, body) => {
    if (ownership.local(partition)) return pool.request(partition, body);
    return Promise.reject(new NotOwnerError(`node ${node_id} does not serve partition `
      + `${partition} (it moved); not applied, retry shortly`));
  };
}
