/** identity composition root: the only place that reads process.env. */
import { createLifecycle, createLogger, loadConfigOrExit, logReady, redactConfig } from '@hubbub/runtime';
import { identitySchema } from './config';
import { SERVICE_NAME, start } from './server';

async function main(): Promise<void> {
  const cfg = loadConfigOrExit(identitySchema, process.env, { strictPrefix: 'IDENTITY_' });
  const log = createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  log.info({ config: redactConfig(identitySchema, cfg) }, 'starting');
  const lifecycle = createLifecycle(log);
  lifecycle.installSignalHandlers();
  const s = await start(cfg, { log, lifecycle });
  logReady(log, { port: s.port, metricsPort: s.metricsPort });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `identity failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
