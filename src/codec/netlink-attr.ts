/** One netlink attribute (netlink(7), struct nlattr): length, type, payload padded to 4 bytes. */
export function netlinkAttr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  if (len > 0xffff) throw new Error('netlink attribute over 64 KiB');
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
