import { MemoryNetwork } from '../src/index.js';
import { transportContract } from './contract.js';

transportContract('in-memory', async () => {
  const network = new MemoryNetwork({ seed: 7 });
  return {
    connect: async (nodeId) => network.connect(nodeId),
    teardown: async () => undefined,
  };
});
