import { Injectable } from '@nestjs/common';
import { DynamoCached, encodeKey } from '../lib/index.js';
import { bootCache, settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * An object with toJSON() and own properties (the shape of a date library's instant: dayjs keeps
 * `$d`, `$L`, `$offset`) is keyed by its own properties, as 0.1.0 keyed it: its toJSON() (the
 * instant in UTC) leaves out the locale and UTC offset a method formats with, and keyed by it two
 * different arguments shared one entry, in every instance on the table.
 */
const WEEKDAYS: Record<string, string[]> = {
  en: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
  fr: ['dimanche', 'lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi'],
};

class Instant {
  constructor(
    public $d: Date,
    public $L = 'en',
    public $offset = 0,
  ) {}
  locale(l: string): Instant {
    return new Instant(this.$d, l, this.$offset);
  }
  utcOffset(minutes: number): Instant {
    return new Instant(this.$d, this.$L, minutes);
  }
  format(): string {
    const local = new Date(this.$d.getTime() + this.$offset * 60_000);
    const hh = String(local.getUTCHours()).padStart(2, '0');
    return `${WEEKDAYS[this.$L]![local.getUTCDay()]} ${hh}:00`;
  }
  toJSON(): string {
    return this.$d.toISOString();
  }
}

@Injectable()
class CalendarService {
  calls = 0;
  @DynamoCached(3600)
  async heading(day: Instant): Promise<string> {
    this.calls++;
    return day.format();
  }
}

describe('an argument with toJSON() and own properties is keyed by its properties', () => {
  const fx = useTestDynamo();
  const at = new Date('2026-03-02T10:00:00Z');

  it('one instant in two locales or two offsets: two keys; equal arguments: one', () => {
    const en = new Instant(at);
    expect(encodeKey([en])).not.toBe(encodeKey([en.locale('fr')]));
    expect(encodeKey([en])).not.toBe(encodeKey([en.utcOffset(120)]));
    expect(encodeKey([en])).toBe(encodeKey([new Instant(new Date(at))]));
  });

  it('two instances on one table: each locale and offset gets its own heading, computed once', async () => {
    const table = await fx.dynamo.table();
    const a = await bootCache({ table, client: fx.dynamo.client() }, [CalendarService]);
    const b = await bootCache({ table, client: fx.dynamo.client() }, [CalendarService]);
    fx.apps.push(a, b);
    const inA = a.get(CalendarService);
    const inB = b.get(CalendarService);
    const en = new Instant(at);
    expect(await inA.heading(en)).toBe('Monday 10:00');
    await settleAll(fx.apps);
    const got = {
      fr: await inB.heading(en.locale('fr')),
      offset: await inB.heading(en.utcOffset(120)),
      en: await inB.heading(new Instant(new Date(at))),
    };
    expect(got).toEqual({ fr: 'lundi 10:00', offset: 'Monday 12:00', en: 'Monday 10:00' });
    // English from A's item; French and the offset computed by B.
    expect({ a: inA.calls, b: inB.calls }).toEqual({ a: 1, b: 2 });
  });
});
