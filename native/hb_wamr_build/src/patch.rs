//! Build-time patches of the WAMR sources (see the crate's documentation). The sources are never copied
//! into the repository: a patched file is written to `OUT_DIR` and compiled
//! instead of the original. Each patch replaces an exact piece of text; if
//! that text is not found (exactly as many times as expected), the build
//! fails, naming the patch, so a WAMR upgrade cannot silently drop one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::flavour::Flavour;

mod fuel_register;
mod fused_charge;

/// One textual replacement in one WAMR source file.
pub struct Patch {
    /// The file, relative to the `wasm-micro-runtime` root.
    pub file: &'static str,
    /// Why, for the build-failure message.
    pub why: &'static str,
    /// The exact text to replace.
    pub find: &'static str,
    /// What replaces it.
    pub replace: &'static str,
    /// How many times `find` occurs in the file.
    pub count: usize,
    /// Which builds need it.
    pub flavours: &'static [Flavour],
}

/// For patches both builds need.
const BOTH: &[Flavour] = &[Flavour::Runtime, Flavour::Compiler];
const COMPILER: &[Flavour] = &[Flavour::Compiler];
const RUNTIME: &[Flavour] = &[Flavour::Runtime];

/// One rounding operation of the interpreter switched to `DEF_OP_ROUND`.
macro_rules! round_patch {
    ($find:literal, $replace:literal) => {
        Patch {
            file: "core/iwasm/interpreter/wasm_interp_classic.c",
            why: "rounding a signalling NaN gives a quiet NaN",
            find: $find,
            replace: $replace,
            count: 1,
            flavours: RUNTIME,
        }
    };
}

/// hb_beamr's patches, in the order they are applied.
pub const PATCHES: &[Patch] = &[
    // An exec env is one allocation: its header and, inline after it, the
    // interpreter's wasm stack (`Limits.wasm_stack`, 64 KiB by default),
    // which WAMR zeroes with a memset, so every live instance kept the whole
    // stack resident although a call uses its first pages. It is mapped
    // instead (fresh anonymous pages are zero and cost nothing until
    // touched) and unmapped when destroyed: the same zeroed stack, resident
    // only as far as it is used (issue 26: RSS per instance).
    Patch {
        file: "core/iwasm/common/wasm_exec_env.c",
        why: "an exec env's wasm stack is mapped, zero, not memset",
        find: "WASMExecEnv *
wasm_exec_env_create_internal(struct WASMModuleInstanceCommon *module_inst,
",
        replace: "#include <sys/mman.h> /* hb_beamr */

/* hb_beamr: an exec env (header + wasm stack) in its own anonymous mapping,
   zero and not resident until touched; wasm_stack_size is set at once, so
   that the size to unmap is known on every path. */
static WASMExecEnv *
hb_beamr_exec_env_alloc(uint64 total_size, uint32 stack_size)
{
    void *p = mmap(NULL, (size_t)total_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    ((WASMExecEnv *)p)->wasm_stack_size = stack_size;
    return (WASMExecEnv *)p;
}

static void
hb_beamr_exec_env_free(WASMExecEnv *exec_env)
{
    munmap(exec_env, offsetof(WASMExecEnv, wasm_stack_u.bottom)
                         + (size_t)exec_env->wasm_stack_size);
}

WASMExecEnv *
wasm_exec_env_create_internal(struct WASMModuleInstanceCommon *module_inst,
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/common/wasm_exec_env.c",
        why: "an exec env's wasm stack is mapped, zero, not memset",
        find: "    if (total_size >= UINT32_MAX
        || !(exec_env = wasm_runtime_malloc((uint32)total_size)))
        return NULL;

    memset(exec_env, 0, (uint32)total_size);
",
        replace: "    if (total_size >= UINT32_MAX
        || !(exec_env = hb_beamr_exec_env_alloc(total_size, stack_size)))
        return NULL;
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/common/wasm_exec_env.c",
        why: "an exec env's wasm stack is mapped, zero, not memset",
        find: "    wasm_runtime_free(exec_env);
",
        replace: "    hb_beamr_exec_env_free(exec_env);
",
        count: 2,
        flavours: RUNTIME,
    },
    // WAMR runs a module's start function and its constructors
    // (`__wasm_call_ctors`, `_initialize`) inside instantiation, on an exec
    // env of its own that the host never sees, so nothing could stop one
    // that never ends. hb_beamr is told that exec env before they run and
    // again when they are over (`hb_beamr_instantiation_hook`, in
    // hb_wamr_sys/c/hb_interrupt.c), so that a start timeout or stop/1 can
    // interrupt them like any call.
    Patch {
        file: "core/iwasm/interpreter/wasm_runtime.c",
        why: "tell hb_beamr the exec env that runs the start function",
        find: "    /* Execute start function for both main instance and sub instance */
    if (start_func && !wasm_call_function(exec_env, start_func, 0, NULL)) {
",
        replace: "    /* hb_beamr: the start function and constructors can be interrupted. */
    hb_beamr_instantiation_hook(exec_env);
    /* Execute start function for both main instance and sub instance */
    if (start_func && !wasm_call_function(exec_env, start_func, 0, NULL)) {
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/interpreter/wasm_runtime.c",
        why: "tell hb_beamr the start function is over",
        find: "fail:
    if (is_sub_inst) {
        /* Restore the parent exec_env's module inst */
        wasm_exec_env_restore_module_inst(exec_env_main, module_inst_main);
",
        replace: "fail:
    hb_beamr_instantiation_hook(NULL); /* hb_beamr: no longer interruptible */
    if (is_sub_inst) {
        /* Restore the parent exec_env's module inst */
        wasm_exec_env_restore_module_inst(exec_env_main, module_inst_main);
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/interpreter/wasm_runtime.c",
        why: "declare hb_beamr's instantiation hook",
        find: "static bool
execute_post_instantiate_functions(WASMModuleInstance *module_inst,
",
        replace: "void hb_beamr_instantiation_hook(WASMExecEnv *exec_env); /* hb_beamr */

static bool
execute_post_instantiate_functions(WASMModuleInstance *module_inst,
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/aot/aot_runtime.c",
        why: "tell hb_beamr the exec env that runs the start function (AOT)",
        find: "    /* Execute start function for both main instance and sub instance */
    if (module->start_function) {
",
        replace: "    /* hb_beamr: the start function and constructors can be interrupted. */
    hb_beamr_instantiation_hook(exec_env);
    /* Execute start function for both main instance and sub instance */
    if (module->start_function) {
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/aot/aot_runtime.c",
        why: "tell hb_beamr the start function is over (AOT)",
        find: "fail:
    if (is_sub_inst) {
        /* Restore the parent exec_env's module inst */
        wasm_exec_env_restore_module_inst(exec_env_main, module_inst_main);
",
        replace: "fail:
    hb_beamr_instantiation_hook(NULL); /* hb_beamr: no longer interruptible */
    if (is_sub_inst) {
        /* Restore the parent exec_env's module inst */
        wasm_exec_env_restore_module_inst(exec_env_main, module_inst_main);
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/aot/aot_runtime.c",
        why: "declare hb_beamr's instantiation hook (AOT)",
        find: "static bool
execute_post_instantiate_functions(AOTModuleInstance *module_inst,
",
        replace: "void hb_beamr_instantiation_hook(WASMExecEnv *exec_env); /* hb_beamr */

static bool
execute_post_instantiate_functions(AOTModuleInstance *module_inst,
",
        count: 1,
        flavours: RUNTIME,
    },
    // The AOT compiler emits its suspend-flag check (the check that lets
    // another thread stop a running call: timeouts, stop/1) at loop
    // back-edges and before and after calls only for modules with a shared
    // memory. hb_beamr stops any instance, so the check goes into every
    // module: at back-edges and before calls. The check after a call (its
    // `check_terminate_and_suspend` is false) is left out: it would put code
    // between a `return_call` and its return, so that tail calls would grow
    // the stack, and the exception check after each call already ends the
    // caller when a callee was stopped.
    Patch {
        file: "core/iwasm/compilation/aot_emit_control.c",
        why: "emit the suspend-flag check whatever the memory",
        find: "    bool is_shared_memory =
        comp_ctx->comp_data->memories[0].flags & 0x02 ? true : false;

    /* Only need to check the suspend flags when memory is shared since
       shared memory must be enabled for multi-threading */
    if (!is_shared_memory) {
        return true;
    }
",
        replace: "    /* hb_beamr: the check is emitted for every module, shared memory
       or not, except after calls (see hb_wamr_build/src/patch.rs). */
    if (!check_terminate_and_suspend) {
        return true;
    }
",
        count: 1,
        flavours: COMPILER,
    },
    // A WebAssembly `call` stays a real call: marked `notail`, LLVM's
    // tail-recursion elimination cannot turn self-recursion into a loop, so
    // endless recursion overflows the native stack (a trap) as in the
    // interpreter. A `return_call` is a jump: WAMR marks it `tail`, a hint
    // LLVM drops when it finds the result constant (then a million of them
    // overflow the stack); where the function types match it is `musttail`.
    Patch {
        file: "core/iwasm/compilation/aot_emit_function.c",
        why: "mark wasm `call` notail and `return_call` musttail",
        find: "        if (tail_call)
            LLVMSetTailCall(value_ret, true);
",
        replace: "        if (tail_call) {
            /* hb_beamr: musttail where LLVM allows it (the same function
               type, at most one result: the ret follows at once), so that
               no optimisation turns the jump back into a call */
            if (func_type->result_count <= 1
                && llvm_func_type == func_ctx->func_type)
                LLVMSetTailCallKind(value_ret, LLVMTailCallKindMustTail);
            else
                LLVMSetTailCall(value_ret, true);
        }
        else /* hb_beamr: a wasm call stays a call (no recursion to loop) */
            LLVMSetTailCallKind(value_ret, LLVMTailCallKindNoTail);
",
        count: 1,
        flavours: COMPILER,
    },
    // WAMR's UTF-8 check refuses NUL, which is valid UTF-8, so a module with
    // a custom section or an import/export name containing "\00" is refused
    // with "invalid UTF-8 encoding" (the spec tests' custom.wast and
    // names.wast). WAMR keeps names as C strings, so a name with a NUL is
    // stored with each NUL as the two bytes C0 80 ("modified UTF-8", as in
    // Java): that is never valid UTF-8, so distinct names stay distinct.
    Patch {
        file: "core/iwasm/interpreter/wasm_runtime.c",
        why: "accept NUL in UTF-8 names",
        find: "        if (chr == 0) {
            LOG_WARNING(
                \"LIMITATION: a string which contains '\\\\00' is unsupported\");
            return false;
        }
        else if (chr < 0x80) {
",
        replace: "        if (chr < 0x80) { /* hb_beamr: NUL is valid UTF-8 */
",
        count: 1,
        flavours: BOTH,
    },
    Patch {
        file: "core/iwasm/interpreter/wasm_runtime.c",
        why: "store a NUL in a name as C0 80",
        find: "char *
wasm_const_str_list_insert(const uint8 *str, uint32 len, WASMModule *module,
                           bool is_load_from_file_buf, char *error_buf,
                           uint32 error_buf_size)
{
    StringNode *node, *node_next;

    if (!wasm_check_utf8_str(str, len)) {
        set_error_buf(error_buf, error_buf_size, \"invalid UTF-8 encoding\");
        return NULL;
    }
",
        replace: "static char *
hb_const_str_list_insert(const uint8 *str, uint32 len, WASMModule *module,
                         bool is_load_from_file_buf, char *error_buf,
                         uint32 error_buf_size);

/* hb_beamr: checks the name, then stores it with each NUL as C0 80. */
char *
wasm_const_str_list_insert(const uint8 *str, uint32 len, WASMModule *module,
                           bool is_load_from_file_buf, char *error_buf,
                           uint32 error_buf_size)
{
    uint8 *encoded;
    uint32 i, n = 0;
    char *result;

    if (!wasm_check_utf8_str(str, len)) {
        set_error_buf(error_buf, error_buf_size, \"invalid UTF-8 encoding\");
        return NULL;
    }
    if (len == 0 || !memchr(str, 0, len)) {
        return hb_const_str_list_insert(str, len, module,
                                        is_load_from_file_buf, error_buf,
                                        error_buf_size);
    }
    if (!(encoded = runtime_malloc((uint64)len * 2, error_buf,
                                   error_buf_size))) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        if (str[i] == 0) {
            encoded[n++] = 0xC0;
            encoded[n++] = 0x80;
        }
        else {
            encoded[n++] = str[i];
        }
    }
    result = hb_const_str_list_insert(encoded, n, module, false, error_buf,
                                      error_buf_size);
    wasm_runtime_free(encoded);
    return result;
}

static char *
hb_const_str_list_insert(const uint8 *str, uint32 len, WASMModule *module,
                         bool is_load_from_file_buf, char *error_buf,
                         uint32 error_buf_size)
{
    StringNode *node, *node_next;
",
        count: 1,
        flavours: BOTH,
    },
    // Without multi-memory, memory.size and memory.grow carry one reserved
    // 0x00 byte; WAMR reads it as a LEB128 and so accepts an overlong zero
    // ("\80\00"), which the spec's binary.wast requires to be refused.
    Patch {
        file: "core/iwasm/interpreter/wasm_loader.c",
        why: "memory.size/grow reserved byte: one 0x00 byte",
        find: "                CHECK_MEMORY();
                pb_read_leb_uint32(p, p_end, memidx);
                check_memidx(module, memidx);
",
        replace: "                CHECK_MEMORY();
                /* hb_beamr: one 0x00 byte, not an overlong LEB128 zero */
                if (p >= p_end || *p != 0x00) {
                    set_error_buf(error_buf, error_buf_size,
                                  \"zero byte expected\");
                    goto fail;
                }
                pb_read_leb_uint32(p, p_end, memidx);
                check_memidx(module, memidx);
",
        count: 2,
        flavours: BOTH,
    },
    // The interpreter rounds with libm (floorf, ceilf, truncf, rintf and
    // the f64 ones), which returns a signalling NaN unchanged; the spec
    // wants an arithmetic (quiet) NaN, as the hardware's rounding gives in
    // AOT code. A NaN operand is quieted (x + x keeps its payload).
    Patch {
        file: "core/iwasm/interpreter/wasm_interp_classic.c",
        why: "rounding a signalling NaN gives a quiet NaN",
        find: "#define TRUNC_FUNCTION(func_name, src_type, dst_type, signed_type)  \\
",
        replace: "/* hb_beamr: rounding quiets a NaN operand (libm keeps a signalling one) */
#define DEF_OP_ROUND(src_type, src_op_type, method)                      \\
    do {                                                                  \\
        src_type src_val = POP_##src_op_type();                          \\
        PUSH_##src_op_type(isnan(src_val) ? src_val + src_val            \\
                                          : method(src_val));            \\
    } while (0)

#define TRUNC_FUNCTION(func_name, src_type, dst_type, signed_type)  \\
",
        count: 1,
        flavours: RUNTIME,
    },
    round_patch!(
        "DEF_OP_MATH(float32, F32, ceilf);",
        "DEF_OP_ROUND(float32, F32, ceilf);"
    ),
    round_patch!(
        "DEF_OP_MATH(float32, F32, floorf);",
        "DEF_OP_ROUND(float32, F32, floorf);"
    ),
    round_patch!(
        "DEF_OP_MATH(float32, F32, truncf);",
        "DEF_OP_ROUND(float32, F32, truncf);"
    ),
    round_patch!(
        "DEF_OP_MATH(float32, F32, rintf);",
        "DEF_OP_ROUND(float32, F32, rintf);"
    ),
    round_patch!(
        "DEF_OP_MATH(float64, F64, ceil);",
        "DEF_OP_ROUND(float64, F64, ceil);"
    ),
    round_patch!(
        "DEF_OP_MATH(float64, F64, floor);",
        "DEF_OP_ROUND(float64, F64, floor);"
    ),
    round_patch!(
        "DEF_OP_MATH(float64, F64, trunc);",
        "DEF_OP_ROUND(float64, F64, trunc);"
    ),
    round_patch!(
        "DEF_OP_MATH(float64, F64, rint);",
        "DEF_OP_ROUND(float64, F64, rint);"
    ),
    // WAMR checks the unused bits of the last byte of 32-bit and signed
    // LEB128s, not of unsigned 64-bit ones (memory64 offsets): a tenth byte
    // holds one bit (the spec's memory64 binary-leb128.wast).
    Patch {
        file: "core/shared/utils/bh_leb128.c",
        why: "unsigned 64-bit LEB128: the tenth byte holds one bit",
        find: "    *p_offset = offset;
    *p_result = result;
    return BH_LEB_READ_SUCCESS;
",
        replace: "    /* hb_beamr: an unsigned 64-bit LEB128's tenth byte holds one bit */
    if (!sign && maxbits == 64 && shift >= maxbits && (((uint8)byte) & 0xfe))
        return BH_LEB_READ_OVERFLOW;

    *p_offset = offset;
    *p_result = result;
    return BH_LEB_READ_SUCCESS;
",
        count: 1,
        flavours: BOTH,
    },
    // WAMR's AOT compiler compiles `return_call_indirect` as a call and a
    // return, so a long chain of them overflows the native stack (the
    // spec's return_call_indirect.wast). hb_beamr marks the call to a wasm
    // function (with at most one result: no pointer into the caller's frame)
    // a tail call and leaves out its exception check, as WAMR does for
    // `return_call`: the caller of the returning function checks. (LLVM
    // makes tail calls from opt_level 1 on.) A `call_indirect` is marked
    // `notail`, as `call` is above.
    Patch {
        file: "core/iwasm/compilation/aot_emit_function.c",
        why: "return_call_indirect: the flag and its entry point",
        find: "bool
aot_compile_op_call_indirect(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx,
                             uint32 type_idx, uint32 tbl_idx)
{
",
        replace: "/* hb_beamr: set while a return_call_indirect is compiled */
static __thread bool hb_return_call_indirect = false;

bool
hb_aot_compile_op_return_call_indirect(AOTCompContext *comp_ctx,
                                       AOTFuncContext *func_ctx,
                                       uint32 type_idx, uint32 tbl_idx)
{
    bool ok;
    hb_return_call_indirect = true;
    ok = aot_compile_op_call_indirect(comp_ctx, func_ctx, type_idx, tbl_idx);
    hb_return_call_indirect = false;
    return ok;
}

bool
aot_compile_op_call_indirect(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx,
                             uint32 type_idx, uint32 tbl_idx)
{
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: "core/iwasm/compilation/aot_emit_function.c",
        why: "return_call_indirect: a tail call",
        find: "        aot_set_last_error(\"llvm build call failed.\");
        goto fail;
    }

    /* Check whether exception was thrown when executing the function */
    if ((comp_ctx->enable_bound_check || is_win_platform(comp_ctx))
        && !check_exception_thrown(comp_ctx, func_ctx))
        goto fail;
",
        replace: "        aot_set_last_error(\"llvm build call failed.\");
        goto fail;
    }

    /* hb_beamr: return_call_indirect to a wasm function is a tail call;
       call_indirect stays a call (no recursion turned into a loop) */
    if (hb_return_call_indirect && func_result_count <= 1)
        LLVMSetTailCall(value_ret, true);
    else
        LLVMSetTailCallKind(value_ret, LLVMTailCallKindNoTail);

    /* Check whether exception was thrown when executing the function */
    if (!(hb_return_call_indirect && func_result_count <= 1)
        && (comp_ctx->enable_bound_check || is_win_platform(comp_ctx))
        && !check_exception_thrown(comp_ctx, func_ctx))
        goto fail;
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: "core/iwasm/compilation/aot_compiler.c",
        why: "return_call_indirect: the declaration",
        find: "#include \"aot_compiler.h\"
",
        replace: "#include \"aot_compiler.h\"

/* hb_beamr: see hb_wamr_build/src/patch.rs */
bool
hb_aot_compile_op_return_call_indirect(AOTCompContext *comp_ctx,
                                       AOTFuncContext *func_ctx,
                                       uint32 type_idx, uint32 tbl_idx);
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: "core/iwasm/compilation/aot_compiler.c",
        why: "return_call_indirect: compiled as a tail call",
        find: "                if (!aot_compile_op_call_indirect(comp_ctx, func_ctx, type_idx,
                                                  tbl_idx))
                    return false;
                if (!aot_compile_op_return(comp_ctx, func_ctx, &frame_ip))
",
        replace: "                if (!hb_aot_compile_op_return_call_indirect(
                        comp_ctx, func_ctx, type_idx, tbl_idx))
                    return false;
                if (!aot_compile_op_return(comp_ctx, func_ctx, &frame_ip))
",
        count: 1,
        flavours: COMPILER,
    },
    // memory.grow on a 64-bit memory: the compiler truncates the page delta
    // to 32 bits, calls the runtime to grow by that, and only then answers
    // -1 for a delta above UINT32_MAX, so memory grew by the delta's low
    // bits (found by the NaN differential fuzz; the interpreter grows
    // nothing). Such a delta now asks the runtime for 0 pages.
    Patch {
        file: "core/iwasm/compilation/aot_emit_memory.c",
        why: "memory64 memory.grow by more than UINT32_MAX pages grows nothing",
        find: "    param_values[1] = LLVMBuildTrunc(comp_ctx->builder, delta, I32_TYPE, \"\");
",
        replace: "    param_values[1] = LLVMBuildTrunc(comp_ctx->builder, delta, I32_TYPE, \"\");
#if WASM_ENABLE_MEMORY64 != 0
    /* hb_beamr: a delta above UINT32_MAX grows nothing (it fails below) */
    if (IS_MEMORY64) {
        LLVMValueRef hb_fits =
            LLVMBuildICmp(comp_ctx->builder, LLVMIntULE, delta,
                          I64_CONST(UINT32_MAX), \"hb_delta_fits\");
        param_values[1] = LLVMBuildSelect(comp_ctx->builder, hb_fits,
                                          param_values[1], I32_ZERO,
                                          \"hb_delta_or_0\");
    }
#endif
",
        count: 1,
        flavours: COMPILER,
    },
    // memory64 effective addresses in AOT code: a constant address plus
    // the access's offset was added in 64 bits and, when the sum wrapped
    // around 2^64 into the initial memory, accessed it directly
    // (`i64.const -16 i64.load offset=32` read address 16; the interpreter,
    // as the spec says, traps). Found by the metering differential fuzz
    // (seed 1, module 768). A constant access that wraps, or does not fit,
    // now takes the general path, whose overflow check traps.
    Patch {
        file: "core/iwasm/compilation/aot_emit_memory.c",
        why: "memory64: a constant address + offset that wraps around 2^64 traps",
        find: "        if (mem_offset + bytes <= mem_data_size) {
",
        replace: "        /* hb_beamr: not when value + offset wrapped (memory64) */
        if (mem_offset >= value && mem_offset <= mem_data_size
            && bytes <= mem_data_size - mem_offset) {
",
        count: 1,
        flavours: COMPILER,
    },
    // The same for memory.copy / memory.fill: a constant destination and
    // length whose sum wraps accessed memory directly, and the run-time
    // check let an end of exactly 2^64 through (it allows a sum of 0 for
    // 32-bit targets), so `memory.fill` at 2^64 - 1 of 1 byte wrote the
    // byte before linear memory. On a 64-bit target a memory64 sum that
    // wraps always traps.
    Patch {
        file: "core/iwasm/compilation/aot_emit_memory.c",
        why: "memory64 bulk memory: a constant offset + length that wraps traps",
        find: "        if (mem_data_size > 0 && mem_offset + mem_len <= mem_data_size) {
",
        replace: "        /* hb_beamr: not when offset + len wraps (memory64) */
        if (mem_data_size > 0 && mem_offset <= mem_data_size
            && mem_len <= mem_data_size - mem_offset) {
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: "core/iwasm/compilation/aot_emit_memory.c",
        why: "memory64 bulk memory: an end of 2^64 traps on 64-bit targets",
        find: "        BUILD_ICMP(LLVMIntNE, max_addr, is_target_64bit ? I64_ZERO : I32_ZERO,
                   cmp1, \"cmp1\");
        BUILD_OP(And, cmp, cmp1, cmp, \"overflow\");
",
        replace: "        BUILD_ICMP(LLVMIntNE, max_addr, is_target_64bit ? I64_ZERO : I32_ZERO,
                   cmp1, \"cmp1\");
        /* hb_beamr: a memory64 end of 2^64 is out of bounds: only a 32-bit
           target's 32-bit sum may wrap to 0 and be valid */
        if (!(is_memory64 && is_target_64bit))
            BUILD_OP(And, cmp, cmp1, cmp, \"overflow\");
",
        count: 1,
        flavours: COMPILER,
    },
    // Linear memory never moves. With software bounds checks WAMR maps a
    // memory at its current size and grows it with mremap(MREMAP_MAYMOVE),
    // which moves it whenever the address space after it is taken; a moved
    // range loses its userfaultfd registration, so the kernel's record of
    // the pages written since the last snapshot (hb_beamr_engine's
    // dirty.rs) would be lost at every growth. A memory whose maximum is at
    // most 4 GiB (every 32-bit memory) reserves that maximum as address
    // space when it is created (PROT_NONE: no memory, no commit charge),
    // commits pages by mprotect as it grows (the path WAMR takes for shared
    // memories and hardware bounds checks) and unmaps the whole reservation
    // when freed. The size that bounds checks use is untouched.
    Patch {
        file: "core/iwasm/common/wasm_memory.c",
        why: "hb_beamr: which memories reserve their maximum",
        find: "static void
wasm_munmap_linear_memory(void *mapped_mem, uint64 commit_size, uint64 map_size)
{",
        replace: "/* hb_beamr: a memory whose maximum is at most 4 GiB reserves it as
   address space, and never moves. */
#define HB_BEAMR_RESERVES(bytes_per_page, max_pages) \
    ((max_pages) > 0 && (uint64)(bytes_per_page) * (max_pages) <= 4 * (uint64)BH_GB)

static void
wasm_munmap_linear_memory(void *mapped_mem, uint64 commit_size, uint64 map_size)
{",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/common/wasm_memory.c",
        why: "hb_beamr: a memory grows in place within its reservation",
        find: "#else
    full_size_mmaped = false;
#endif
",
        replace: "#else
    full_size_mmaped = false;
#endif
    /* hb_beamr: reserved to its maximum, committed by mprotect. */
    if (HB_BEAMR_RESERVES(memory->num_bytes_per_page, memory->max_page_count))
        full_size_mmaped = true;
",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/common/wasm_memory.c",
        why: "hb_beamr: a memory unmaps its whole reservation",
        find: "        map_size = (uint64)memory_inst->num_bytes_per_page
                   * memory_inst->cur_page_count;
",
        replace: "        map_size = (uint64)memory_inst->num_bytes_per_page
                   * (HB_BEAMR_RESERVES(memory_inst->num_bytes_per_page,
                                        memory_inst->max_page_count)
                          ? memory_inst->max_page_count
                          : memory_inst->cur_page_count);
",
        count: 1,
        flavours: RUNTIME,
    },
    // Linear memory in 4 KiB pages, never huge pages. WAMR's os_mmap asks
    // the kernel for transparent huge pages (madvise MADV_HUGEPAGE) on any
    // mapping over 2 MiB, so the first write into a 2 MiB-aligned stretch
    // of linear memory made 2 MiB resident: an AO process (12 MiB initial
    // memory, 330 KB of data segments) cost 2 MiB of RSS per instance, a
    // snapshot fork's first write copied 2 MiB, and the result depended on
    // the host's THP setting. MADV_NOHUGEPAGE before any page is touched
    // makes memory cost what is written, in 4 KiB units (the unit of the
    // dirty tracking and of delta snapshots), on every host.
    Patch {
        file: "core/iwasm/common/wasm_memory.c",
        why: "hb_beamr: linear memory is never backed by huge pages",
        find: "    if (!new_mem) {
        return NULL;
    }

#ifdef BH_PLATFORM_WINDOWS
    if (commit_size > 0",
        replace: "    if (!new_mem) {
        return NULL;
    }
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    /* hb_beamr: 4 KiB pages only (see hb_wamr_build's patch.rs). Advice
       only: a kernel without THP refuses it, which changes nothing. */
    (void)madvise(new_mem, (size_t)new_size, MADV_NOHUGEPAGE);
#endif

#ifdef BH_PLATFORM_WINDOWS
    if (commit_size > 0",
        count: 1,
        flavours: RUNTIME,
    },
    Patch {
        file: "core/iwasm/common/wasm_memory.c",
        why: "hb_beamr: a memory reserves its maximum when created",
        find: "    {
        map_size = init_page_count * num_bytes_per_page;
    }
",
        replace: "    {
        map_size = (HB_BEAMR_RESERVES(num_bytes_per_page, max_page_count)
                        ? max_page_count
                        : init_page_count)
                   * num_bytes_per_page;
    }
",
        count: 1,
        flavours: RUNTIME,
    },
];

/// An upstream security fix hb_beamr relies on that is already in the
/// sources (WAMR main of 2026-06-30, see the crate documentation):
/// no patch applies it, but the build fails if its text is missing, so that
/// an older tree (`HB_BEAMR_WAMR_DIR`, another wamrx-sys) cannot bring the
/// bug back silently.
pub struct Fixed {
    /// The file, relative to the `wasm-micro-runtime` root.
    pub file: &'static str,
    /// The advisory, for the build-failure message.
    pub why: &'static str,
    /// Text of the fix that must be in the file.
    pub text: &'static str,
    /// How many times `text` occurs in the file.
    pub count: usize,
    /// Which builds compile the file.
    pub flavours: &'static [Flavour],
}

/// The upstream fixes hb_beamr's builds must contain.
pub const FIXED: &[Fixed] = &[
    // CVE-2026-54913 (WAMR 2.4.5; upstream e571797 on main, c313279 on the
    // release branch): `ref.null` of a number type in a constant expression
    // was accepted without GC, leaving part of the value uninitialised (a
    // global i64 read back 4 bytes nobody wrote). Both builds load modules
    // with this loader. Test: hb_beamr_wamr_fixes_tests.
    Fixed {
        file: "core/iwasm/interpreter/wasm_loader.c",
        why: "CVE-2026-54913: load_init_expr refuses ref.null of a non-reference type",
        text: "                type1 = read_uint8(p);
                if (type1 != VALUE_TYPE_FUNCREF
                    && type1 != VALUE_TYPE_EXTERNREF) {
                    set_error_buf(error_buf, error_buf_size,
                                  \"invalid reference type\");
                    goto fail;
                }
                cur_value.ref_index = NULL_REF;
",
        count: 1,
        flavours: BOTH,
    },
    Fixed {
        file: "core/iwasm/interpreter/wasm_loader.c",
        why: "CVE-2026-54913: load_init_expr's value starts zeroed",
        text: "    WASMValue cur_value = { 0 };
",
        count: 1,
        flavours: BOTH,
    },
    // CVE-2025-64704 (WAMR 2.4.4; upstream 071e2aa on main, de1d635 on the
    // release branch): the classic interpreter's dispatch table had no entry
    // for the SIMD prefix 0xfd, so a SIMD opcode reaching it jumped through a
    // null pointer. Unreachable here while WASM_ENABLE_SIMD is 0 (the loader
    // refuses 0xfd; tested in hb_beamr_wamr_fixes_tests); required so that
    // it stays harmless if SIMD is ever turned on for AOT.
    Fixed {
        file: "core/iwasm/interpreter/wasm_opcode.h",
        why: "CVE-2025-64704: the interpreter's dispatch table handles 0xfd",
        text: "        SET_GOTO_TABLE_ELEM(WASM_OP_SIMD_PREFIX),    /* 0xfd */ \\
",
        count: 1,
        flavours: RUNTIME,
    },
];

/// Writes the patched copies of the files `flavour` needs into
/// `out_dir/wamr-patched/`, returning original path -> patched path. Checks
/// first that the upstream fixes in [`FIXED`] are in the sources.
pub fn apply(root: &Path, out_dir: &Path, flavour: Flavour) -> BTreeMap<PathBuf, PathBuf> {
    check_fixed(root, flavour, FIXED);
    let all: Vec<&Patch> = PATCHES
        .iter()
        .chain(fused_charge::PATCHES)
        .chain(fuel_register::PATCHES)
        .collect();
    apply_patches(root, out_dir, flavour, &all)
}

fn check_fixed(root: &Path, flavour: Flavour, fixes: &[Fixed]) {
    for fix in fixes.iter().filter(|f| f.flavours.contains(&flavour)) {
        let file = root.join(fix.file);
        println!("cargo:rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("hb_beamr: cannot read {}: {e}", file.display()));
        let found = text.matches(fix.text).count();
        if found != fix.count {
            panic!(
                "hb_beamr: the WAMR sources lack an upstream security fix ({}) in {}: \
                 its text occurs {found} times, expected {}; the text is:\n{}",
                fix.why, fix.file, fix.count, fix.text
            );
        }
    }
}

fn apply_patches(
    root: &Path,
    out_dir: &Path,
    flavour: Flavour,
    patches: &[&Patch],
) -> BTreeMap<PathBuf, PathBuf> {
    let mut texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    for patch in patches.iter().filter(|p| p.flavours.contains(&flavour)) {
        let original = root.join(patch.file);
        println!("cargo:rerun-if-changed={}", original.display());
        let text = texts.entry(original.clone()).or_insert_with(|| {
            std::fs::read_to_string(&original).unwrap_or_else(|e| {
                panic!("hb_beamr patch: cannot read {}: {e}", original.display())
            })
        });
        *text = replace_checked(text, patch);
    }
    let mut patched = BTreeMap::new();
    for (original, text) in texts {
        let relative = original.strip_prefix(root).unwrap_or(&original);
        let copy = out_dir.join("wamr-patched").join(relative);
        if let Some(dir) = copy.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("hb_beamr patch: cannot create {}: {e}", dir.display()));
        }
        std::fs::write(&copy, text)
            .unwrap_or_else(|e| panic!("hb_beamr patch: cannot write {}: {e}", copy.display()));
        patched.insert(original, copy);
    }
    patched
}

fn replace_checked(text: &str, patch: &Patch) -> String {
    let found = text.matches(patch.find).count();
    if found != patch.count {
        panic!(
            "hb_beamr patch '{}' of {}: its context occurs {found} times, expected {} \
             (did the WAMR sources change?); the context is:\n{}",
            patch.why, patch.file, patch.count, patch.find
        );
    }
    text.replace(patch.find, patch.replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(find: &'static str, count: usize) -> Patch {
        Patch {
            file: "f.c",
            why: "test",
            find,
            replace: "X",
            count,
            flavours: BOTH,
        }
    }

    #[test]
    fn replaces_the_expected_occurrences() {
        assert_eq!(replace_checked("a b a", &patch("a", 2)), "X b X");
    }

    #[test]
    #[should_panic(expected = "occurs 0 times")]
    fn missing_context_fails_loudly() {
        replace_checked("a b", &patch("c", 1));
    }

    #[test]
    #[should_panic(expected = "occurs 2 times")]
    fn unexpected_count_fails_loudly() {
        replace_checked("a a", &patch("a", 1));
    }

    #[test]
    #[should_panic(expected = "lack an upstream security fix (test)")]
    fn a_missing_upstream_fix_fails_loudly() {
        /// Removes the directory even when the test panics.
        struct TempDir(PathBuf);
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir =
            TempDir(std::env::temp_dir().join(format!("hb_fixed_test_{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(dir.0.join("f.c"), "int unfixed;\n").unwrap();
        let fixes = [Fixed {
            file: "f.c",
            why: "test",
            text: "int fixed;",
            count: 1,
            flavours: COMPILER,
        }];
        // Only the builds that compile the file are checked.
        check_fixed(&dir.0, Flavour::Runtime, &fixes);
        check_fixed(&dir.0, Flavour::Compiler, &fixes);
    }

    #[test]
    fn writes_patched_copies_for_the_flavour_only() {
        let dir = std::env::temp_dir().join(format!("hb_patch_test_{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("f.c"), "int a;\n").unwrap();
        let patch = Patch {
            flavours: COMPILER,
            ..patch("a", 1)
        };
        let patches = [&patch];
        let out = dir.join("out");
        assert!(apply_patches(&root, &out, Flavour::Runtime, &patches).is_empty());
        let map = apply_patches(&root, &out, Flavour::Compiler, &patches);
        let copy = &map[&root.join("f.c")];
        assert_eq!(std::fs::read_to_string(copy).unwrap(), "int X;\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
