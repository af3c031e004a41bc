import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { INestApplication } from '@nestjs/common';
import {
  Args,
  Field,
  GraphQLModule,
  InputType,
  InterfaceType,
  ObjectType,
  Query,
  Resolver,
  TypeMetadataStorage,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import { Exclude, Expose, Transform, Type } from 'class-transformer';
import request from 'supertest';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import {
  loadMetadataClassSources,
  type MetadataClassSource,
} from '../lib/engine/values/metadata-classes.js';

// class-transformer
class Address {
  street = '';
}

class WithExclude {
  @Exclude() secret = '';
}

class WithExpose {
  @Expose() name = '';
}

class WithTransform {
  @Transform(({ value }) => String(value)) code = '';
}

class WithType {
  @Type(() => Address) address?: Address;
  @Type(() => Date) at?: Date;
  @Type((options) => (options?.object ? Address : WithExpose)) chosen?: unknown;
}

class NeedsOptions {
  @Type((options) => (options!.object.kind === 'a' ? Address : WithExpose)) value?: unknown;
}

// TypeORM
class Money {
  @Column() amount = 0;
}

@Entity()
class Invoice {
  @PrimaryColumn() id = '';
  @Column() customer = '';
  @Column(() => Money) total?: Money;
}

// @nestjs/graphql
@ObjectType()
class Recipe {
  @Field() title!: string;
}

@InterfaceType()
abstract class Named {
  @Field() name!: string;
}

@InputType()
class RecipeFilter {
  @Field() prefix!: string;
}

@Resolver(() => Recipe)
class RecipeResolver {
  @Query(() => [Recipe])
  recipes(
    @Args('filter', { type: () => RecipeFilter, nullable: true }) filter?: RecipeFilter,
  ): Recipe[] {
    const all = [{ title: 'Soup' }, { title: 'Salad' }];
    return all.filter((recipe) => recipe.title.startsWith(filter?.prefix ?? ''));
  }
}

async function source(name: string): Promise<MetadataClassSource> {
  const found = (await loadMetadataClassSources()).find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no source ${name}`);
  return found;
}

const classesOf = async (name: string): Promise<unknown[]> => [...(await source(name)).classes()];

describe('loadMetadataClassSources (classes known from installed packages)', () => {
  it('finds one source per installed package, once', async () => {
    const first = await loadMetadataClassSources();
    expect(first.map((candidate) => candidate.name).sort()).toEqual([
      '@nestjs/graphql',
      'class-transformer',
      'typeorm',
    ]);
    expect(await loadMetadataClassSources()).toBe(first);
  });

  it('class-transformer: decorated classes and the classes @Type names', async () => {
    const classes = await classesOf('class-transformer');
    for (const type of [WithExclude, WithExpose, WithTransform, WithType, NeedsOptions, Address]) {
      expect(classes).toContain(type);
    }
    // Built-ins are not the application's classes.
    expect(classes).not.toContain(Date);
    // The storage read is the one the package's main (what Nest's ClassSerializerInterceptor
    // imports) writes to: a class declared now is seen at the next call.
    const { Expose: ExposeFromMain } = await import('class-transformer');
    class Later {
      @ExposeFromMain() late = '';
    }
    expect(await classesOf('class-transformer')).toContain(Later);
  });

  it('TypeORM: entities, and the classes of their columns and embedded columns', async () => {
    const classes = await classesOf('typeorm');
    expect(classes).toContain(Invoice);
    expect(classes).toContain(Money);
    expect(classes).not.toContain(Recipe);
  });

  it('yields functions only, never the same class twice', async () => {
    for (const candidate of await loadMetadataClassSources()) {
      const classes = [...candidate.classes()];
      expect(new Set(classes).size).toBe(classes.length);
      for (const type of classes) expect(typeof type).toBe('function');
    }
  });

  describe('@nestjs/graphql', () => {
    let app: INestApplication | undefined;

    afterAll(async () => {
      await app?.close();
    });

    it('sees object, interface and input types before the schema is built', async () => {
      // Only the input type's loader is lazy: it is not in TypeMetadataStorage yet.
      expect(TypeMetadataStorage.getInputTypesMetadata().map((m) => m.target)).not.toContain(
        RecipeFilter,
      );
      const classes = await classesOf('@nestjs/graphql');
      expect(classes).toContain(Recipe);
      expect(classes).toContain(Named);
      expect(classes).toContain(RecipeFilter);
      expect(classes).not.toContain(RecipeResolver);
    });

    it('serves a query from a real application and sees the types after bootstrap', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [
          GraphQLModule.forRoot<ApolloDriverConfig>({
            driver: ApolloDriver,
            autoSchemaFile: true,
          }),
        ],
        providers: [RecipeResolver],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.init();

      const response = await request(app.getHttpServer())
        .post('/graphql')
        .send({ query: '{ recipes(filter: { prefix: "So" }) { title } }' })
        .expect(200);
      expect(response.body).toEqual({ data: { recipes: [{ title: 'Soup' }] } });

      expect(TypeMetadataStorage.getInputTypesMetadata().map((m) => m.target)).toContain(
        RecipeFilter,
      );
      const classes = await classesOf('@nestjs/graphql');
      expect(classes).toContain(Recipe);
      expect(classes).toContain(Named);
      expect(classes).toContain(RecipeFilter);
      expect(classes).not.toContain(RecipeResolver);
    });
  });
});
