/** `static_rules { ... }`: applied at startup, not tied to a VRRP state (KA-man5 "Static routes/addresses/rules"). */
import type { RuleEntry } from '../model.js';
import type { Node } from '../tree.js';
import type { Ctx } from './engine.js';
import { listBlock, parseRuleEntry } from './ip-entries.js';

export const parseStaticRules = (node: Node, ctx: Ctx): RuleEntry[] => listBlock(node, ctx, parseRuleEntry);
