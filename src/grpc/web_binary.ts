// A binary request over the web edge (Connect application/proto, Connect streaming, gRPC-Web,
// gRPC) is decoded by the gRPC edge's own request deserializer, strict check first
// (strict_service.ts), from the very bytes the client sent: so the same bytes get the same answer
// as over the gRPC port — INVALID_ARGUMENT "<Method>: malformed request: <type> field N at byte
// K: <reason>", ticketing_requests_malformed_total counted once — and a valid request reaches
// the handler as the same object.
//
// Why before Connect: Connect decodes with protobuf-es before any of our code runs and answers a
// failure with its code for it, internal "parse binary: …" (connect's serialization.ts, no
// hook: `binaryOptions` only toggles unknown fields). So each Connect universal handler is
// wrapped: the body is read (bounded as Connect bounds it), its one message taken out of its
// envelope and decompressed as Connect would, and handed to the deserializer; the outcome goes
// to the handler in the context (raw_request_key) and Connect gets an empty message in its
// place, which it always parses. Anything this does not understand (an over-long body, not one
// envelope, an unknown encoding) goes to Connect untouched, which answers it as before.
import type { Compression, UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';
import { createContextKey } from '@connectrpc/connect';
import { assert } from '../util/assert.js';
import { MalformedRequest } from './strict_service.js';

/** What the deserializer made of a binary request's bytes; undefined: not read here (JSON). */
export type RawRequest = { decoded: unknown } | { refused: string };
export const raw_request_key = createContextKey<RawRequest | undefined>(undefined);

/** The gRPC edge's request deserializer of one method (strict check first). */
export type Deserialize = (bytes: Buffer) => unknown;

/** An envelope's header: a flags byte, then the message's length (uint32, big-endian). */
const envelope_header_bytes = 5;
const envelope_flag_compressed = 0x01;

interface Framing {
  /** Unary Connect: the body is the message. Otherwise one envelope holds it. */
  enveloped: boolean;
  /** The header naming the message's compression. */
  encoding_header: string;
}

/** The binary content types Connect's protocols serve (their content-type.ts), by framing.
 *  grpc-web-text (base64) and JSON are left to Connect. */
function framing_of(content_type: string | null): Framing | undefined {
  const type = (content_type ?? '').trim().toLowerCase();
  if (type === 'application/proto') return { enveloped: false, encoding_header: 'content-encoding' };
  if (type === 'application/connect+proto') {
    return { enveloped: true, encoding_header: 'connect-content-encoding' };
  }
  if (/^application\/grpc(-web)?(\+proto)?$/.test(type)) {
    return { enveloped: true, encoding_header: 'grpc-encoding' };
  }
  return undefined;
}

/** `handler` with its binary requests decoded by `deserialize` first (see the top). */
export function with_raw_decode(
  handler: UniversalHandler, deserialize: Deserialize, compressions: readonly Compression[],
  read_bytes_max: number,
): UniversalHandler {
  assert(read_bytes_max > 0, 'a positive read limit');
  const wrapped = async (req: UniversalServerRequest) => {
    const framing = framing_of(req.header.get('content-type'));
    const body = req.body;
    if (framing === undefined || req.method !== 'POST' || !is_byte_stream(body)) return handler(req);
    const limit = read_bytes_max + (framing.enveloped ? envelope_header_bytes : 0);
    const read = await read_bounded(body, limit);
    if (read.rest !== undefined) return handler({ ...req, body: replay(read.chunks, read.rest) });
    const bytes = Buffer.concat(read.chunks);
    const compression = compression_of(req.header.get(framing.encoding_header), compressions);
    if (compression === undefined) return handler({ ...req, body: replay([bytes], undefined) });
    const message = await message_of(bytes, framing, compression, read_bytes_max);
    if (message === undefined) return handler({ ...req, body: replay([bytes], undefined) });
    let decoded: unknown;
    try {
      decoded = deserialize(message);
    } catch {
      // Past the strict check proto-loader does not throw; if it did, Connect answers.
      return handler({ ...req, body: replay([bytes], undefined) });
    }
    const values = req.contextValues;
    assert(values !== undefined, 'the adapter gives every request its context values');
    values.set(raw_request_key, decoded instanceof MalformedRequest
      ? { refused: decoded.details } : { decoded });
    const empty = await empty_body(framing, compression);
    const header = new Headers(req.header);
    if (header.has('content-length')) header.set('content-length', String(empty.byteLength));
    return handler({ ...req, header, body: replay([empty], undefined) });
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames, service: handler.service, method: handler.method,
    requestPath: handler.requestPath, allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

function is_byte_stream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body;
}

/** The chunks up to `limit` bytes; `rest` set when the body goes on past it. */
async function read_bounded(
  body: AsyncIterable<Uint8Array>, limit: number,
): Promise<{ chunks: Uint8Array[]; rest: AsyncIterator<Uint8Array> | undefined }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done === true) return { chunks, rest: undefined };
    chunks.push(next.value);
    total += next.value.byteLength;
    if (total > limit) return { chunks, rest: it };
  }
}

async function* replay(
  chunks: readonly Uint8Array[], rest: AsyncIterator<Uint8Array> | undefined,
): AsyncGenerator<Uint8Array> {
  yield* chunks;
  if (rest === undefined) return;
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
}

/** null: identity. undefined: an encoding not served (Connect answers it unimplemented). */
function compression_of(
  name: string | null, compressions: readonly Compression[],
): Compression | null | undefined {
  if (name === null || name === '' || name === 'identity') return null;
  return compressions.find((c) => c.name === name);
}

/** The request message's bytes, as Connect would take them out; undefined: left to Connect. */
async function message_of(
  bytes: Buffer, framing: Framing, compression: Compression | null, read_bytes_max: number,
): Promise<Buffer | undefined> {
  let message = bytes;
  let compressed = compression !== null;
  if (framing.enveloped) {
    if (bytes.byteLength < envelope_header_bytes) return undefined;
    const flags = bytes.readUInt8(0);
    const length = bytes.readUInt32BE(1);
    // One request message, whole: anything else (a second envelope, a trailer flag) is
    // Connect's to refuse.
    if ((flags & ~envelope_flag_compressed) !== 0) return undefined;
    if (length !== bytes.byteLength - envelope_header_bytes) return undefined;
    message = bytes.subarray(envelope_header_bytes);
    compressed = (flags & envelope_flag_compressed) !== 0;
    if (compressed && compression === null) return undefined;
  }
  if (!compressed || compression === null) return message;
  try {
    return Buffer.from(await compression.decompress(message, read_bytes_max));
  } catch {
    return undefined; // corrupt or too large: Connect answers it as before
  }
}

/** An empty message (every message type parses it) in the request's framing. */
async function empty_body(framing: Framing, compression: Compression | null): Promise<Uint8Array> {
  if (framing.enveloped) return new Uint8Array(envelope_header_bytes);
  // Compressed as the header says, so Connect's negotiation of the response is unchanged.
  return compression === null ? new Uint8Array(0) : compression.compress(new Uint8Array(0));
}
