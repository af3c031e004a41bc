import 'reflect-metadata';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import {
  Controller,
  Injectable,
  Scope,
  type INestApplication,
  type LoggerService,
  type Provider,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  Args,
  Context,
  Info,
  Field,
  Float,
  GraphQLModule,
  Mutation,
  ObjectType,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { MessagePattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import request from 'supertest';
import {
  buildCacheKey,
  DynamoCached,
  DynamoCacheError,
  DynamoCacheInterceptor,
  DynamoCacheModule,
  DynamoCacheService,
  encodeKey,
} from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { countCalls, useTestDynamo, type CallCounter } from './support/dynamo-server.js';

/*
 * GraphQL resolvers (code-first @nestjs/graphql + Apollo on Express) cached through
 * DynamoCacheInterceptor, and the bootstrap warnings for handlers that are never cached. Two
 * applications on one table stand for two instances of a service: app B has its own client and
 * an empty L1, so what it serves without running the resolver comes from DynamoDB.
 */

const RATES: Record<string, number> = { 'USD-EUR': 0.92, 'USD-GBP': 0.79, 'EUR-JPY': 161.5 };

@ObjectType()
class Rate {
  @Field() id: string;
  @Field() from: string;
  @Field() to: string;
  @Field(() => Float) value: number;

  constructor(from: string, to: string) {
    this.id = `${from}-${to}`;
    this.from = from;
    this.to = to;
    this.value = RATES[this.id] ?? 1;
  }

  /** On the prototype only: resolves on a hit only if the value is a Rate again. */
  @Field(() => String)
  get label(): string {
    return `1 ${this.from} = ${this.value} ${this.to}`;
  }
}

@Resolver(() => Rate)
class RateResolver {
  runs = 0;

  @Query(() => Rate)
  @DynamoCached(60)
  rate(@Args('from') from: string, @Args('to') to: string): Rate {
    this.runs++;
    return new Rate(from, to);
  }
}

@Resolver(() => Rate)
class TokenRateResolver {
  runs = 0;

  @Query(() => Rate)
  @DynamoCached({ ttl: 60, vary: ['authorization'] })
  tokenRate(@Args('from') from: string, @Args('to') to: string): Rate {
    this.runs++;
    return new Rate(from, to);
  }
}

/** Reads the GraphQL context and the selection: still cached, keyed by the selection too. */
@Resolver(() => Rate)
class ContextRateResolver {
  runs = 0;

  @Query(() => Rate)
  @DynamoCached(60)
  contextRate(
    @Args('from') from: string,
    @Args('to') to: string,
    @Context() ctx: { req?: unknown },
    @Info() info: { fieldName?: string },
  ): Rate {
    this.runs++;
    expect(ctx.req).toBeDefined();
    expect(info.fieldName).toBe('contextRate');
    return new Rate(from, to);
  }
}

/** An uncached root query: each request makes a new parent object for the field resolvers. */
@Resolver(() => Rate)
class FreshRateResolver {
  runs = 0;

  @Query(() => Rate)
  freshRate(@Args('from') from: string, @Args('to') to: string): Rate {
    this.runs++;
    return new Rate(from, to);
  }
}

@Resolver(() => Rate)
class InverseResolver {
  runs = 0;

  @ResolveField(() => Float)
  @DynamoCached({ ttl: 60, key: (parent: Rate) => parent.id })
  inverse(@Parent() rate: Rate): number {
    this.runs++;
    return Math.round(10_000 / rate.value) / 10_000;
  }
}

@Resolver(() => Rate)
class KeylessInverseResolver {
  @ResolveField(() => Float)
  @DynamoCached()
  inverse(@Parent() rate: Rate): number {
    return 1 / rate.value;
  }
}

@Resolver(() => Rate)
class RateMutationResolver {
  runs = 0;

  @Mutation(() => Rate)
  @DynamoCached(60)
  setRate(@Args('from') from: string, @Args('to') to: string): Rate {
    this.runs++;
    return new Rate(from, to);
  }
}

// Outside GraphQL
@Injectable({ scope: Scope.REQUEST })
class PerRequestRates {
  runs = 0;

  @DynamoCached(60)
  async rate(from: string, to: string): Promise<number> {
    this.runs++;
    return Promise.resolve(new Rate(from, to).value);
  }
}

@WebSocketGateway()
class RatesGateway {
  runs = 0;

  @SubscribeMessage('rate')
  @DynamoCached(60)
  async onRate(body: { from: string; to: string }): Promise<number> {
    this.runs++;
    return Promise.resolve(new Rate(body.from, body.to).value);
  }
}

@Controller()
class RatesMessages {
  @MessagePattern('rate')
  @DynamoCached(60)
  async onRate(body: { from: string; to: string }): Promise<number> {
    return Promise.resolve(new Rate(body.from, body.to).value);
  }
}

/** Nest's log output: warnings with their context. */
class WarningRecorder implements LoggerService {
  readonly warnings: { message: string; context: unknown }[] = [];
  log(): void {}
  error(): void {}
  warn(message: unknown, context?: unknown): void {
    this.warnings.push({ message: String(message), context });
  }
  /** The cache's warnings (context 'DynamoCache') that match `pattern`. */
  cache(pattern: RegExp): string[] {
    return this.warnings
      .filter((w) => w.context === 'DynamoCache' && pattern.test(w.message))
      .map((w) => w.message);
  }
}

const cacheKey = (namespace: string, material: unknown[]): string =>
  buildCacheKey('', namespace, encodeKey(material));

/** The Host every test request carries (see gql()). */
const GQL_HOST = 'api.example';

const RATE_FIELDS = '{ id from to value label }';
const usdEur = { id: 'USD-EUR', from: 'USD', to: 'EUR', value: 0.92, label: '1 USD = 0.92 EUR' };
const usdGbp = { id: 'USD-GBP', from: 'USD', to: 'GBP', value: 0.79, label: '1 USD = 0.79 GBP' };

describe('GraphQL resolvers with @DynamoCached (two applications on one table)', () => {
  const fx = useTestDynamo();

  interface GqlApp {
    app: INestApplication;
    calls: CallCounter;
    client: DynamoDBClient;
    /** POSTs `query` to /graphql and returns the response's `data` (no errors allowed). */
    gql(query: string, headers?: Record<string, string>): Promise<Record<string, unknown>>;
    stats(): ReturnType<DynamoCacheService['stats']>['namespaces'];
  }

  /** A GraphQL HTTP application with the cache module on `table` and its own counted client. */
  async function gqlApp(
    table: string,
    providers: Provider[],
    graphql: Partial<ApolloDriverConfig> = {},
    logger: LoggerService | false = false,
  ): Promise<GqlApp> {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client }),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          autoSchemaFile: true,
          ...graphql,
        }),
      ],
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger });
    fx.apps.push(app);
    await app.init();
    return {
      app,
      calls,
      client,
      async gql(query, headers = {}) {
        // Both applications are reached under one host name, as behind a load balancer: the
        // host joins a resolver's key, as it does a route's.
        const res = await request(app.getHttpServer())
          .post('/graphql')
          .set({ host: GQL_HOST, ...headers })
          .send({ query })
          .expect(200);
        const body = res.body as { data?: Record<string, unknown>; errors?: unknown };
        expect(body.errors).toBeUndefined();
        return body.data ?? {};
      },
      stats: () => app.get(DynamoCacheService).stats().namespaces,
    };
  }

  async function keysIn(table: string): Promise<string[]> {
    return (await scanTable(fx.admin, table)).map((item) => item.cache_key!.S!).sort();
  }

  it('1. @Query: app A runs the resolver once for two identical queries (L1), app B answers from L2 without running it and the getter field resolves; other args, another entry', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [RateResolver]);
    const q = (from: string, to: string) => `{ rate(from: "${from}", to: "${to}") ${RATE_FIELDS} }`;

    expect(await a.gql(q('USD', 'EUR'))).toEqual({ rate: usdEur });
    expect(a.app.get(RateResolver).runs).toBe(1);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });

    // Second identical query: L1 hit, no resolver run, no DynamoDB call.
    expect(await a.gql(q('USD', 'EUR'))).toEqual({ rate: usdEur });
    expect(a.app.get(RateResolver).runs).toBe(1);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(a.stats()['RateResolver.rate']).toMatchObject({ l1Hits: 1, misses: 1, l2Writes: 1 });

    // The item: namespace RateResolver.rate, key material [args], the value a Rate.
    const items = await scanTable(fx.admin, table);
    expect(items.map((i) => i.cache_key!.S)).toEqual([
      cacheKey('RateResolver.rate', [{ from: 'USD', to: 'EUR' }, GQL_HOST]),
    ]);
    expect(JSON.parse(items[0]!.c!.S!)).toEqual({ Rate: [[]] });

    // App B: same table, empty L1, its own client.
    const b = await gqlApp(table, [RateResolver]);
    expect(await b.gql(q('USD', 'EUR'))).toEqual({ rate: usdEur });
    expect(b.app.get(RateResolver).runs).toBe(0);
    expect(b.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });
    expect(b.stats()['RateResolver.rate']).toMatchObject({ l2Hits: 1, misses: 0, unrestorable: 0 });
    // Again on B: now from B's L1.
    expect(await b.gql(q('USD', 'EUR'))).toEqual({ rate: usdEur });
    expect(b.calls.counts).toEqual({ GetItem: 1, BatchGetItem: 1 });

    // Different arguments: a different entry, computed once.
    expect(await a.gql(q('USD', 'GBP'))).toEqual({ rate: usdGbp });
    expect(await a.gql(q('USD', 'GBP'))).toEqual({ rate: usdGbp });
    expect(a.app.get(RateResolver).runs).toBe(2);
    expect(a.calls.counts).toEqual({ GetItem: 2, PutItem: 2 });
    expect(await keysIn(table)).toEqual(
      [
        cacheKey('RateResolver.rate', [{ from: 'USD', to: 'EUR' }, GQL_HOST]),
        cacheKey('RateResolver.rate', [{ from: 'USD', to: 'GBP' }, GQL_HOST]),
      ].sort(),
    );
    // ... which B reads from L2 too.
    expect(await b.gql(q('USD', 'GBP'))).toEqual({ rate: usdGbp });
    expect(b.app.get(RateResolver).runs).toBe(0);
    expect(b.calls.counts).toEqual({ GetItem: 2, BatchGetItem: 1 });
  });

  it('1b. a resolver that takes @Context() and @Info() is cached too, keyed by its selection', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [ContextRateResolver]);
    const byId = `{ contextRate(from: "USD", to: "EUR") { id } }`;
    const byLabel = `{ contextRate(from: "USD", to: "EUR") { id label } }`;
    await a.gql(byId);
    await a.gql(byId);
    expect(a.app.get(ContextRateResolver).runs).toBe(1);
    // Another selection: another entry (a resolver reading @Info() may fetch only what is asked).
    expect(await a.gql(byLabel)).toEqual({
      contextRate: { id: usdEur.id, label: usdEur.label },
    });
    expect(a.app.get(ContextRateResolver).runs).toBe(2);
    expect(await keysIn(table)).toHaveLength(2);
  });

  it('2. credentials: a request with Authorization runs the resolver every time with no DynamoDB call; with vary: ["authorization"] it is cached per token', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [RateResolver, TokenRateResolver]);
    const rate = `{ rate(from: "USD", to: "EUR") ${RATE_FIELDS} }`;
    const tokenRate = `{ tokenRate(from: "USD", to: "EUR") ${RATE_FIELDS} }`;
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

    // No vary: never cached for a request carrying a credential.
    expect(await a.gql(rate, bearer('alice'))).toEqual({ rate: usdEur });
    expect(await a.gql(rate, bearer('alice'))).toEqual({ rate: usdEur });
    expect(a.app.get(RateResolver).runs).toBe(2);
    expect(a.calls.total()).toBe(0);
    expect(await keysIn(table)).toEqual([]);
    // Control: the same query without the header is cached.
    await a.gql(rate);
    await a.gql(rate);
    expect(a.app.get(RateResolver).runs).toBe(3);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    // ... and a later credentialed request still does not read it.
    await a.gql(rate, bearer('alice'));
    expect(a.app.get(RateResolver).runs).toBe(4);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });

    // vary: ['authorization']: one entry per token.
    a.calls.reset();
    const runs = () => a.app.get(TokenRateResolver).runs;
    expect(await a.gql(tokenRate, bearer('alice'))).toEqual({ tokenRate: usdEur });
    expect(await a.gql(tokenRate, bearer('alice'))).toEqual({ tokenRate: usdEur });
    expect(runs()).toBe(1);
    expect(await a.gql(tokenRate, bearer('bob'))).toEqual({ tokenRate: usdEur });
    expect(await a.gql(tokenRate, bearer('bob'))).toEqual({ tokenRate: usdEur });
    expect(await a.gql(tokenRate, bearer('alice'))).toEqual({ tokenRate: usdEur });
    expect(runs()).toBe(2);
    expect(a.calls.counts).toEqual({ GetItem: 2, PutItem: 2 });
    const args = { from: 'USD', to: 'EUR' };
    expect(await keysIn(table)).toEqual(
      [
        cacheKey('RateResolver.rate', [args, GQL_HOST]),
        cacheKey('TokenRateResolver.tokenRate', [args, GQL_HOST, 'Bearer alice']),
        cacheKey('TokenRateResolver.tokenRate', [args, GQL_HOST, 'Bearer bob']),
      ].sort(),
    );
  });

  it('3. @ResolveField with key (parent) and fieldResolverEnhancers: ["interceptors"]: computed once per parent across queries, and across apps from L2', async () => {
    const table = await fx.dynamo.table();
    const enhanced: Partial<ApolloDriverConfig> = { fieldResolverEnhancers: ['interceptors'] };
    const a = await gqlApp(table, [FreshRateResolver, InverseResolver], enhanced);
    const q = (from: string, to: string) =>
      `{ freshRate(from: "${from}", to: "${to}") { id inverse } }`;

    expect(await a.gql(q('USD', 'EUR'))).toEqual({ freshRate: { id: 'USD-EUR', inverse: 1.087 } });
    expect(await a.gql(q('USD', 'EUR'))).toEqual({ freshRate: { id: 'USD-EUR', inverse: 1.087 } });
    // Two parent objects (the root query is not cached), one computation for the parent's id.
    expect(a.app.get(FreshRateResolver).runs).toBe(2);
    expect(a.app.get(InverseResolver).runs).toBe(1);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });

    // Another parent: another entry.
    expect(await a.gql(q('USD', 'GBP'))).toEqual({ freshRate: { id: 'USD-GBP', inverse: 1.2658 } });
    expect(a.app.get(InverseResolver).runs).toBe(2);
    expect(a.calls.counts).toEqual({ GetItem: 2, PutItem: 2 });
    expect(await keysIn(table)).toEqual(
      [
        cacheKey('InverseResolver.inverse', ['USD-EUR', GQL_HOST]),
        cacheKey('InverseResolver.inverse', ['USD-GBP', GQL_HOST]),
      ].sort(),
    );

    // App B: the field from L2, not computed.
    const b = await gqlApp(table, [FreshRateResolver, InverseResolver], enhanced);
    expect(await b.gql(q('USD', 'EUR'))).toEqual({ freshRate: { id: 'USD-EUR', inverse: 1.087 } });
    expect(await b.gql(q('USD', 'GBP'))).toEqual({ freshRate: { id: 'USD-GBP', inverse: 1.2658 } });
    expect(b.app.get(InverseResolver).runs).toBe(0);
    expect(b.calls.counts).toEqual({ GetItem: 2, BatchGetItem: 1 });
    expect(b.stats()['InverseResolver.inverse']).toMatchObject({ l2Hits: 2, misses: 0 });
  });

  it('3b. @ResolveField with @DynamoCached and no key: bootstrap fails with a DynamoCacheError naming the method and "key"', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client }),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          autoSchemaFile: true,
          fieldResolverEnhancers: ['interceptors'],
        }),
      ],
      providers: [FreshRateResolver, KeylessInverseResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    let failure: unknown;
    try {
      await app.init();
    } catch (err) {
      failure = err;
    } finally {
      await app.close().catch(() => undefined);
    }
    expect(failure).toBeInstanceOf(DynamoCacheError);
    expect((failure as DynamoCacheError).operation).toBe('config');
    expect((failure as Error).message).toContain('KeylessInverseResolver.inverse');
    expect((failure as Error).message).toContain('"key"');
    expect(calls.total()).toBe(0);
  });

  it('3c. @ResolveField with key but no fieldResolverEnhancers: a bootstrap warning says it is not cached, and it runs every time', async () => {
    const table = await fx.dynamo.table();
    const logger = new WarningRecorder();
    const a = await gqlApp(table, [FreshRateResolver, InverseResolver], {}, logger);
    expect(
      logger.cache(/InverseResolver\.inverse\b.*not cached.*fieldResolverEnhancers/),
    ).toHaveLength(1);

    const q = '{ freshRate(from: "USD", to: "EUR") { id inverse } }';
    expect(await a.gql(q)).toEqual({ freshRate: { id: 'USD-EUR', inverse: 1.087 } });
    expect(await a.gql(q)).toEqual({ freshRate: { id: 'USD-EUR', inverse: 1.087 } });
    expect(a.app.get(InverseResolver).runs).toBe(2);
    expect(a.calls.total()).toBe(0);
    expect(await keysIn(table)).toEqual([]);
  });

  it('4. @Mutation with @DynamoCached: a bootstrap warning, and the mutation runs every time', async () => {
    const table = await fx.dynamo.table();
    const logger = new WarningRecorder();
    const a = await gqlApp(table, [FreshRateResolver, RateMutationResolver], {}, logger);
    expect(logger.cache(/RateMutationResolver\.setRate\b.*mutation.*never cached/)).toHaveLength(1);

    const m = `mutation { setRate(from: "USD", to: "EUR") ${RATE_FIELDS} }`;
    expect(await a.gql(m)).toEqual({ setRate: usdEur });
    expect(await a.gql(m)).toEqual({ setRate: usdEur });
    expect(a.app.get(RateMutationResolver).runs).toBe(2);
    expect(a.calls.total()).toBe(0);
    expect(await keysIn(table)).toEqual([]);
  });

  it('5. global APP_INTERCEPTOR DynamoCacheInterceptor: a @DynamoCached query is cached exactly once (one run, one GetItem, one PutItem, one item); an undecorated query is not cached', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [
      { provide: APP_INTERCEPTOR, useClass: DynamoCacheInterceptor },
      RateResolver,
      FreshRateResolver,
    ]);
    const q = `{ rate(from: "USD", to: "EUR") ${RATE_FIELDS} }`;
    expect(await a.gql(q)).toEqual({ rate: usdEur });
    expect(await a.gql(q)).toEqual({ rate: usdEur });
    expect(a.app.get(RateResolver).runs).toBe(1);
    // Cached by one interceptor only: a second one would read and write again.
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(a.stats()['RateResolver.rate']).toMatchObject({ misses: 1, l1Hits: 1, l2Writes: 1 });
    expect(await keysIn(table)).toEqual([
      cacheKey('RateResolver.rate', [{ from: 'USD', to: 'EUR' }, GQL_HOST]),
    ]);

    const fresh = `{ freshRate(from: "USD", to: "EUR") ${RATE_FIELDS} }`;
    expect(await a.gql(fresh)).toEqual({ freshRate: usdEur });
    expect(await a.gql(fresh)).toEqual({ freshRate: usdEur });
    expect(a.app.get(FreshRateResolver).runs).toBe(2);
    expect(a.calls.counts).toEqual({ GetItem: 1, PutItem: 1 });
    expect(a.stats()['FreshRateResolver.freshRate']).toBeUndefined();
    expect(await keysIn(table)).toHaveLength(1);
  });
});

describe('never silently uncached, outside GraphQL: bootstrap warnings', () => {
  const fx = useTestDynamo();

  it('6. @DynamoCached on a request-scoped provider, a @SubscribeMessage gateway handler and a @MessagePattern handler: each warns naming the class, the method and why', async () => {
    const table = await fx.dynamo.table();
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const logger = new WarningRecorder();
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client })],
      controllers: [RatesMessages],
      providers: [PerRequestRates, RatesGateway],
    }).compile();
    moduleRef.useLogger(logger);
    fx.apps.push(moduleRef);
    await moduleRef.init();

    expect(logger.cache(/PerRequestRates\.rate\b.*request-scoped.*not cached/)).toHaveLength(1);
    expect(
      logger.cache(/RatesGateway\.onRate\b.*WebSocket gateway handler.*not cached/),
    ).toHaveLength(1);
    expect(
      logger.cache(/RatesMessages\.onRate\b.*message or event handler.*only HTTP routes/),
    ).toHaveLength(1);
    expect(logger.cache(/./)).toHaveLength(3);

    // And indeed not cached: each call runs, with no DynamoDB call.
    const perRequest = await moduleRef.resolve(PerRequestRates);
    await perRequest.rate('USD', 'EUR');
    await perRequest.rate('USD', 'EUR');
    expect(perRequest.runs).toBe(2);
    const gateway = moduleRef.get(RatesGateway);
    await gateway.onRate({ from: 'USD', to: 'EUR' });
    await gateway.onRate({ from: 'USD', to: 'EUR' });
    expect(gateway.runs).toBe(2);
    expect(calls.total()).toBe(0);
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });
});
