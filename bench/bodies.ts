/**
 * The response bodies of the HTTP benchmark's routes: a small JSON object, and a JSON body of
 * about 48 KB (a page of catalogue items), both built deterministically so the server and the
 * checker agree on them.
 */

export const SMALL_BODY = { from: 'EUR', to: 'USD', rate: 1.0842, at: '2026-11-25T00:00:00.000Z' };

/** Target size of the large body's JSON text, in bytes. */
export const LARGE_BYTES = 48 * 1024;

function largeBody(): { page: number; total: number; items: object[] } {
  const body = { page: 1, total: 0, items: [] as object[] };
  for (let i = 0; JSON.stringify(body).length < LARGE_BYTES; i++) {
    body.items.push({
      id: i,
      sku: `SKU-${String(100_000 + i * 7919).padStart(8, '0')}`,
      name: `Catalogue item ${i}`,
      price: Math.round(((i * 37) % 10_000) + 99) / 100,
      currency: 'EUR',
      inStock: i % 3 !== 0,
      tags: ['bench', `group-${i % 12}`, i % 2 ? 'odd' : 'even'],
      updatedAt: new Date(Date.UTC(2026, 10, 25, 0, 0, i)).toISOString(),
    });
    body.total = body.items.length;
  }
  return body;
}

export const LARGE_BODY = largeBody();
