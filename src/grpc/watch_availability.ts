// ticketing.catalog.v1.CatalogService/WatchAvailability: a server stream of an event's
// availability (the whole picture, then the changes), fanned out by the node's WatchHub.
// Auth as GetAvailability: any valid token.
import type * as grpc from '@grpc/grpc-js';
import * as L from '../actors/limits.js';
import type { Metrics } from '../ops/metrics.js';
import type { Router } from '../route/router.js';
import { assert } from '../util/assert.js';
import { id } from './convert.js';
import { service_of } from './proto.js';
import { server_stream } from './server_stream.js';
import type { EdgeDeps } from './unary.js';
import { WatchHub, type WatchConfig, type WatchSource } from './watch_hub.js';

const catalog_name = 'ticketing.catalog.v1.CatalogService';

export function watch_availability_rpc(
  deps: EdgeDeps, _router: Router, hub: WatchHub,
): grpc.handleServerStreamingCall<{ event_id: unknown }, Buffer> {
  type Req = { event_id: unknown };
  return server_stream(deps, 'CatalogService', 'WatchAvailability', (req: Req, _ctx, call) => {
    const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
    const handle = hub.subscribe(event_id, {
      write: (message) => call.write(message),
      end: (error) => call.end(error),
    });
    call.on_drain(() => handle.drained());
    call.on_cancel(() => handle.closed());
  });
}

/**
 * The node's hub. The hub encodes each update once and writes the same bytes to every stream,
 * so WatchAvailability's response serializer is made to pass bytes through (a message object
 * would be encoded per stream): call before the CatalogService is added to the server.
 */
export function new_watch_hub(
  grpc_object: grpc.GrpcObject, source: WatchSource, config: WatchConfig, metrics: Metrics,
): WatchHub {
  const method = service_of(grpc_object, catalog_name)['WatchAvailability'];
  assert(method !== undefined && method.responseStream, 'WatchAvailability is a server stream');
  const encode = method.responseSerialize.bind(method);
  method.responseSerialize = (value: unknown) => {
    assert(Buffer.isBuffer(value), 'WatchAvailability writes encoded updates only');
    return value;
  };
  return new WatchHub(source, config, metrics, (update) => encode(update));
}
