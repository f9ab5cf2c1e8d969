// Shared vitest settings. Sibling packages resolve to their TypeScript sources
// (the "@synod/source" export condition), so a test never runs against a stale dist/.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@synod/source'] },
  ssr: { resolve: { conditions: ['@synod/source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: '.vitest-reports/report.json' }]],
  },
});
