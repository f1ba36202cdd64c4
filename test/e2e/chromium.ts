/**
 * Headless Chromium for the dashboard tests: Debian's binary, and the flags that keep it off the
 * network (this machine has none: background fetches would be refused, many at a time).
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
