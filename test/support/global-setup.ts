import { postgresAvailable, SERVER_URL } from './postgres-probe';
import { probeBrokers } from './brokers';
import { createPgliteTemplate, TEMPLATE_ENV } from './pglite-template';

/**
 * Probes PostgreSQL once per run; workers read REGENT_TEST_POSTGRES to run or skip those suites.
 * Makes the empty PGlite cluster that embedded test databases start from (see pglite-template.ts).
 */
export default async function globalSetup(): Promise<void> {
  process.env[TEMPLATE_ENV] = createPgliteTemplate();
  const ok = await postgresAvailable();
  process.env.REGENT_TEST_POSTGRES = ok ? '1' : '0';
  const brokers = await probeBrokers();
  process.env.REGENT_TEST_BROKERS = brokers;
  const missing = ['mqtt', 'nats', 'amqp'].filter((b) => !brokers.split(',').includes(b));
  if (missing.length) process.stderr.write(`\nSignal-source broker tests SKIPPED for ${missing.join(', ')}: no broker answers (Mosquitto 1883, nats-server JetStream 4222, RabbitMQ 5672)\n`);
  process.stderr.write(
    ok
      ? `\nPostgreSQL tests: running against ${SERVER_URL.replace(/\/\/[^@]*@/, '//')} (a database per suite, dropped after)\n`
      : '\nPostgreSQL tests: SKIPPED — no server answers (set TEST_DATABASE_URL or run one on 127.0.0.1:5432); they are reported as skipped\n',
  );
}
