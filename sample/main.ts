import { createSampleApp } from './app.js';

const app = await createSampleApp();
const port = Number(process.env.PORT ?? 3000);
await app.listen(port, '127.0.0.1');
const base = `http://127.0.0.1:${port}`;
console.log(
  `\nSample ready. A slow service method, cached (the first call takes ~1.5 s, the next ones are cached):\n` +
    `  curl ${base}/rates/EUR/USD\n` +
    `A whole route response cached for 30 s (see the X-Cache header):\n` +
    `  curl -i "${base}/rates/quote/EUR/USD?amount=100"\n` +
    `Evict the pair and every quote (@DynamoCacheEvict), in every instance:\n` +
    `  curl -X POST ${base}/rates/EUR/USD/refresh\n` +
    `Simulate an upstream outage: past the ttl, cached pairs answer with their last value (grace):\n` +
    `  curl -X POST ${base}/rates/upstream/down   (and .../upstream/up)\n`,
);
