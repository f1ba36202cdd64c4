/** `static_ipaddress { ... }`: applied at startup, not tied to a VRRP state (KA-man5 "Static routes/addresses/rules"). */
import type { IpAddressEntry } from '../model.js';
import type { Node } from '../tree.js';
import type { Ctx } from './engine.js';
import { listBlock, parseAddressEntry } from './ip-entries.js';

export const parseStaticIpaddress = (node: Node, ctx: Ctx): IpAddressEntry[] => listBlock(node, ctx, parseAddressEntry);
