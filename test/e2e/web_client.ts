// A Connect / gRPC-Web client for tests, generic over every served method: requests and answers
// in the protos' JSON form (lowerCamelCase names, int64 as strings), as curl and the page use.
import {
  fromJson, toJson, type DescMethod, type DescMethodServerStreaming, type DescMethodUnary,
  type JsonObject, type JsonValue,
} from '@bufbuild/protobuf';
import { ConnectError, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { load_definitions } from '../../src/grpc/proto.js';
import { web_registry } from '../../src/grpc/web_descriptors.js';

export const registry = web_registry(load_definitions().definition);

export type Protocol = 'connect-json' | 'connect-binary' | 'grpc-web';

export function transport(port: number, protocol: Protocol): Transport {
  const baseUrl = `http://127.0.0.1:${port}`;
  if (protocol === 'grpc-web') return createGrpcWebTransport({ baseUrl, httpVersion: '1.1' });
  return createConnectTransport({
    baseUrl, httpVersion: '1.1', useBinaryFormat: protocol === 'connect-binary',
  });
}

export function method_of(path: string): DescMethod {
  const [service, name] = path.split('/');
  const method = registry.getService(service!)?.methods.find((m) => m.name === name);
  if (method === undefined) throw new Error(`no method ${path}`);
  return method;
}

function headers(bearer: string | undefined, extra: Record<string, string>): Headers {
  const h = new Headers(extra);
  if (bearer !== undefined) h.set('authorization', `Bearer ${bearer}`);
  return h;
}

/** Calls `path` ("pkg.Service/Method"); resolves with the answer as JSON. */
export async function web_call(
  t: Transport, path: string, request: JsonObject, bearer?: string,
  extra: Record<string, string> = {},
): Promise<JsonObject> {
  const method = method_of(path) as DescMethodUnary;
  if (method.methodKind !== 'unary') throw new Error(`${path} is not unary`);
  const input = fromJson(method.input, request);
  const answer = await t.unary(method, undefined, 10_000, headers(bearer, extra), input, undefined);
  return toJson(method.output, answer.message, { alwaysEmitImplicit: true }) as JsonObject;
}

/** The Connect code (gRPC's number) of a call expected to fail. */
export async function web_code_of(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, details: e.rawMessage };
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** Opens a server stream; `on` gets each message as JSON. Abort `signal` to leave. */
export async function web_stream(
  t: Transport, path: string, request: JsonObject, bearer: string | undefined,
  on: (message: JsonValue) => void, signal: AbortSignal,
): Promise<void> {
  const method = method_of(path) as DescMethodServerStreaming;
  if (method.methodKind !== 'server_streaming') throw new Error(`${path} is not a server stream`);
  const input = fromJson(method.input, request);
  async function* one() {
    yield input;
  }
  const answer = await t.stream(method, signal, undefined, headers(bearer, {}), one(), undefined);
  for await (const message of answer.message) on(toJson(method.output, message));
}

/** The web listener's port from the node's "serving" line. */
export function web_port_of(log: readonly string[]): number {
  for (const line of log) {
    if (!line.includes('"serving"')) continue;
    const entry = JSON.parse(line) as { web?: string };
    if (entry.web !== undefined) return Number(entry.web.split(':').pop());
  }
  throw new Error(`no web address in the serving line:\n${log.join('\n')}`);
}
