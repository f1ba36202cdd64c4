import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DNS_TYPES, decodeHeader, decodeQuestion, encodeQuery, encodingLength } from '../../src/codec/dns.js';

describe('codec/dns', () => {
  it('encodes a query as RFC 1035 §4.1 lays it out', () => {
    const q = encodeQuery({ id: 0x1234, name: 'www.example.', type: 'AAAA', recursionDesired: true });
    assert.ok(q.ok);
    assert.equal(
      Buffer.from(q.value).toString('hex'),
      '123401000001000000000000' + '03777777076578616d706c6500' + '001c0001',
    );
    const root = encodeQuery({ id: 1, name: '.', type: 'SOA', recursionDesired: false });
    assert.ok(root.ok);
    assert.equal(Buffer.from(root.value).subarray(12).toString('hex'), '0000060001');
  });

  it('round-trips names, types and ids', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(label, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(...(Object.keys(DNS_TYPES) as (keyof typeof DNS_TYPES)[])),
        (id, parts, type) => {
          const q = { id, name: parts.join('.'), type, recursionDesired: true };
          const enc = encodeQuery(q);
          assert.ok(enc.ok);
          assert.equal(enc.value.length, encodingLength(q));
          const dec = decodeQuestion(enc.value);
          assert.ok(dec.ok);
          assert.equal(dec.value.header.id, id);
          assert.equal(dec.value.header.response, false);
          assert.equal(dec.value.header.recursionDesired, true);
          assert.equal(dec.value.question.name, q.name);
          assert.equal(dec.value.question.type, DNS_TYPES[type]);
          assert.equal(dec.value.question.class, 1);
        },
      ),
    );
  });

  it('rejects bad names with a code', () => {
    const bad: [string, string][] = [
      ['a..b', 'bad-name'],
      [`${'x'.repeat(64)}.test`, 'label-too-long'],
      [Array(60).fill('abcd').join('.'), 'name-too-long'],
    ];
    for (const [name, code] of bad) {
      const r = encodeQuery({ id: 1, name, type: 'A', recursionDesired: true });
      assert.equal(r.ok, false, name);
      if (!r.ok) assert.equal(r.error.code, code);
    }
  });

  it('returns errors, never throws, on malformed messages', () => {
    const table: [string, string][] = [
      ['', 'truncated'],
      ['00010100000100000000', 'truncated'],
      ['000181800000000000000000', 'truncated'], // no question
      ['0001818000010000000000000377', 'truncated'], // label past the end
      ['000181800001000000000000c00c0001', 'bad-pointer'], // pointer to itself
      ['0001818000010000000000008000010001', 'bad-name'], // reserved label type
      ['00018180000100000000000000', 'truncated'], // type/class missing
    ];
    for (const [hex, code] of table) {
      const r = decodeQuestion(Buffer.from(hex, 'hex'));
      assert.equal(r.ok, false, hex);
      if (!r.ok) assert.equal(r.error.code, code, hex);
    }
    const h = decodeHeader(Buffer.from('abcd8183000100000000000000', 'hex'));
    assert.ok(h.ok);
    assert.deepEqual([h.value.id, h.value.response, h.value.rcode], [0xabcd, true, 3]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        decodeQuestion(bytes);
        decodeHeader(bytes);
      }),
    );
  });
});
