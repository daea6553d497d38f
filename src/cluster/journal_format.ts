// What the journal topic holds, message by message. Two kinds, told apart by the `kind` header:
// - a segment: one per transaction, its value packr.pack(Uint8Array[]), the `records` buffers of
//   the transaction's commits in order (commits without records leave no buffer, but the
//   segment is always written: a transaction must hold a journal record to be fenced at all);
// - a snapshot chunk: `chunk` i of `chunks` n, a slice of one JournalWire.snapshot, each sent
//   on its own (one kafkajs send is one record batch, and a batch must stay under the topic's
//   max.message.bytes), after the segment of the same transaction.
// The group's committed offset of journal partition p points at chunk 0 of the latest snapshot
// (written by the same transaction, so both or neither are visible).
import { packr } from '../runtime/codec.js';
import { assert } from '../util/assert.js';

/** One snapshot chunk's bytes: far below journal_message_bytes_max, so a chunk always fits. */
export const snapshot_chunk_bytes = 512 * 1024;
/** The journal topic's max.message.bytes (set at creation): a segment of one transaction must
 *  fit (the writer bounds a transaction's bytes well below it: writer.ts). */
export const journal_message_bytes_max = 16 * 1024 * 1024;
/** Chunks of one snapshot at most (a 2 GiB snapshot): a header claiming more is corrupt. */
export const snapshot_chunks_max = 4096;

export const kind_header = 'kind';
export type JournalKind = 'segment' | 'snapshot';

export interface JournalMessage {
  partition: number;
  value: Buffer;
  headers: Record<string, string>;
}

export function segment_message(partition: number, records: Uint8Array[]): JournalMessage {
  return { partition, value: packr.pack(records), headers: { [kind_header]: 'segment' } };
}

export function snapshot_messages(partition: number, snapshot: Uint8Array): JournalMessage[] {
  const chunks = Math.max(1, Math.ceil(snapshot.byteLength / snapshot_chunk_bytes));
  assert(chunks <= snapshot_chunks_max, `a snapshot of at most ${snapshot_chunks_max} chunks`);
  const out: JournalMessage[] = [];
  for (let i = 0; i < chunks; i++) {
    const slice = snapshot.subarray(i * snapshot_chunk_bytes, (i + 1) * snapshot_chunk_bytes);
    out.push({
      partition,
      value: Buffer.from(slice.buffer, slice.byteOffset, slice.byteLength),
      headers: { [kind_header]: 'snapshot', chunk: String(i), chunks: String(chunks) },
    });
  }
  return out;
}

/** A journal message as read back: its headers as strings, its value. */
export interface ReadMessage {
  offset: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** Rebuilds what a partition restores from, reading from the snapshot pointer to the end. A
 *  later snapshot (there should be none: the pointer names the latest) supersedes earlier
 *  segments, so the result is right either way. */
export class RestoreAssembler {
  private snapshot: Uint8Array | null = null;
  private segments: Uint8Array[] = [];
  private pending: Buffer[] = [];
  private pending_chunks = 0;

  constructor(private readonly partition: number) {}

  add(message: ReadMessage): void {
    const kind = message.headers[kind_header];
    if (kind === 'segment') {
      assert(this.pending.length === 0, `p${this.partition}@${message.offset}: segment inside a snapshot`);
      const records: unknown = packr.unpack(message.value);
      assert(Array.isArray(records), `p${this.partition}@${message.offset}: a segment is an array`);
      for (const r of records) {
        assert(r instanceof Uint8Array, `p${this.partition}@${message.offset}: records are bytes`);
        this.segments.push(r);
      }
      return;
    }
    assert(kind === 'snapshot', `p${this.partition}@${message.offset}: unknown kind ${String(kind)}`);
    this.add_chunk(message);
  }

  private add_chunk(message: ReadMessage): void {
    const chunk = Number(message.headers['chunk']);
    const chunks = Number(message.headers['chunks']);
    const where = `p${this.partition}@${message.offset}`;
    assert(Number.isInteger(chunks) && chunks >= 1 && chunks <= snapshot_chunks_max, `${where}: chunks`);
    assert(chunk === this.pending.length, `${where}: chunk ${chunk}, expected ${this.pending.length}`);
    if (chunk === 0) this.pending_chunks = chunks;
    assert(chunks === this.pending_chunks, `${where}: one chunk count per snapshot`);
    this.pending.push(message.value);
    if (this.pending.length === chunks) {
      this.snapshot = Buffer.concat(this.pending);
      this.segments = [];
      this.pending = [];
    }
  }

  /** The snapshot and the segments after it; a snapshot cut short is a corrupt journal. */
  result(): { snapshot: Uint8Array | null; segments: Uint8Array[] } {
    assert(this.pending.length === 0, `p${this.partition}: the journal ends inside a snapshot`);
    return { snapshot: this.snapshot, segments: this.segments };
  }
}

/** How many records a packr.pack(records[]) holds, read from the msgpack array header alone
 *  (the main thread never decodes records); unpacks only if the header is not an array's. */
export function packed_array_length(bytes: Uint8Array): number {
  const first = bytes[0];
  if (first === undefined) return 0;
  if (first >= 0x90 && first <= 0x9f) return first & 0x0f;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (first === 0xdc && bytes.byteLength >= 3) return view.getUint16(1);
  if (first === 0xdd && bytes.byteLength >= 5) return view.getUint32(1);
  const value: unknown = packr.unpack(bytes);
  return Array.isArray(value) ? value.length : 1;
}
