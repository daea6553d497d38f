// protobufjs 7.6.6 (the newest 7.x, which grpc-js's proto-loader uses) misreads a 32-bit varint
// longer than 5 bytes: after the 5th byte it skips exactly 5 more instead of reading to the
// byte without a continuation bit (protobufjs#1948, fixed upstream in #2198, not released in
// 7.x). A valid 6..9-byte encoding of an int32 field (a lawful, if odd, encoder's output) then
// either fails the whole request with INTERNAL "Error deserializing request" or, worse, shifts
// the reader so the next fields are misread and a different request is answered. This replaces
// Reader#uint32 with one that follows the spec: read to the last byte (at most 10), keep the low
// 32 bits. Remove when the project moves to a protobufjs release with the fix.
import protobuf from 'protobufjs';

/** Varint bytes at most (a 64-bit value); longer is malformed. */
const varint_bytes_max = 10;

interface RawReader { buf: Uint8Array; pos: number; len: number }

function out_of_range(reader: RawReader): RangeError {
  return new RangeError(`index out of range: ${reader.pos} + 1 > ${reader.len}`);
}

export function read_uint32(this: RawReader): number {
  let value = 0;
  for (let i = 0; i < varint_bytes_max; i++) {
    if (this.pos >= this.len) throw out_of_range(this);
    const byte = this.buf[this.pos++]!;
    // Bits beyond the 32nd are dropped, as the spec says a 32-bit field reads a longer varint.
    if (i < 4) value = (value | ((byte & 127) << (i * 7))) >>> 0;
    else if (i === 4) value = (value | ((byte & 15) << 28)) >>> 0;
    if (byte < 128) return value;
  }
  throw new Error('invalid varint encoding: more than 10 bytes');
}

let installed = false;

export function install_varint_fix(): void {
  if (installed) return;
  installed = true;
  (protobuf.Reader.prototype as unknown as { uint32: typeof read_uint32 }).uint32 = read_uint32;
}

install_varint_fix();
