// The owners map of one generation, read from the group itself after a GROUP_JOIN: kafkajs
// hands a member only its own partitions (and drops the assignment's userData), while the
// coordinator's DescribeGroups answers every member's metadata (node id, advertise: the
// assigner's userData) and assignment, in the Stable state only.
import { AssignerProtocol, type Admin } from 'kafkajs';
import { decode_member_info } from './assigner.js';

export interface OwnerInfo { node_id: string; advertise: string }

export type OwnersRead =
  | { kind: 'owners'; owners: Map<number, OwnerInfo> }
  /** The group is rebalancing again, or already in a later generation: a GROUP_JOIN follows. */
  | { kind: 'stale'; why: string };

export async function read_owners(
  admin: Admin, group_id: string, topic: string, member_id: string, mine: readonly number[],
): Promise<OwnersRead> {
  const { groups } = await admin.describeGroups([group_id]);
  const group = groups.find((g) => g.groupId === group_id);
  if (group === undefined) return { kind: 'stale', why: 'group not described' };
  if (group.state !== 'Stable') return { kind: 'stale', why: `group ${group.state}` };
  const owners = new Map<number, OwnerInfo>();
  let own: number[] | undefined;
  for (const member of group.members) {
    const info = decode_member_info(AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.userData);
    const parts = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment[topic] ?? [];
    if (member.memberId === member_id) own = [...parts].sort((a, b) => a - b);
    if (info === undefined) continue; // not one of ours: its partitions stay unknown
    for (const p of parts) owners.set(p, { node_id: info.node_id, advertise: info.advertise });
  }
  const want = [...mine].sort((a, b) => a - b);
  if (own === undefined || own.join(',') !== want.join(',')) {
    return { kind: 'stale', why: `the group assigns [${String(own)}], this join [${want.join(',')}]` };
  }
  return { kind: 'owners', owners };
}
