import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { INestApplication, Provider } from '@nestjs/common';
import {
  Args,
  Field,
  Float,
  GraphQLModule,
  Info,
  ObjectType,
  Query,
  Resolver,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import {
  getDirectiveValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  type FieldNode,
  type GraphQLResolveInfo,
} from 'graphql';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';
import { graphqlClient } from './support/graphql-client.js';

const RATES: Record<string, number> = { 'USD-EUR': 0.92, 'USD-GBP': 0.79 };

@ObjectType()
class Quote {
  @Field() id!: string;
  @Field(() => Float, { nullable: true }) value?: number;
  @Field(() => String, { nullable: true }) note?: string;
}

/** The fields graphql-js will execute below this one (as graphql-js decides: @skip/@include). */
function executedFields(info: GraphQLResolveInfo): Set<string> {
  const out = new Set<string>();
  for (const node of info.fieldNodes) {
    for (const sel of node.selectionSet?.selections ?? []) {
      if (sel.kind !== 'Field') continue;
      const skip = getDirectiveValues(GraphQLSkipDirective, sel, info.variableValues);
      const include = getDirectiveValues(GraphQLIncludeDirective, sel, info.variableValues);
      if (skip?.if === true || include?.if === false) continue;
      out.add((sel as FieldNode).name.value);
    }
  }
  return out;
}

/** Fetches only what the query will execute (the case README says @Info() keys cover). */
@Resolver(() => Quote)
class QuoteResolver {
  runs = 0;

  @Query(() => Quote)
  @DynamoCached(60)
  quote(
    @Args('from') from: string,
    @Args('to') to: string,
    @Info() info: GraphQLResolveInfo,
  ): Quote {
    this.runs++;
    const wanted = executedFields(info);
    const q = new Quote();
    q.id = `${from}-${to}`;
    if (wanted.has('value')) q.value = RATES[q.id]; // the expensive part, fetched only if asked
    return q;
  }
}

let upstreamDown = true;

/** A DataLoader-style batch: an item that failed is an Error in the list (loader.loadMany). */
@Resolver(() => Quote)
class QuotesResolver {
  runs = 0;

  @Query(() => [Quote], { nullable: 'items' })
  @DynamoCached(60)
  quotes(@Args({ name: 'ids', type: () => [String] }) ids: string[]): (Quote | Error)[] {
    this.runs++;
    return ids.map((id) => {
      if (id === 'USD-GBP' && upstreamDown) return new Error('upstream timeout for USD-GBP');
      const q = new Quote();
      q.id = id;
      q.value = RATES[id];
      return q;
    });
  }
}

/*
 * GraphQL resolvers whose answer depends on more than their arguments: the fields `@skip` and
 * `@include` leave out (a resolver that fetches only what runs), and partial results (an Error in
 * a list, which GraphQL answers as a field error), which are answered but never stored.
 */
describe('GraphQL resolvers: directives in the selection, partial results', () => {
  const fx = useTestDynamo();

  async function gqlApp(table: string, providers: Provider[]) {
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers,
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return {
      app,
      calls,
      gql: graphqlClient(app),
    };
  }

  it('@include(if: $v) on a field below a resolver that reads @Info(): v=false then v=true must not share an entry', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [QuoteResolver]);
    const q = `query Q($v: Boolean!) { quote(from: "USD", to: "EUR") { id value @include(if: $v) } }`;

    // v=false: the resolver does not fetch `value`; graphql-js does not ask for it.
    expect((await a.gql(q, { v: false })).data).toEqual({ quote: { id: 'USD-EUR' } });
    // v=true: the client asks for `value`, which is 0.92.
    const second = await a.gql(q, { v: true });
    expect({ runs: a.app.get(QuoteResolver).runs, data: second.data }).toEqual({
      runs: 2,
      data: { quote: { id: 'USD-EUR', value: 0.92 } },
    });
  });

  it('the same with @skip(if: $v) (the reverse order: the full value first is harmless, so start skipped)', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [QuoteResolver]);
    const q = `query Q($v: Boolean!) { quote(from: "USD", to: "EUR") { id value @skip(if: $v) } }`;
    expect((await a.gql(q, { v: true })).data).toEqual({ quote: { id: 'USD-EUR' } });
    expect((await a.gql(q, { v: false })).data).toEqual({
      quote: { id: 'USD-EUR', value: 0.92 },
    });
  });

  it('a partial result (a list item that is an Error, as loader.loadMany gives) is not cached: once upstream recovers the resolver runs again', async () => {
    upstreamDown = true;
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [QuotesResolver]);
    const q = `{ quotes(ids: ["USD-EUR", "USD-GBP"]) { id value } }`;

    const first = await a.gql(q);
    expect(first.errors?.[0]?.message).toBe('upstream timeout for USD-GBP');
    expect(first.data).toEqual({ quotes: [{ id: 'USD-EUR', value: 0.92 }, null] });
    await a.app.get(DynamoCacheService).settle();
    const writtenAfterPartial = (await scanTable(fx.admin, table)).length;

    upstreamDown = false; // recovered
    const second = await a.gql(q);
    expect({
      writtenAfterPartial,
      runsA: a.app.get(QuotesResolver).runs,
      secondErrors: second.errors?.map((e) => e.message),
      secondData: second.data,
    }).toEqual({
      writtenAfterPartial: 0,
      runsA: 2,
      secondErrors: undefined,
      secondData: {
        quotes: [
          { id: 'USD-EUR', value: 0.92 },
          { id: 'USD-GBP', value: 0.79 },
        ],
      },
    });
  });
});
