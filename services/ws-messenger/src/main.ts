/** ws-messenger composition root: the only file that reads process.env. */
import { registerNatsService } from '@hubbub/nats';
import { createLifecycle, createLogger, loadConfigOrExit, logReady, redactConfig } from '@hubbub/runtime';
import { cliOverrides, configSchema, loadOptions } from './config';
import { SERVICE_NAME, start } from './server';

async function main(): Promise<void> {
  const cli = cliOverrides(process.argv.slice(2));
  if (cli.problems.length > 0) {
    process.stderr.write(`invalid arguments:\n  - ${cli.problems.join('\n  - ')}\n`);
    process.exit(2);
  }
  const cfg = loadConfigOrExit(configSchema, { ...process.env, ...cli.env }, loadOptions);
  const log = createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  log.info({ config: redactConfig(configSchema, cfg) }, 'starting');
  const lifecycle = createLifecycle(log);
  lifecycle.installSignalHandlers();
  const server = await start(cfg, { log });
  lifecycle.onShutdown('ws-messenger', () => server.close());
  const svc = await registerNatsService(server.nc, {
    name: SERVICE_NAME,
    version: '0.1.0',
    description: 'Morelia MTP 1.0 rev 17 over WebSocket, and the browser chat client',
    metadata: { port: String(server.port), instance: server.instanceId },
  });
  // Stops before the NATS connection drains (hooks run last-registered first).
  lifecycle.onShutdown('nats-service', () => svc.stop().then(() => undefined));
  logReady(log, { port: server.port, host: server.host });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ws-messenger failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
