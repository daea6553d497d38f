// The cluster's partition assigner (kafkajs partitionAssigners is pluggable; its only built-in,
// RoundRobin, moves partitions that need not move). Balanced: every member gets floor(P/M) or
// one more. Sticky where it can be: a partition stays with the member that had it if that
// member is still in the group and not over its share, so a join or leave moves only what it
// must. Each member's metadata userData carries its node id, its advertise address and what it
// had, so every node reads the owners map from the group (describeGroups) after a join.
import { AssignerProtocol, type Assigner, type GroupMember, type PartitionAssigner } from 'kafkajs';
import { assert } from '../util/assert.js';

export const assigner_name = 'TicketingStickyAssigner';
const assigner_version = 1;

export interface MemberInfo {
  node_id: string;
  advertise: string;
  /** Partitions this member was assigned in the last generation it saw. */
  previous: number[];
}

export function encode_member_info(info: MemberInfo): Buffer {
  return Buffer.from(JSON.stringify(info));
}

/** undefined for userData that is not ours (a foreign member in the group). */
export function decode_member_info(user_data: Buffer | null | undefined): MemberInfo | undefined {
  if (user_data === null || user_data === undefined || user_data.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(user_data.toString());
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { node_id, advertise, previous } = value as Record<string, unknown>;
  if (typeof node_id !== 'string' || typeof advertise !== 'string' || !Array.isArray(previous)) return undefined;
  const parts = previous.filter((p): p is number => Number.isInteger(p));
  return { node_id, advertise, previous: parts };
}

export interface Claimant { member_id: string; previous: number[] }

/** member id → its partitions (ascending). Deterministic: members are taken in id order. */
export function assign_balanced_sticky(partition_count: number, members: Claimant[]): Map<string, number[]> {
  assert(Number.isInteger(partition_count) && partition_count >= 1, 'at least one partition');
  const sorted = [...members].sort((a, b) => (a.member_id < b.member_id ? -1 : a.member_id > b.member_id ? 1 : 0));
  const out = new Map<string, number[]>(sorted.map((m) => [m.member_id, []]));
  if (sorted.length === 0) return out;
  const base = Math.floor(partition_count / sorted.length);
  let extra = partition_count % sorted.length;
  const taken = new Set<number>();
  const claim = (m: Claimant, limit: number): void => {
    const mine = out.get(m.member_id) ?? [];
    for (const p of m.previous) {
      if (mine.length >= limit) break;
      if (Number.isInteger(p) && p >= 0 && p < partition_count && !taken.has(p)) {
        taken.add(p);
        mine.push(p);
      }
    }
  };
  for (const m of sorted) claim(m, base); // kept, up to the share
  for (const m of sorted) {
    if (extra === 0) break;
    const before = out.get(m.member_id)?.length ?? 0;
    if (before === base) claim(m, base + 1); // one more kept, while extra slots remain
    if ((out.get(m.member_id)?.length ?? 0) > before) extra--;
  }
  fill_free(partition_count, sorted, out, taken, base, extra);
  for (const parts of out.values()) parts.sort((a, b) => a - b);
  return out;
}

function fill_free(
  partition_count: number, sorted: Claimant[], out: Map<string, number[]>, taken: Set<number>,
  base: number, extra: number,
): void {
  const free: number[] = [];
  for (let p = 0; p < partition_count; p++) if (!taken.has(p)) free.push(p);
  for (const m of sorted) {
    const mine = out.get(m.member_id) ?? [];
    while (mine.length < base && free.length > 0) mine.push(free.shift() ?? -1);
  }
  for (const m of sorted) {
    if (extra === 0 || free.length === 0) break;
    const mine = out.get(m.member_id) ?? [];
    if (mine.length === base) {
      mine.push(free.shift() ?? -1);
      extra--;
    }
  }
  assert(free.length === 0, 'every partition assigned');
}

/** The kafkajs assigner: `info()` is this member's metadata at each join (what it had). */
export function sticky_assigner(topic: string, partition_count: number, info: () => MemberInfo): PartitionAssigner {
  return ({ cluster }): Assigner => ({
    name: assigner_name,
    version: assigner_version,
    async assign({ members, topics }) {
      assert(topics.length === 1 && topics[0] === topic, `the group subscribes ${topic} only`);
      const known = cluster.findTopicPartitionMetadata(topic).length;
      assert(known === partition_count, `${topic} has ${known} partitions, expected ${partition_count}`);
      const claimants = members.map((m: GroupMember) => ({ member_id: m.memberId, previous: previous_of(m) }));
      const plan = assign_balanced_sticky(partition_count, claimants);
      return [...plan].map(([memberId, parts]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: assigner_version, assignment: { [topic]: parts }, userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: assigner_name,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: assigner_version, topics, userData: encode_member_info(info()),
        }),
      };
    },
  });
}

function previous_of(member: GroupMember): number[] {
  const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
  return decode_member_info(metadata?.userData)?.previous ?? [];
}
