/** keepalived's log timestamps (lib/logger.c vlog_message, local time) and syslog idents per process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consoleTimestamp, fileTimestamp, SYSLOG_IDENT } from '../../src/daemon/log.js';

test('console: strftime %c in the C locale; log file: %a %b %d %T.nanoseconds %Y; local time', () => {
  const d = new Date(2026, 11, 1, 9, 6, 41, 57);
  assert.equal(consoleTimestamp(d), 'Tue Dec  1 09:06:41 2026');
  assert.equal(fileTimestamp(d), 'Tue Dec 01 09:06:41.057000000 2026');
  assert.equal(consoleTimestamp(new Date(2026, 0, 31, 23, 59, 59)), 'Sat Jan 31 23:59:59 2026');
});

test('syslog idents as keepalived names its processes (Keepalived, Keepalived_vrrp, Keepalived_healthcheckers)', () => {
  assert.deepEqual(SYSLOG_IDENT, { supervisor: 'Keepvs', vrrp: 'Keepvs_vrrp', lvs: 'Keepvs_healthcheckers' });
});
