#!/usr/bin/env node
/**
 * Composition root (the only file that reads process.env): CLI + env → config (exit 2 listing
 * every problem) → logger → lifecycle → start → NATS service registration → "ready".
 */
import { registerNatsService } from '@hubbub/nats';
import { createLifecycle, createLogger, logReady, redactConfig } from '@hubbub/runtime';
import { USAGE, buildConfig, schema } from './config';
import { SERVICE, VERSION, start } from './server';

async function main(): Promise<void> {
  const r = buildConfig(process.env, process.argv.slice(2));
  if (r.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (r.usageProblems.length > 0) {
    process.stderr.write(`${USAGE.split('\n')[0]}\nirc-binary: error: ${r.usageProblems.join('; ')}\n`);
    process.exit(2);
  }
  if (!r.config) {
    process.stderr.write(`irc-binary: invalid configuration:\n  - ${r.problems.join('\n  - ')}\n`);
    process.exit(2);
  }
  const config = r.config;
  const log = createLogger({ service: SERVICE, level: config.logLevel });
  const lifecycle = createLifecycle(log);
  lifecycle.installSignalHandlers();

  const app = await start(config, { log });
  lifecycle.onShutdown(SERVICE, () => app.close());
  if (app.nc) {
    const svc = await registerNatsService(app.nc, {
      name: 'irc-binary',
      version: VERSION,
      description: 'dum-dum-irc protocol v2 door',
      metadata: { port: String(app.port), tls: String(app.tls), instance: config.instanceId },
    });
    lifecycle.onShutdown('nats-service', () => svc.stop().then(() => undefined));
  }
  logReady(log, {
    host: config.host || '*',
    port: app.port,
    tls: app.tls,
    opsPort: app.opsPort,
    config: { ...redactConfig(schema, config as never), channels: config.channels },
  });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `irc-binary: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
