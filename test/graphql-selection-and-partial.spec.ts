import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { Provider } from '@nestjs/common';
import {
  Args,
  createUnionType,
  Field,
  Float,
  GraphQLModule,
  Info,
  Int,
  ObjectType,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import type { FieldNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { graphqlClient } from './support/graphql-client.js';

const RATES: Record<string, number> = { 'USD-EUR': 0.92, 'USD-GBP': 0.79 };
let down = true;

@ObjectType()
class RQuote {
  @Field() id!: string;
  @Field(() => Float, { nullable: true }) value?: number | Promise<number>;
}
@ObjectType()
class RBasket {
  @Field() name!: string;
  @Field(() => [RQuote], { nullable: 'items' }) quotes!: (RQuote | Error)[];
}
@Resolver(() => RBasket)
class BasketResolver {
  @Query(() => RBasket)
  @DynamoCached(60)
  basket(@Args({ name: 'ids', type: () => [String] }) ids: string[]): RBasket {
    return Object.assign(new RBasket(), {
      name: 'mine',
      quotes: ids.map((id) =>
        // loadMany-style
        id === 'USD-GBP' && down
          ? new Error('upstream timeout')
          : Object.assign(new RQuote(), { id, value: RATES[id] }),
      ),
    });
  }
}
@Resolver(() => RQuote)
class LazyQuoteResolver {
  @Query(() => RQuote)
  @DynamoCached(60)
  lazyQuote(@Args('id') id: string): RQuote {
    // a Promise-valued property: graphql-js awaits it
    return Object.assign(new RQuote(), {
      id,
      value: down ? Promise.reject(new Error('upstream timeout')) : Promise.resolve(RATES[id]),
    });
  }
}

@ObjectType()
class RAuthor {
  @Field() id!: string;
  prefetched: string[] = [];
}
@Resolver(() => RAuthor)
class AuthorResolver {
  @Query(() => RAuthor)
  @DynamoCached(60)
  author(@Args('id') id: string, @Info() info: GraphQLResolveInfo): RAuthor {
    // look-ahead
    const sel = info.fieldNodes[0].selectionSet!.selections.find(
      (s) => s.kind === 'Field' && s.name.value === 'posts',
    ) as FieldNode | undefined;
    const v = sel?.arguments?.find((a) => a.name.value === 'first')?.value;
    const first =
      v?.kind === 'Variable'
        ? (info.variableValues[v.name.value] as number)
        : v?.kind === 'IntValue'
          ? Number(v.value)
          : 10;
    return Object.assign(new RAuthor(), {
      id,
      prefetched: ['p1', 'p2', 'p3', 'p4'].slice(0, first),
    });
  }
  @ResolveField(() => [String])
  posts(@Parent() a: RAuthor, @Args('first', { type: () => Int }) first: number): string[] {
    return a.prefetched.slice(0, first);
  }
}

@ObjectType()
class RCat {
  @Field() name!: string;
  kind = 'cat';
}
@ObjectType()
class RDog {
  @Field() name!: string;
  kind = 'dog';
}
const Animal = createUnionType({
  name: 'RAnimal',
  types: () => [RCat, RDog] as const,
  resolveType: (v: { kind?: string }) => (v.kind === 'cat' ? RCat : RDog),
});
function typeConditions(info: GraphQLResolveInfo): Set<string> {
  const out = new Set<string>();
  const walk = (set: SelectionSetNode | undefined): void => {
    for (const s of set?.selections ?? []) {
      if (s.kind === 'InlineFragment') {
        if (s.typeCondition) out.add(s.typeCondition.name.value);
        walk(s.selectionSet);
      }
      if (s.kind === 'FragmentSpread') {
        const f = info.fragments[s.name.value]!;
        out.add(f.typeCondition.name.value);
        walk(f.selectionSet);
      }
    }
  };
  info.fieldNodes.forEach((n) => walk(n.selectionSet));
  return out;
}
@Resolver()
class AnimalResolver {
  @Query(() => [Animal])
  @DynamoCached(60)
  animals(@Args('term') term: string, @Info() info: GraphQLResolveInfo): (RCat | RDog)[] {
    const wanted = typeConditions(info); // search only the types the query asks for
    return [
      ...(wanted.has('RCat') ? [Object.assign(new RCat(), { name: `Tom ${term}` })] : []),
      ...(wanted.has('RDog') ? [Object.assign(new RDog(), { name: `Rex ${term}` })] : []),
    ];
  }
}

@ObjectType()
class NAuthor {
  @Field() id!: string;
  prefetched: string[] = [];
}
@Resolver(() => NAuthor)
class NAuthorResolver {
  @Query(() => NAuthor)
  @DynamoCached(60)
  nauthor(@Args('id') id: string, @Info() info: GraphQLResolveInfo): NAuthor {
    // Look-ahead, with GraphQL's own rules: an omitted variable leaves the argument's default (2).
    const sel = info.fieldNodes[0].selectionSet!.selections.find(
      (s) => s.kind === 'Field' && s.name.value === 'posts',
    ) as FieldNode | undefined;
    const v = sel?.arguments?.find((a) => a.name.value === 'first')?.value;
    let first: number | null = 2;
    if (v?.kind === 'NullValue') first = null;
    else if (v?.kind === 'IntValue') first = Number(v.value);
    else if (v?.kind === 'Variable' && Object.hasOwn(info.variableValues, v.name.value)) {
      first = info.variableValues[v.name.value] as number | null;
    }
    return Object.assign(new NAuthor(), {
      id,
      prefetched: ['p1', 'p2', 'p3', 'p4'].slice(0, first ?? undefined),
    });
  }
  @ResolveField(() => [String])
  posts(
    @Parent() a: NAuthor,
    @Args('first', { type: () => Int, nullable: true, defaultValue: 2 }) first: number | null,
  ): string[] {
    return a.prefetched.slice(0, first ?? undefined);
  }
}

describe('GraphQL: nested selections, fragments and partial results, two instances on one table', () => {
  const fx = useTestDynamo();
  async function gqlApp(table: string, providers: Provider[]) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return {
      settle: () => app.get(DynamoCacheService).settle(),
      gql: graphqlClient(app),
    };
  }

  it('an Error one level deeper (a list property, as loadMany gives) is answered, not stored: B answers the recovered value', async () => {
    down = true;
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [BasketResolver]), await gqlApp(table, [BasketResolver])];
    const q = `{ basket(ids: ["USD-EUR", "USD-GBP"]) { name quotes { id value } } }`;
    expect((await a.gql(q)).errors?.[0]?.message).toBe('upstream timeout');
    await a.settle();
    const written = (await scanTable(fx.admin, table)).length;
    down = false;
    const r = await b.gql(q);
    expect({ written, errors: r.errors, data: r.data }).toEqual({
      written: 0,
      errors: undefined,
      data: {
        basket: {
          name: 'mine',
          quotes: [
            { id: 'USD-EUR', value: 0.92 },
            { id: 'USD-GBP', value: 0.79 },
          ],
        },
      },
    });
  });

  it('a rejected Promise property (a field error) is not kept in L1: A answers the recovered value', async () => {
    down = true;
    const a = await gqlApp(await fx.dynamo.table(), [LazyQuoteResolver]);
    const q = `{ lazyQuote(id: "USD-EUR") { id value } }`;
    expect((await a.gql(q)).errors?.[0]?.message).toBe('upstream timeout');
    await a.settle();
    down = false;
    const r = await a.gql(q);
    expect({ errors: r.errors, data: r.data }).toEqual({
      errors: undefined,
      data: { lazyQuote: { id: 'USD-EUR', value: 0.92 } },
    });
  });

  it('@Info() keys nested field arguments (variables resolved): posts(first: 1) and posts(first: 3) are two entries', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [AuthorResolver]), await gqlApp(table, [AuthorResolver])];
    const q = `query Q($n: Int!) { author(id: "ann") { id posts(first: $n) } }`;
    expect((await a.gql(q, { n: 1 })).data).toEqual({ author: { id: 'ann', posts: ['p1'] } });
    await a.settle();
    expect((await b.gql(q, { n: 3 })).data).toEqual({
      author: { id: 'ann', posts: ['p1', 'p2', 'p3'] },
    });
  });

  it("@Info() keys a named fragment's type condition: ...F on RCat and ...F on RDog are two entries", async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [AnimalResolver]), await gqlApp(table, [AnimalResolver])];
    expect(
      (await a.gql(`{ animals(term: "x") { ...F } } fragment F on RCat { name }`)).data,
    ).toEqual({ animals: [{ name: 'Tom x' }] });
    await a.settle();
    expect(
      (await b.gql(`{ animals(term: "x") { ...F } } fragment F on RDog { name }`)).data,
    ).toEqual({ animals: [{ name: 'Rex x' }] });
  });

  it('posts(first: $n) with $n omitted (the default, 2) and posts(first: null) (all) are two entries', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [NAuthorResolver]), await gqlApp(table, [NAuthorResolver])];
    const omitted = await a.gql(`query Q($n: Int) { nauthor(id: "ann") { id posts(first: $n) } }`);
    expect(omitted.data).toEqual({ nauthor: { id: 'ann', posts: ['p1', 'p2'] } });
    await a.settle();
    const explicitNull = await b.gql(`{ nauthor(id: "ann") { id posts(first: null) } }`);
    expect(explicitNull.data).toEqual({
      nauthor: { id: 'ann', posts: ['p1', 'p2', 'p3', 'p4'] },
    });
  });
});
