#!/usr/bin/env node
// The `synod` command. This launcher is committed so that npm can link it at install time,
// before dist/ exists; `npm ci` then builds (the root prepare script) and this loads the build.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(
    'synod is not built yet: run `npm run build` (npm ci does it) in the synod checkout',
  );
  process.exit(1);
}
await import(main.href);
