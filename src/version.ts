import fs from 'node:fs';
import path from 'node:path';

/** Regent's version from package.json (found from src/ under ts-jest and from dist/src/ when built). */
function readVersion(): string {
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'regent' && pkg.version) return pkg.version;
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
