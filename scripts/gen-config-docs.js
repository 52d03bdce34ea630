#!/usr/bin/env node
/*
 * Renders every service's config schema (src/config.ts, built to dist) into docs/operations.md
 * between `<!-- config:<svc>:start -->` and `<!-- config:<svc>:end -->` markers, so the documented
 * variables and defaults are the code's ("the default config is the docs"). `--check` fails when the
 * file is out of date. Run after `pnpm build`.
 */
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { configDocTable } = require(path.join(root, 'packages/runtime/dist/src/index.js'));
const SERVICES = ['identity', 'message-store', 'irc-binary', 'ws-messenger'];
const docPath = path.join(root, 'docs/operations.md');

function schemaOf(svc) {
  const mod = require(path.join(root, 'services', svc, 'dist/src/config.js'));
  for (const v of Object.values(mod)) {
    if (
      v &&
      typeof v === 'object' &&
      Object.values(v).every((f) => f && typeof f === 'object' && 'env' in f && 'doc' in f)
    )
      return v;
  }
  throw new Error(`no schema exported by services/${svc}/src/config.ts`);
}

async function main() {
  let doc = readFileSync(docPath, 'utf8');
  for (const svc of SERVICES) {
    const start = `<!-- config:${svc}:start -->`;
    const end = `<!-- config:${svc}:end -->`;
    const table = `${start}\n${configDocTable(schemaOf(svc))}\n${end}`;
    const i = doc.indexOf(start);
    const j = doc.indexOf(end);
    if (i < 0 || j < 0) throw new Error(`docs/operations.md lacks the markers ${start} … ${end}`);
    doc = doc.slice(0, i) + table + doc.slice(j + end.length);
  }
  // Format as the repository formats markdown, so `prettier --check` and this check agree.
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(docPath)) ?? {};
  doc = await prettier.format(doc, { ...options, filepath: docPath });
  if (process.argv.includes('--check')) {
    if (readFileSync(docPath, 'utf8') !== doc) {
      console.error('docs/operations.md config tables are out of date; run: node scripts/gen-config-docs.js');
      process.exit(1);
    }
  } else writeFileSync(docPath, doc);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
