/** `static_routes { ... }`: applied at startup, not tied to a VRRP state (KA-man5 "Static routes/addresses/rules"). */
import type { RouteEntry } from '../model.js';
import type { Node } from '../tree.js';
import type { Ctx } from './engine.js';
import { listBlock, parseRouteEntry } from './ip-entries.js';

export const parseStaticRoutes = (node: Node, ctx: Ctx): RouteEntry[] => listBlock(node, ctx, parseRouteEntry);
