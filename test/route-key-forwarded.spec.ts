import { Controller, Get, Headers, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { hostOf } from '../lib/http/request-key.js';
import { scanTable, settleAll } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';
import { headersOf, raw } from './support/raw-http.js';

/*
 * Behind a proxy that speaks RFC 7239, every request carries `Forwarded`, with the original host
 * and scheme (`host=`, `proto=`), which an app may render, and the client's address (`for=`) and
 * the proxy's own (`by=`), which say nothing of the URI. Only the first two join the key: keyed by
 * the whole header, every client (and every node of the load balancer) had an entry of its own,
 * one DynamoDB write per client and URL.
 */

let runs = 0;

@Controller('page')
class PageController {
  @Get()
  @DynamoCached(60)
  page(@Headers('forwarded') forwarded?: string) {
    runs++;
    // What an app renders from the header: the original host and scheme.
    const host = /host=("[^"]*"|[^;,]*)/.exec(forwarded ?? '')?.[1] ?? null;
    const proto = /proto=("[^"]*"|[^;,]*)/.exec(forwarded ?? '')?.[1] ?? null;
    return { link: `${proto}://${host}/page`, n: runs };
  }
}

const adapters: [string, () => ExpressAdapter | FastifyAdapter][] = [
  ['express', () => new ExpressAdapter()],
  ['fastify', () => new FastifyAdapter()],
];

describe.each(adapters)(`Forwarded in the key on %s (${testServerKind()})`, (_name, adapter) => {
  const fx = useTestDynamo();

  async function boot(table: string): Promise<number> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [PageController],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    return (app.getHttpServer().address() as AddressInfo).port;
  }

  it('clients behind one load balancer share an entry, across instances; another host does not', async () => {
    runs = 0;
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const via = (client: string, node: string, host = 'shop.example') =>
      `for=${client};by=${node};host=${host};proto=https`;

    const first = await raw(a, '/page', { Forwarded: via('198.51.100.7', '10.0.0.1') });
    expect(headersOf(first.head)['x-cache']).toBe('MISS');
    await settleAll(fx.apps);

    // Other clients, through the other node of the balancer, on the other instance.
    for (let i = 1; i <= 20; i++) {
      const other = await raw(b, '/page', { Forwarded: via(`203.0.113.${i}`, '10.0.0.2') });
      expect(headersOf(other.head)['x-cache']).toBe('HIT');
      expect(JSON.parse(other.body.toString())).toEqual({
        link: 'https://shop.example/page',
        n: 1,
      });
    }
    // A proxy chain: each hop adds an element.
    const chained = await raw(a, '/page', {
      Forwarded: `${via('198.51.100.8', '10.0.0.1')}, for=10.0.0.1;by=10.0.1.1`,
    });
    // A route's entry is written once its response is sent: in DynamoDB after this.
    await settleAll(fx.apps);
    const chainedAgain = await raw(b, '/page', {
      Forwarded: `${via('198.51.100.9', '10.0.0.2')}, for=10.0.0.2;by=10.0.1.1`,
    });
    expect(JSON.parse(chainedAgain.body.toString())).toEqual(JSON.parse(chained.body.toString()));

    const otherHost = await raw(b, '/page', {
      Forwarded: via('203.0.113.1', '10.0.0.2', 'admin.example'),
    });
    expect(JSON.parse(otherHost.body.toString())).toEqual({
      link: 'https://admin.example/page',
      n: 3,
    });
    await settleAll(fx.apps);
    expect(runs).toBe(3);
    expect(await scanTable(fx.admin, table)).toHaveLength(3);
  });
});

describe('the host part of a key from Forwarded', () => {
  const key = (forwarded: string): string =>
    hostOf({ headers: { host: 'lb.internal', forwarded } });

  it('keeps host= and proto= as sent (quoted values included), drops for= and by=', () => {
    expect(key('for=1.2.3.4;host=Shop.Example;proto=https')).toBe(
      key('for="[2001:db8::1]:4711";by=10.0.0.9;host=shop.example;proto=https'),
    );
    expect(key('for=1.2.3.4;host=shop.example;proto=https')).not.toBe(
      key('for=1.2.3.4;host=shop.example;proto=http'),
    );
    // A quoted value holding separators is not the pairs it spells.
    const keys = [
      'host="a.example;proto=https"',
      'host=a.example;proto=https',
      'host="a.example,host=b.example"',
      'host=a.example,host=b.example',
      'host=a.example, for=x',
      'host=a.example',
      'for=x',
    ].map(key);
    expect(new Set(keys).size).toBe(keys.length);
    // A host= inside a quoted for= is part of that address.
    expect(key('for="x;host=a.example"')).toBe(key('for=x'));
  });

  it('a header of nothing but for= and by= keys as none; one it cannot read, as sent', () => {
    expect(key('for=1.2.3.4;by=10.0.0.1')).toBe(hostOf({ headers: { host: 'lb.internal' } }));
    expect(key('host="unterminated;for=1')).toBe('lb.internal\nforwarded=host="unterminated;for=1');
  });
});
