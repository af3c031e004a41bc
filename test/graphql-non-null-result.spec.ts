import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import {
  Args,
  Field,
  Float,
  GraphQLModule,
  ObjectType,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { graphqlClient } from './support/graphql-client.js';

/*
 * A resolver whose upstream fails quietly returns `null` where the schema wants a value (the
 * result of a `Float!` query, an item of a `[Float!]` list): GraphQL answers a field error and
 * `null` in the nearest nullable place, a partial result as an Error in the result is. Stored,
 * every client on every instance got that error until the ttl ended, the upstream long back.
 */

/** What the upstream answers: `null` while it is down. */
const upstream = { down: true };
const rate = (): number | null => (upstream.down ? null : 0.92);

@ObjectType()
class NnRate {
  @Field() id!: string;
  // Computed by its own resolver below: a null here is not what GraphQL answers.
  @Field(() => Float) spread!: number | null;
}

let runs = 0;

@Resolver(() => NnRate)
class NnResolver {
  @Query(() => Float)
  @DynamoCached(60)
  nnValue(@Args('id') _id: string): number | null {
    runs++;
    return rate();
  }

  @Query(() => [Float], { nullable: true })
  @DynamoCached(60)
  nnValues(): (number | null)[] {
    runs++;
    return [1, rate()];
  }

  @Query(() => NnRate)
  @DynamoCached(60)
  nnRate(@Args('id') id: string): NnRate | null {
    runs++;
    return upstream.down ? null : Object.assign(new NnRate(), { id, spread: null });
  }

  @ResolveField(() => Float)
  spread(@Parent() r: NnRate): number {
    return r.id.length / 100;
  }
}

describe('GraphQL: a result with null where the schema wants a value (two instances)', () => {
  const fx = useTestDynamo();
  beforeEach(() => {
    upstream.down = true;
    runs = 0;
  });

  async function gqlApp(table: string) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers: [NnResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return { settle: () => app.get(DynamoCacheService).settle(), gql: graphqlClient(app) };
  }

  it.each([
    ['the result of a Float! query', '{ nnValue(id: "r1") }', { nnValue: 0.92 }],
    ['an item of a [Float!] list', '{ nnValues }', { nnValues: [1, 0.92] }],
    [
      'the result of a non-null object query',
      '{ nnRate(id: "r1") { id } }',
      { nnRate: { id: 'r1' } },
    ],
  ])(
    '%s: answered with its error, not stored; B runs the resolver once the upstream is back',
    async (_what, query, data) => {
      const table = await fx.dynamo.table();
      const a = await gqlApp(table);
      const b = await gqlApp(table);
      const failed = await a.gql(query);
      expect(failed.errors?.[0]?.message).toMatch(/non-nullable/);
      await a.settle();
      expect(await scanTable(fx.admin, table)).toEqual([]);

      upstream.down = false;
      expect(await b.gql(query)).toEqual({ data });
      expect(runs).toBe(2);
    },
  );

  it('a null in a field its own resolver computes is stored as usual, and read by another instance', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table);
    const b = await gqlApp(table);
    upstream.down = false;
    const query = '{ nnRate(id: "r1") { id spread } }';
    const answer = { data: { nnRate: { id: 'r1', spread: 0.02 } } };
    expect(await a.gql(query)).toEqual(answer);
    await a.settle();
    expect(await scanTable(fx.admin, table)).toHaveLength(1);
    // B answers from DynamoDB: the resolver ran once.
    expect(await b.gql(query)).toEqual(answer);
    expect(runs).toBe(1);
  });
});
