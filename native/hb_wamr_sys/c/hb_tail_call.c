/* hb_beamr: a guard for a WAMR 2.4.3 classic-interpreter crash.
 *
 * When a function entered from the host makes a tail call (return_call) to
 * an imported function, the interpreter, after the import returns, resumes
 * the host's entry frame as if it were WebAssembly and jumps through a null
 * instruction pointer. The import trampoline asks this helper whether it was
 * reached that way and, if so, raises an exception instead of returning: the
 * interpreter then unwinds without touching the entry frame's code. */
#include "hb_quiet.h"
#include "wasm_exec_env.h"
#include "wasm_export.h"
#include "wasm_interp.h"
#include "wasm_runtime.h"
#include "aot_runtime.h"

/* Whether the running import was tail-called by a function the host called
 * (interpreter only): its caller frame is the host's entry frame. */
int
hb_beamr_import_tail_called_from_host(wasm_exec_env_t exec_env)
{
    WASMExecEnv *env = (WASMExecEnv *)exec_env;
    WASMModuleInstanceCommon *inst = env->module_inst;
    WASMInterpFrame *frame;

    if (!inst || inst->module_type != Wasm_Module_Bytecode)
        return 0;
    frame = (WASMInterpFrame *)wasm_exec_env_get_cur_frame(env);
    return frame && frame->prev_frame && !frame->prev_frame->function;
}

/* Whether a function handle is an import: 1 in bytecode, 2 in AOT (the
 * host may call an exported import directly; that is not a tail call, and
 * WAMR's AOT runtime cannot do it safely). */
int
hb_beamr_function_is_import(wasm_function_inst_t func,
                            wasm_module_inst_t module_inst)
{
    if (!func || !module_inst)
        return 0;
    if (((WASMModuleInstanceCommon *)module_inst)->module_type
        == Wasm_Module_Bytecode)
        return ((WASMFunctionInstance *)func)->is_import_func ? 1 : 0;
    return ((AOTFunctionInstance *)func)->is_import_func ? 2 : 0;
}
