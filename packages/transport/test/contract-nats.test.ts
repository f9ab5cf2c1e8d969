import { type NatsServer, startNatsServer } from '@synod/testkit';
import { connectNats } from '../src/index.js';
import { transportContract } from './contract.js';

transportContract('NATS (real nats-server)', async () => {
  const server: NatsServer = await startNatsServer();
  return {
    connect: (nodeId) => connectNats({ servers: server.url, name: `contract-${nodeId}` }),
    teardown: () => server.stop(),
  };
});
