// The main thread's typed side of a behaviour's protocol: call(partition, kind, request) sends
// `{ k: kind, ...request }` to the partition and resolves with that kind's reply type. Generic
// over the protocol: which partition owns a request is the caller's business (src/route).
import { assert } from '../util/assert.js';
import type { Protocol, RequestFor } from './behaviour.js';

/** Where requests go: WorkerPool.request, or an in-process host in tests. */
export interface RequestSink<Req> {
  request(partition: number, body: Req): Promise<unknown>;
}

export class ProtocolClient<P extends Protocol<P>> {
  constructor(private readonly sink: RequestSink<RequestFor<P, keyof P>>) {}

  call<K extends keyof P & string>(
    partition: number, kind: K, request: P[K]['request'],
  ): Promise<P[K]['reply']> {
    assert(Number.isInteger(partition) && partition >= 0, 'partition is an index');
    const body: RequestFor<P, K> = { k: kind, ...request };
    // The one place a reply's type is restored: the worker answered with what the handler of
    // `kind` returned, which the handler table types as P[K]['reply'] (see Handlers); the
    // structured copy across the thread carries the value, not its type.
    return this.sink.request(partition, body) as Promise<P[K]['reply']>;
  }
}
