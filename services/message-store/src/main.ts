/** message-store composition root: the only file that reads process.env. */
import { createLifecycle, createLogger, loadConfigOrExit, logReady, redactConfig } from '@hubbub/runtime';
import { schema } from './config';
import { SERVICE_NAME, start } from './server';

async function main(): Promise<void> {
  const cfg = loadConfigOrExit(schema, process.env, { strictPrefix: 'MESSAGE_STORE_' });
  const log = createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  log.info({ config: redactConfig(schema, cfg) }, 'starting');
  const lc = createLifecycle(log);
  lc.installSignalHandlers();
  const srv = await start(cfg, { log });
  lc.onShutdown(SERVICE_NAME, () => srv.close());
  logReady(log, { port: srv.port, metricsPort: srv.metricsPort, worker: srv.ids.workerId });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `message-store failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
