// Which etcd member leads, from the maintenance Status RPC each member answers (what
// `etcdctl endpoint status` shows): the benchmark's etcd client talks to the leader alone,
// as a tuned deployment would, so no put or read pays a follower's forward.
import { waitFor } from '@synod/testkit';
import { Etcd3 } from 'etcd3';

export async function etcdLeader(endpoints: readonly string[]): Promise<string> {
  let leader: string | undefined;
  await waitFor('an etcd leader', async () => {
    leader = undefined;
    for (const endpoint of endpoints) {
      const client = new Etcd3({ hosts: endpoint });
      try {
        const status = await client.maintenance.status();
        // A member leads when the leader it names is itself.
        if (status.leader !== '0' && status.leader === status.header.member_id) leader = endpoint;
      } finally {
        client.close();
      }
    }
    return leader !== undefined;
  });
  return leader!;
}
