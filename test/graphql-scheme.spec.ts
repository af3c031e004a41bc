import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Context, GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A resolver keyed by the host as a route keys it: an application serving HTTPS itself and one
 * on plain HTTP, on one table, do not share results that render the scheme; two HTTPS ones do.
 */

const tlsDir = new URL('./fixtures/tls/', import.meta.url);
const tls = {
  key: readFileSync(new URL('key.pem', tlsDir)),
  cert: readFileSync(new URL('cert.pem', tlsDir)),
};

let runs = 0;

@Resolver()
class SelfLinkResolver {
  @Query(() => String)
  @DynamoCached(60)
  selfLink(@Context() ctx: { req: { protocol: string; headers: { host?: string } } }): string {
    runs++;
    return `${ctx.req.protocol}://${ctx.req.headers.host}/graphql`;
  }
}

describe('GraphQL resolver key and the scheme of the connection (applications on one table)', () => {
  const fx = useTestDynamo();

  async function boot(table: string, secure: boolean): Promise<() => Promise<string>> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers: [SelfLinkResolver],
    }).compile();
    const app = moduleRef.createNestApplication({
      logger: false,
      ...(secure ? { httpsOptions: tls } : {}),
    });
    await app.listen(0, '127.0.0.1');
    fx.apps.push(app);
    const port = (app.getHttpServer().address() as AddressInfo).port;
    return () =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ query: '{ selfLink }' });
        const req = (secure ? httpsRequest : httpRequest)(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/graphql',
            headers: { host: 'api.example', 'content-type': 'application/json' },
            rejectUnauthorized: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const parsed = JSON.parse(Buffer.concat(chunks).toString()) as {
                data: { selfLink: string };
              };
              settleAll(fx.apps).then(() => resolve(parsed.data.selfLink), reject);
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
  }

  it('an HTTPS client never gets the result computed for HTTP; HTTPS applications share theirs', async () => {
    runs = 0;
    const table = await fx.dynamo.table();
    const plain = await boot(table, false);
    const secureA = await boot(table, true);
    const secureB = await boot(table, true);
    expect(await plain()).toBe('http://api.example/graphql');
    expect(await secureA()).toBe('https://api.example/graphql');
    expect(await secureB()).toBe('https://api.example/graphql');
    expect(await plain()).toBe('http://api.example/graphql');
    expect(runs).toBe(2);
  });
});
