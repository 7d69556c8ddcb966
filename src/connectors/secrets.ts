/**
 * Last line of defence for credentials: text that leaves a connector (an error, a response body
 * that a server echoed back) has every secret of that connector replaced by `***`.
 */
export function scrubber(secrets: readonly (string | undefined)[]): (text: string) => string {
  const list = secrets.filter((s): s is string => !!s).sort((a, b) => b.length - a.length);
  const variants = [...new Set(list.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]))];
  return (text) => variants.reduce((t, v) => t.split(v).join('***'), text);
}

export const MASK = '***';
