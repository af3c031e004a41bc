import { createSampleApp } from './app.js';

const app = await createSampleApp();
const port = Number(process.env.PORT ?? 3000);
await app.listen(port, '127.0.0.1');
const url = `http://127.0.0.1:${port}/rates/EUR/USD`;
console.log(
  `\nSample ready. Try it (the first call is slow, the next ones are cached):\n  curl ${url}\n`,
);
