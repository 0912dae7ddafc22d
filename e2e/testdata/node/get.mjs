// GET a URL with the built-in fetch: node --require ./preload.cjs get.mjs URL OUTPREFIX
import { writeFileSync } from 'node:fs';

const [url, prefix] = process.argv.slice(2);
const res = await fetch(url, { signal: AbortSignal.timeout(20000) });
writeFileSync(`${prefix}.body`, Buffer.from(await res.arrayBuffer()));
writeFileSync(`${prefix}.status`, String(res.status));
