//! The classic interpreter runs `hb_beamr_meter`'s fuel charge as one
//! instruction (issue 22: the interpreter's cost of metering).
//!
//! Every metered block begins with the same eleven instructions (see
//! `hb_beamr_meter::body` and docs/metering.md):
//!
//! ```wasm
//! global.get G  i64.const c  i64.lt_s
//! if  i64.const c  call F  end
//! global.get G  i64.const c  i64.sub  global.set G
//! ```
//!
//! The interpreter dispatched eight of them on every block (and looked up
//! where the `if` ends), more than `fnv1a`'s loop body costs. When the
//! loader has validated such a sequence (the same `G`, `c` and `F` bytes
//! each time, `0 <= c < 2^31`), it rewrites it in place into:
//!
//! | offset | bytes |
//! |---|---|
//! | 0 | `0x16` (unused by WebAssembly): the charge |
//! | 1 | the sequence's length in bytes (19 to 47) |
//! | 2, 6, 10 | `G`, `c`, `F` as little-endian `u32`s |
//! | 14 | `0x17` (unused): where the call of `F` returns |
//!
//! `0x16` does what the eleven instructions do: if `G >= c`, `G -= c` and go
//! on after the sequence; otherwise push `c` and call `F`, returning to
//! `0x17`, which takes `c` from `G` (wrapping, as `i64.sub` does) and goes on
//! after the sequence. That is the sequence's meaning for any `F` and any
//! mutable `i64` global `G`, so a module that writes the sequence itself
//! (not made by `hb_beamr_meter`) computes what it would have computed.
//! Nothing but the loader writes `0x16` or `0x17`: WebAssembly has no such
//! opcodes and the loader refuses them in a module. The block scanner that
//! finds where an `if` or `block` ends skips the whole sequence by its
//! length. The AOT compiler reads the original bytes (this is a runtime
//! patch) and compiles the eleven instructions, with the same meaning.
//!
//! Tested by `hb_beamr_meter`'s tests/fuel (every metered module, in the
//! interpreter against AOT code, the same results and fuel) and by
//! tests/fuel/cases.rs's `fused_charges_keep_their_meaning` (sequences whose
//! `F` does not wait for fuel, a sequence that differs in one byte and is
//! not fused, a fused charge inside an `if` that is skipped).

use super::{Patch, RUNTIME};

const LOADER: &str = "core/iwasm/interpreter/wasm_loader.c";
const INTERP: &str = "core/iwasm/interpreter/wasm_interp_classic.c";

pub const PATCHES: &[Patch] = &[
    Patch {
        file: LOADER,
        why: "fused fuel charge: the matcher and the rewrite",
        find: "#endif /* end of WASM_ENABLE_FAST_INTERP != 0 */

static bool
wasm_loader_prepare_bytecode(WASMModule *module, WASMFunction *func,
",
        replace: "#endif /* end of WASM_ENABLE_FAST_INTERP != 0 */

/* hb_beamr: a fused fuel charge (see hb_wamr_build/src/patch/fused_charge.rs).
   An unsigned LEB128 u32 at p: its length, 0 if it is not one. */
static uint32
hb_charge_leb_u32(const uint8 *p, const uint8 *end, uint32 *out)
{
    uint32 v = 0, n = 0;
    while (p + n < end && n < 5) {
        uint8 b = p[n];
        if (n == 4 && (b & 0xf0))
            return 0;
        v |= (uint32)(b & 0x7f) << (7 * n);
        n++;
        if (!(b & 0x80)) {
            *out = v;
            return n;
        }
    }
    return 0;
}

/* A signed LEB128 of at most 5 bytes at p whose value is in [0, 2^31). */
static uint32
hb_charge_leb_cost(const uint8 *p, const uint8 *end, uint32 *out)
{
    uint64 v = 0;
    uint32 n = 0;
    while (p + n < end && n < 5) {
        uint8 b = p[n];
        v |= (uint64)(b & 0x7f) << (7 * n);
        n++;
        if (!(b & 0x80)) {
            if ((b & 0x40) || v > 0x7fffffff)
                return 0;
            *out = (uint32)v;
            return n;
        }
    }
    return 0;
}

#define HB_CHARGE_BYTE(b)              \\
    do {                               \\
        if (q >= end || *q++ != (b))   \\
            return 0;                  \\
    } while (0)
#define HB_CHARGE_SAME(at, len)                                     \\
    do {                                                            \\
        if ((uint32)(end - q) < (len) || memcmp(q, (at), (len)) != 0) \\
            return 0;                                               \\
        q += (len);                                                 \\
    } while (0)

/* The length of the charge sequence starting with the global.get at p (its
   global G, cost c and function F in out), 0 if there is none. */
static uint32
hb_charge_match(const uint8 *p, const uint8 *end, uint32 out[3])
{
    const uint8 *q = p, *g_at, *c_at;
    uint32 lg, lc, lf;

    HB_CHARGE_BYTE(WASM_OP_GET_GLOBAL);
    g_at = q;
    if (!(lg = hb_charge_leb_u32(q, end, &out[0])))
        return 0;
    q += lg;
    HB_CHARGE_BYTE(WASM_OP_I64_CONST);
    c_at = q;
    if (!(lc = hb_charge_leb_cost(q, end, &out[1])))
        return 0;
    q += lc;
    HB_CHARGE_BYTE(WASM_OP_I64_LT_S);
    HB_CHARGE_BYTE(WASM_OP_IF);
    HB_CHARGE_BYTE(VALUE_TYPE_VOID);
    HB_CHARGE_BYTE(WASM_OP_I64_CONST);
    HB_CHARGE_SAME(c_at, lc);
    HB_CHARGE_BYTE(WASM_OP_CALL);
    if (!(lf = hb_charge_leb_u32(q, end, &out[2])))
        return 0;
    q += lf;
    HB_CHARGE_BYTE(WASM_OP_END);
    HB_CHARGE_BYTE(WASM_OP_GET_GLOBAL);
    HB_CHARGE_SAME(g_at, lg);
    HB_CHARGE_BYTE(WASM_OP_I64_CONST);
    HB_CHARGE_SAME(c_at, lc);
    HB_CHARGE_BYTE(WASM_OP_I64_SUB);
    HB_CHARGE_BYTE(WASM_OP_SET_GLOBAL);
    HB_CHARGE_SAME(g_at, lg);
    return (uint32)(q - p);
}

/* Rewrites a validated charge sequence of len bytes at p (len >= 19). */
static void
hb_charge_fuse(uint8 *p, uint32 len, const uint32 gcf[3])
{
    p[0] = WASM_OP_UNUSED_0x16;
    p[1] = (uint8)len;
    memcpy(p + 2, &gcf[0], 4);
    memcpy(p + 6, &gcf[1], 4);
    memcpy(p + 10, &gcf[2], 4);
    p[14] = WASM_OP_UNUSED_0x17;
}

static bool
wasm_loader_prepare_bytecode(WASMModule *module, WASMFunction *func,
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: LOADER,
        why: "fused fuel charge: rewritten once the loader has validated it",
        find: "    while (p < p_end) {
        opcode = *p++;
#if WASM_ENABLE_FAST_INTERP != 0
        p_org = p;
",
        replace: "    /* hb_beamr: the charge sequence being validated, if any */
    uint8 *hb_charge_at = NULL;
    uint32 hb_charge_len = 0, hb_charge_gcf[3];

    while (p < p_end) {
#if WASM_ENABLE_FAST_INTERP == 0
        if (hb_charge_at && p >= hb_charge_at + hb_charge_len) {
            if (p == hb_charge_at + hb_charge_len)
                hb_charge_fuse(hb_charge_at, hb_charge_len, hb_charge_gcf);
            hb_charge_at = NULL;
        }
#endif
        opcode = *p++;
#if WASM_ENABLE_FAST_INTERP != 0
        p_org = p;
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: LOADER,
        why: "fused fuel charge: found at its global.get",
        find: "            case WASM_OP_GET_GLOBAL:
            {
#if WASM_ENABLE_GC != 0
                WASMRefType *ref_type;
#endif

                p_org = p - 1;
",
        replace: "            case WASM_OP_GET_GLOBAL:
            {
#if WASM_ENABLE_GC != 0
                WASMRefType *ref_type;
#endif

                p_org = p - 1;
#if WASM_ENABLE_FAST_INTERP == 0
                /* hb_beamr: a fused fuel charge starts here? */
                if (!hb_charge_at
                    && (hb_charge_len =
                            hb_charge_match(p_org, p_end, hb_charge_gcf)))
                    hb_charge_at = p_org;
#endif
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: LOADER,
        why: "fused fuel charge: the block scanner skips it",
        find: "            case WASM_OP_GET_LOCAL:
            case WASM_OP_SET_LOCAL:
            case WASM_OP_TEE_LOCAL:
            case WASM_OP_GET_GLOBAL:
",
        replace: "            case WASM_OP_UNUSED_0x16:
                /* hb_beamr: a fused fuel charge, p[0] its length (never
                   less than 19: anything else is not one, refuse) */
                if (p >= p_end || p[0] < 19)
                    return false;
                p += p[0] - 1;
                break;

            case WASM_OP_GET_LOCAL:
            case WASM_OP_SET_LOCAL:
            case WASM_OP_TEE_LOCAL:
            case WASM_OP_GET_GLOBAL:
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: INTERP,
        why: "fused fuel charge: no longer unsupported opcodes",
        find: "        HANDLE_OP(WASM_OP_UNUSED_0x16)
        HANDLE_OP(WASM_OP_UNUSED_0x17)
",
        replace: "",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: INTERP,
        why: "fused fuel charge: the two instructions",
        find: "            HANDLE_OP(WASM_OP_CALL)
            {
",
        replace: "            HANDLE_OP(WASM_OP_UNUSED_0x16)
            {
                /* hb_beamr: a fused fuel charge (hb_wamr_build's
                   patch/fused_charge.rs): G >= c takes c from G, else
                   call F(c) and return to the 0x17 at offset 14 */
                uint8 *hb_at = frame_ip - 1;
                uint32 hb_g, hb_c, hb_f;
                int64 hb_fuel;
                memcpy(&hb_g, hb_at + 2, 4);
                memcpy(&hb_c, hb_at + 6, 4);
                memcpy(&hb_f, hb_at + 10, 4);
                global = globals + hb_g;
                global_addr = get_global_addr(global_data, global);
                hb_fuel = GET_I64_FROM_ADDR((uint32 *)global_addr);
                if (hb_fuel >= (int64)hb_c) {
                    PUT_I64_TO_ADDR((uint32 *)global_addr,
                                    hb_fuel - (int64)hb_c);
                    frame_ip = hb_at + hb_at[1];
                    HANDLE_OP_END();
                }
#if WASM_ENABLE_THREAD_MGR != 0
                CHECK_SUSPEND_FLAGS();
#endif
                PUSH_I64((int64)hb_c);
                frame_ip = hb_at + 14;
                cur_func = module->e->functions + hb_f;
                goto call_func_from_interp;
            }

            HANDLE_OP(WASM_OP_UNUSED_0x17)
            {
                /* hb_beamr: F returned: G -= c, as i64.sub (wrapping) */
                uint8 *hb_at = frame_ip - 15;
                uint32 hb_g, hb_c;
                memcpy(&hb_g, hb_at + 2, 4);
                memcpy(&hb_c, hb_at + 6, 4);
                global = globals + hb_g;
                global_addr = get_global_addr(global_data, global);
                PUT_I64_TO_ADDR(
                    (uint32 *)global_addr,
                    (int64)((uint64)GET_I64_FROM_ADDR((uint32 *)global_addr)
                            - (uint64)hb_c));
                frame_ip = hb_at + hb_at[1];
                HANDLE_OP_END();
            }

            HANDLE_OP(WASM_OP_CALL)
            {
",
        count: 1,
        flavours: RUNTIME,
    },
];
