import './abortedFilter.ts';
import { AssignerProtocol, type Assigner, type PartitionAssigner } from 'kafkajs';

/**
 * Assigns partition numbers, not topic-partitions: a member that gets
 * partition 3 gets partition 3 of every subscribed topic. The round topics
 * are co-partitioned by round id, so this keeps a round's request, answers,
 * outcomes and state on one coordinator. (kafkajs's round-robin assigner
 * spreads each topic independently.)
 */
export const coPartitionedAssigner: PartitionAssigner = ({ cluster }): Assigner => ({
  name: 'MabeamCoPartitioned',
  version: 0,
  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const counts = topics.map((topic) => cluster.findTopicPartitionMetadata(topic).length);
    const partitions = Math.max(0, ...counts);
    const assignment: Record<string, Record<string, number[]>> = Object.fromEntries(memberIds.map((id) => [id, {}]));
    for (let p = 0; p < partitions; p++) {
      const owner = memberIds[p % memberIds.length]!;
      for (const [i, topic] of topics.entries()) {
        if (p < counts[i]!) (assignment[owner]![topic] ??= []).push(p);
      }
    }
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: assignment[memberId]!, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'MabeamCoPartitioned', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
