import { createHash } from 'node:crypto';
import { serialize } from 'node:v8';
import {
  ClassSerializerInterceptor,
  Controller,
  Get,
  Param,
  type INestApplication,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { Exclude } from 'class-transformer';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

class Account {
  id!: string;
  name!: string;
  @Exclude() pin!: string;
  constructor(init: Account) {
    Object.assign(this, init);
  }
}

/** The PINs of the accounts: known to the server only. */
const PINS: Record<string, string> = { a1: '4821', a2: '0007' };

@Controller()
class AccountsController {
  @Get('accounts/:id')
  @DynamoCached(60)
  async account(@Param('id') id: string): Promise<Account> {
    return new Account({ id, name: 'Ada', pin: PINS[id]! });
  }
}

describe('ClassSerializerInterceptor on a cached route: @Exclude()d fields', () => {
  const fx = useTestDynamo();

  async function boot(table: string): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() })],
      controllers: [AccountsController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor }],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return app;
  }

  it('do not reach the client in any form: not in the body, not through the ETag (miss, and another instance’s hit)', async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    const miss = await request(a.getHttpServer())
      .get('/accounts/a1')
      .set('host', 'api.example')
      .expect(200);
    await settleAll(fx.apps);
    const hit = await request(b.getHttpServer())
      .get('/accounts/a1')
      .set('host', 'api.example')
      .expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    for (const res of [miss, hit]) {
      expect(res.body).toEqual({ id: 'a1', name: 'Ada' });
      expect(res.headers['etag']).toBe(miss.headers['etag']);
    }
    // A client knowing the visible fields tries every PIN against unkeyed hashes of the value
    // (what the tag was: sha1 of its v8 serialization), and of its JSON: none gives the tag.
    const etag = miss.headers['etag'] as string;
    let recovered: string | undefined;
    for (let n = 0; n < 10_000 && recovered === undefined; n++) {
      const pin = String(n).padStart(4, '0');
      const value = { id: 'a1', name: 'Ada', pin };
      for (const bytes of [serialize(value), Buffer.from(JSON.stringify(value))]) {
        if (`W/"${createHash('sha1').update(bytes).digest('base64url')}"` === etag) recovered = pin;
      }
    }
    expect(recovered).toBeUndefined();
  });
});
