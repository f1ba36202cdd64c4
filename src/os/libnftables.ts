/**
 * libnftables in-process through koffi (Debian libnftables1): one `nft_run_cmd_from_buffer` call is
 * one netlink batch, i.e. one atomic transaction (kernel-plane-facts §5: 0.1-4 ms against 7-24 ms for
 * a spawned `nft`). Output and errors are buffered, so a failure comes back as text, never on stderr.
 */
import koffi from 'koffi';

/** include/nftables/libnftables.h */
const NFT_CTX_DEFAULT = 0;
const NFT_CTX_OUTPUT_JSON = 1 << 4;

export interface NftResult {
  readonly ok: boolean;
  readonly output: string;
  readonly error: string;
}

/** What the kernel data plane needs from nftables; a fake in tests. */
export interface NftRunner {
  /** Runs a ruleset text (one transaction); `json` asks for JSON output (list commands). */
  run(commands: string, json?: boolean): NftResult;
}

interface Lib {
  ctxNew: (flags: number) => unknown;
  ctxFree: (ctx: unknown) => void;
  bufferOutput: (ctx: unknown) => number;
  bufferError: (ctx: unknown) => number;
  getOutput: (ctx: unknown) => string | null;
  getError: (ctx: unknown) => string | null;
  outputSetFlags: (ctx: unknown, flags: number) => void;
  outputGetFlags: (ctx: unknown) => number;
  run: (ctx: unknown, buf: string) => number;
}

let lib: Lib | null | undefined;

function load(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const so = koffi.load('libnftables.so.1');
    koffi.opaque('nft_ctx');
    lib = {
      ctxNew: so.func('nft_ctx *nft_ctx_new(uint32_t flags)'),
      ctxFree: so.func('void nft_ctx_free(nft_ctx *ctx)'),
      bufferOutput: so.func('int nft_ctx_buffer_output(nft_ctx *ctx)'),
      bufferError: so.func('int nft_ctx_buffer_error(nft_ctx *ctx)'),
      getOutput: so.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)'),
      getError: so.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)'),
      outputSetFlags: so.func('void nft_ctx_output_set_flags(nft_ctx *ctx, uint32_t flags)'),
      outputGetFlags: so.func('uint32_t nft_ctx_output_get_flags(nft_ctx *ctx)'),
      run: so.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)'),
    };
  } catch {
    lib = null;
  }
  return lib;
}

/** True when libnftables can be loaded in this process. */
export function libnftablesAvailable(): boolean {
  return load() !== null;
}

/** One nft context for the life of the process (the library keeps caches per context). */
export class LibNftables implements NftRunner {
  private readonly ctx: unknown;
  private readonly lib: Lib;
  private readonly baseFlags: number;

  constructor() {
    const l = load();
    if (!l) throw new Error('libnftables.so.1 cannot be loaded (Debian package libnftables1)');
    this.lib = l;
    this.ctx = l.ctxNew(NFT_CTX_DEFAULT);
    if (!this.ctx) throw new Error('nft_ctx_new failed');
    l.bufferOutput(this.ctx);
    l.bufferError(this.ctx);
    this.baseFlags = l.outputGetFlags(this.ctx);
  }

  run(commands: string, json = false): NftResult {
    this.lib.outputSetFlags(this.ctx, json ? this.baseFlags | NFT_CTX_OUTPUT_JSON : this.baseFlags);
    const rc = this.lib.run(this.ctx, commands);
    return { ok: rc === 0, output: this.lib.getOutput(this.ctx) ?? '', error: this.lib.getError(this.ctx) ?? '' };
  }

  close(): void {
    this.lib.ctxFree(this.ctx);
  }
}
