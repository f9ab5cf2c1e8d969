// Sums the vitest JSON reports of every workspace into one closing line that any CI can read:
//   tests: N passed, N failed, N skipped
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'bench', 'test'];
const reports = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  const candidates =
    root === 'packages' ? readdirSync(root).map((name) => join(root, name)) : [root];
  for (const dir of candidates) {
    const file = join(dir, '.vitest-reports', 'report.json');
    if (existsSync(file)) reports.push(JSON.parse(readFileSync(file, 'utf8')));
  }
}
const sum = (key) => reports.reduce((total, report) => total + (report[key] ?? 0), 0);
const passed = sum('numPassedTests');
const failed = sum('numFailedTests');
const skipped = sum('numPendingTests') + sum('numTodoTests');
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (reports.length === 0 || passed === 0 || failed > 0) process.exit(1);
