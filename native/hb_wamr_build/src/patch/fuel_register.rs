//! AOT code keeps a metered module's fuel counter in a register (issue 22:
//! the AOT cost of metering).
//!
//! The counter is a mutable `i64` global, which WAMR's AOT compiler loads
//! from and stores to the instance's global data at every `global.get` and
//! `global.set`: two memory operations a block, and a chain through memory
//! (each block's load waits for the last block's store) that LLVM cannot
//! break, since it cannot tell the global from linear memory. With this
//! patch, when the shim names the counter (`hb_aot_set_fuel`, from
//! the module's `hb_beamr.meter` section; -1: none), each function keeps it
//! in a stack slot that LLVM promotes to a register:
//!
//! - at the start of the body, the slot is loaded from the global;
//! - `global.get` / `global.set` of the counter read and write the slot;
//! - before every call that is not an LLVM intrinsic (wasm functions,
//!   imports, runtime helpers, and the call that raises a trap in the
//!   function's exception block) and before every `ret`, the slot is stored
//!   to the global; right after every such call the slot is loaded again
//!   (before the call's exception check, so that a trap raised in the
//!   callee leaves the callee's count).
//!
//! Whatever can see the global (an import such as `out_of_fuel`, the host
//! after a call returns or traps, another function) sees what it would
//! see without the patch: the register is written back before control
//! leaves the function's code. hb_beamr's runtime has no signal handlers
//! (memory and stack bounds are checked by the generated code, see
//! hb_beamr_aotc's shim), so every trap goes through the exception block.
//! AOT globals are never shared between threads. Tested by hb_beamr_meter's
//! tests/fuel: every metered module, in AOT code against the interpreter,
//! the same counter after every call and trap, and the same `out_of_fuel`
//! calls (each of which reads and writes the global).

use super::{Patch, COMPILER};

const VARIABLE: &str = "core/iwasm/compilation/aot_emit_variable.c";
const COMPILE: &str = "core/iwasm/compilation/aot_compiler.c";

pub const PATCHES: &[Patch] = &[
    Patch {
        file: VARIABLE,
        why: "fuel counter in a register: the slot and its flushes",
        find: "static bool
compile_global(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx,
",
        replace: "/* hb_beamr: the fuel counter in a register
   (hb_wamr_build/src/patch/fuel_register.rs). The counter's global index
   for this compile (-1: none), the current function's slot for it and the
   global's address in that function. */
static __thread int64 hb_aot_fuel_global = -1;
static __thread LLVMValueRef hb_aot_fuel_slot = NULL;
static __thread LLVMValueRef hb_aot_fuel_ptr = NULL;
static __thread LLVMValueRef hb_aot_fuel_init = NULL;
/* The function that waits for fuel ($charge, -1: none): cold. */
static __thread int64 hb_aot_charge_function = -1;

void
hb_aot_set_fuel(int64 global, int64 charge_function)
{
    hb_aot_fuel_global = global;
    hb_aot_charge_function = charge_function;
}

/* $charge runs only when a block finds the counter short: marked cold, so
   that LLVM lays every charge's call out of the way of the fast path. */
static void
hb_aot_mark_cold(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx)
{
    const AOTCompData *comp_data = comp_ctx->comp_data;
    int64 index = hb_aot_charge_function - (int64)comp_data->import_func_count;
    unsigned kind = LLVMGetEnumAttributeKindForName(\"cold\", 4);
    LLVMAttributeRef cold;

    if (index < 0 || index >= (int64)comp_ctx->func_ctx_count
        || comp_ctx->func_ctxes[index] != func_ctx || !kind
        || !(cold = LLVMCreateEnumAttribute(comp_ctx->context, kind, 0)))
        return;
    LLVMAddAttributeAtIndex(func_ctx->func, LLVMAttributeFunctionIndex, cold);
    if (func_ctx->precheck_func)
        LLVMAddAttributeAtIndex(func_ctx->precheck_func,
                                LLVMAttributeFunctionIndex, cold);
}

/* Loads from `from` and stores to `to` (the slot or the global). */
static bool
hb_aot_fuel_copy(AOTCompContext *comp_ctx, LLVMValueRef from, LLVMValueRef to,
                 LLVMValueRef *store)
{
    LLVMValueRef value, res;
    if (!(value = LLVMBuildLoad2(comp_ctx->builder, I64_TYPE, from, \"hb_fuel\"))
        || !(res = LLVMBuildStore(comp_ctx->builder, value, to))) {
        aot_set_last_error(\"llvm build load or store failed.\");
        return false;
    }
    LLVMSetAlignment(value, 4);
    LLVMSetAlignment(res, 4);
    if (store)
        *store = res;
    return true;
}

/* At the start of a function's body (the builder at the end of its entry
   block): the counter's slot, loaded from the global. */
bool
hb_aot_fuel_begin(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx)
{
    const AOTCompData *comp_data = comp_ctx->comp_data;
    uint32 imports = comp_data->import_global_count, index, offset;
    const AOTGlobal *global;
    LLVMValueRef offset_value;

    hb_aot_fuel_slot = hb_aot_fuel_ptr = hb_aot_fuel_init = NULL;
    hb_aot_mark_cold(comp_ctx, func_ctx);
    if (hb_aot_fuel_global < (int64)imports
        || hb_aot_fuel_global >= (int64)imports + comp_data->global_count)
        return true;
    index = (uint32)hb_aot_fuel_global;
    global = &comp_data->globals[index - imports];
    if (global->type.val_type != VALUE_TYPE_I64 || !global->type.is_mutable)
        return true;
    /* The global's address, as compile_global computes it. */
    offset = offsetof(AOTModuleInstance, global_table_data.bytes)
             + sizeof(AOTMemoryInstance) * comp_data->memory_count
             + (comp_ctx->pointer_size == sizeof(uint64)
                    ? global->data_offset_64bit
                    : global->data_offset_32bit);
    offset_value = I32_CONST(offset);
    if (!offset_value
        || !(hb_aot_fuel_ptr = LLVMBuildInBoundsGEP2(
                 comp_ctx->builder, INT8_TYPE, func_ctx->aot_inst,
                 &offset_value, 1, \"hb_fuel_ptr\"))
        || !(hb_aot_fuel_slot =
                 LLVMBuildAlloca(comp_ctx->builder, I64_TYPE, \"hb_fuel_slot\"))) {
        aot_set_last_error(\"llvm build alloca failed.\");
        hb_aot_fuel_slot = NULL;
        return false;
    }
    if (!hb_aot_fuel_copy(comp_ctx, hb_aot_fuel_ptr, hb_aot_fuel_slot,
                          &hb_aot_fuel_init)) {
        hb_aot_fuel_slot = NULL;
        return false;
    }
    return true;
}

/* After the body is compiled: the slot stored to the global before every
   call that is not an intrinsic and before every ret, and loaded again
   right after every such call. */
bool
hb_aot_fuel_end(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx)
{
    LLVMBasicBlockRef block;
    LLVMValueRef insn, next, callee;
    bool started = false, tail = false;
    LLVMOpcode opcode;

    if (!hb_aot_fuel_slot)
        return true;
    for (block = LLVMGetFirstBasicBlock(func_ctx->func); block;
         block = LLVMGetNextBasicBlock(block)) {
        for (insn = LLVMGetFirstInstruction(block); insn; insn = next) {
            next = LLVMGetNextInstruction(insn);
            if (!started) {
                /* nothing before the slot is loaded */
                started = insn == hb_aot_fuel_init;
                continue;
            }
            opcode = LLVMGetInstructionOpcode(insn);
            if (opcode == LLVMCall) {
                callee = LLVMGetCalledValue(insn);
                if (callee && LLVMIsAFunction(callee)
                    && LLVMGetIntrinsicID(callee) != 0)
                    continue;
                LLVMPositionBuilderBefore(comp_ctx->builder, insn);
                if (!hb_aot_fuel_copy(comp_ctx, hb_aot_fuel_slot,
                                      hb_aot_fuel_ptr, NULL))
                    return false;
                /* A tail call (musttail, or a call the ret after it
                   returns): nothing between it and the ret, and the ret
                   leaves the callee's count in the global. */
                if (LLVMGetTailCallKind(insn) == LLVMTailCallKindMustTail
                    || (next && LLVMGetInstructionOpcode(next) == LLVMRet)) {
                    tail = true;
                    continue;
                }
                if (next) {
                    LLVMPositionBuilderBefore(comp_ctx->builder, next);
                    if (!hb_aot_fuel_copy(comp_ctx, hb_aot_fuel_ptr,
                                          hb_aot_fuel_slot, NULL))
                        return false;
                }
            }
            else if (opcode == LLVMRet && tail) {
                tail = false;
            }
            else if (opcode == LLVMRet) {
                LLVMPositionBuilderBefore(comp_ctx->builder, insn);
                if (!hb_aot_fuel_copy(comp_ctx, hb_aot_fuel_slot,
                                      hb_aot_fuel_ptr, NULL))
                    return false;
            }
        }
    }
    hb_aot_fuel_slot = hb_aot_fuel_ptr = hb_aot_fuel_init = NULL;
    return true;
}

static bool
compile_global(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx,
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: VARIABLE,
        why: "fuel counter in a register: global.get and global.set use the slot",
        find: "        aot_set_last_error(\"llvm build bit cast failed.\");
        return false;
    }
",
        replace: "        aot_set_last_error(\"llvm build bit cast failed.\");
        return false;
    }

    /* hb_beamr: the fuel counter lives in the function's slot */
    if (hb_aot_fuel_slot && (int64)global_idx == hb_aot_fuel_global)
        global_ptr = hb_aot_fuel_slot;
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: COMPILE,
        why: "fuel counter in a register: the slot at the start of a body",
        find: "    /* Start to translate the opcodes */
    LLVMPositionBuilderAtEnd(
        comp_ctx->builder,
        func_ctx->block_stack.block_list_head->llvm_entry_block);
",
        replace: "    /* Start to translate the opcodes */
    LLVMPositionBuilderAtEnd(
        comp_ctx->builder,
        func_ctx->block_stack.block_list_head->llvm_entry_block);

    /* hb_beamr: the fuel counter in a register (aot_emit_variable.c) */
    if (!hb_aot_fuel_begin(comp_ctx, func_ctx))
        return false;
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: COMPILE,
        why: "fuel counter in a register: flushed around calls and returns",
        find: "    /* Move func_return block to the bottom */
",
        replace: "    /* hb_beamr: the fuel counter written back (aot_emit_variable.c) */
    if (!hb_aot_fuel_end(comp_ctx, func_ctx))
        return false;

    /* Move func_return block to the bottom */
",
        count: 1,
        flavours: COMPILER,
    },
    Patch {
        file: COMPILE,
        why: "fuel counter in a register: the declarations",
        find: "static bool
aot_compile_func(AOTCompContext *comp_ctx, uint32 func_index)
",
        replace: "/* hb_beamr: the fuel counter in a register (aot_emit_variable.c) */
bool
hb_aot_fuel_begin(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx);
bool
hb_aot_fuel_end(AOTCompContext *comp_ctx, AOTFuncContext *func_ctx);

static bool
aot_compile_func(AOTCompContext *comp_ctx, uint32 func_index)
",
        count: 1,
        flavours: COMPILER,
    },
];
