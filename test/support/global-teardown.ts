import { removePgliteTemplate, TEMPLATE_ENV } from './pglite-template';

/** Removes the PGlite template global-setup made. */
export default async function globalTeardown(): Promise<void> {
  removePgliteTemplate(process.env[TEMPLATE_ENV]);
  delete process.env[TEMPLATE_ENV];
}
